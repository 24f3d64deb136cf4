// Long texts are encoded in chunks cut only where the ids cannot change: chunked ids equal whole-text ids for GPT-2's
// BPE (checked against OpenAI's encoder as ported by the gpt-3-encoder package) and for char tokenizers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { encode as referenceGpt2Encode } from 'gpt-3-encoder';
import { loadDataset } from '../../src/data/index.js';
import type { StreamData } from '../../src/data/index.js';
import { IdBuffer, encodeLongText, nextSafeCut } from '../../src/data/tokenize.js';
import { CharTokenizer, loadTokenizer } from '../../src/io/tokenizer/index.js';
import { tempDir, writeData } from './helpers.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url)); // dist/test/data -> repository root
const gpt2 = loadTokenizer(join(ROOT, 'test/golden/gpt2-vocab'));
const EVAL_TEXT = readFileSync(join(ROOT, 'test/golden/gpt2-tiny/eval.txt'), 'utf8');

// Texts where a careless cut would change GPT-2's ids: runs of newlines, spaces before newlines, contractions,
// punctuation and non-ASCII next to newlines.
const TRICKY = [
  'a\n\nb\n\n\nc \nd\n e\nf\n',
  "it\n's\nI\n'll x\n'd\n",
  'x.\ny!\n?z\n12\n34\n',
  'café\nnaïve\né\nb\n東京\nx\n🙂\ny\n',
  '\n\nstart\n\tend\r\nwin\r\nx\n',
].join('');

function chunked(tok: Parameters<typeof encodeLongText>[0], text: string, chunkChars: number): number[] {
  const out = new IdBuffer();
  encodeLongText(tok, text, out, 'test', undefined, chunkChars);
  return Array.from(out.toArray());
}

test('nextSafeCut: only after a "\\n" between a visible ASCII character and an ASCII letter or digit', () => {
  assert.equal(nextSafeCut('ab\ncd', 0), 3);
  assert.equal(nextSafeCut('a\n\nb', 0), -1);
  assert.equal(nextSafeCut('a \nb', 0), -1);
  assert.equal(nextSafeCut('a\n b', 0), -1);
  assert.equal(nextSafeCut("a\n's", 0), -1);
  assert.equal(nextSafeCut('é\nb', 0), -1);
  assert.equal(nextSafeCut('a.\n1', 0), 3);
  assert.equal(nextSafeCut('ab\ncd\nef', 4), 6);
  assert.equal(nextSafeCut('ab\n', 0), -1);
});

test('GPT-2 BPE: chunked ids equal whole-text ids and the reference encoder, for every chunk size', () => {
  for (const text of [TRICKY, EVAL_TEXT]) {
    const whole = gpt2.encode(text);
    for (const size of [1, 2, 3, 5, 8, 13, 64, 500]) assert.deepEqual(chunked(gpt2, text, size), whole, `chunk ${size}`);
  }
  assert.deepEqual(gpt2.encode(EVAL_TEXT), referenceGpt2Encode(EVAL_TEXT));
});

test('char tokenizer: chunked ids equal whole-text ids', () => {
  const tok = CharTokenizer.fromText(TRICKY + EVAL_TEXT);
  for (const text of [TRICKY, EVAL_TEXT]) {
    for (const size of [1, 4, 100]) assert.deepEqual(chunked(tok, text, size), tok.encode(text));
  }
});

test('an unknown tokenizer kind is never cut', () => {
  let calls = 0;
  const tok = { kind: 'sentencepiece', encode: (s: string) => { calls++; return [s.length]; }, eosTokenId: null, bosTokenId: null, addBos: false, vocabSize: 1000 };
  assert.deepEqual(chunked(tok, 'ab\ncd\nef\ngh', 2), [11]);
  assert.equal(calls, 1);
});

test('a plain text file with the GPT-2 tokenizer gives the reference ids; JSONL records end with <|endoftext|>', (t) => {
  const dir = tempDir(t);
  const text = writeData(dir, 'eval.txt', EVAL_TEXT);
  assert.deepEqual(Array.from((loadDataset({ path: text }, gpt2, { cache: false }) as StreamData).ids), referenceGpt2Encode(EVAL_TEXT));
  const jsonl = writeData(dir, 'docs.jsonl', '{"text": "Hello world"}\n{"text": " again"}\n');
  const ds = loadDataset({ path: jsonl }, gpt2, { cache: false }) as StreamData;
  assert.deepEqual(Array.from(ds.ids), [...referenceGpt2Encode('Hello world'), 50256, ...referenceGpt2Encode(' again'), 50256]);
  // the cache round trip with a real tokenizer (fingerprint from its 50257 tokens' bytes and a probe)
  const miss = loadDataset({ path: text }, gpt2);
  const hit = loadDataset({ path: text }, loadTokenizer(join(ROOT, 'test/golden/gpt2-tiny')));
  assert.equal(miss.cache?.hit, false);
  assert.equal(hit.cache?.hit, true);
});
