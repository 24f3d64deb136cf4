// GPT-2 BPE against OpenAI's reference encoder: token-for-token ids on every fixture string, decode round trip,
// decode of cut characters, StreamDecoder, and a speed sanity run. Expected ids: test/golden/tokenizer/make_fixtures.py.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { Gpt2BpeTokenizer, StreamDecoder, gpt2PreTokenize, loadTokenizer, parseMergesTxt } from '../../src/io/tokenizer/index.js';
import { isAjarError } from '../../src/tensor/errors.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url)); // dist/test/io -> repository root
const VOCAB_DIR = join(ROOT, 'test/golden/gpt2-vocab');

interface Case { name: string; text: string; ids: number[] }
interface Fixture {
  eos_token_id: number;
  vocab_size: number;
  long: Case;
  edge_cases: Case[];
  random_cases: Case[];
  decode_cases: { ids: number[]; text: string }[];
}
const fixture = JSON.parse(readFileSync(join(ROOT, 'test/golden/tokenizer/gpt2_expected.json'), 'utf8')) as Fixture;
const allCases: Case[] = [fixture.long, ...fixture.edge_cases, ...fixture.random_cases];

const tok = loadTokenizer(VOCAB_DIR);

/** What a string becomes after UTF-8 encoding, per the platform's TextEncoder/TextDecoder (lone surrogates -> U+FFFD). */
function utf8RoundTrip(s: string): string {
  return new TextDecoder('utf-8', { ignoreBOM: true }).decode(new TextEncoder().encode(s));
}

test('GPT-2 vocab: size and <|endoftext|> as eos, from the vocabulary', () => {
  assert.equal(tok.kind, 'gpt2-bpe');
  assert.equal(tok.vocabSize, fixture.vocab_size);
  assert.equal(tok.eosTokenId, fixture.eos_token_id);
  assert.equal(tok.bosTokenId, fixture.eos_token_id); // GPT-2's bos is <|endoftext|> too (HF GPT2Tokenizer default)
  assert.equal(tok.addBos, false);
  assert.deepEqual([...tok.tokenBytes(fixture.eos_token_id)], [...new TextEncoder().encode('<|endoftext|>')]);
});

test('the fixture covers at least 30 edge cases and a long mixed-script text', () => {
  assert.ok(fixture.edge_cases.length >= 30);
  assert.ok(fixture.long.text.length > 10_000);
});

test('encode matches the reference encoder token for token on every fixture string', () => {
  for (const c of allCases) {
    assert.deepEqual(tok.encode(c.text), c.ids, `case ${JSON.stringify(c.name)}: ${JSON.stringify(c.text.slice(0, 80))}`);
  }
});

test('encode is the same on a second call (the per-word cache returns what bpe computed)', () => {
  for (const c of fixture.edge_cases) assert.deepEqual(tok.encode(c.text), c.ids, c.name);
});

test('a fresh tokenizer (empty cache) agrees on long inputs', () => {
  const fresh = loadTokenizer(VOCAB_DIR);
  const long = fixture.edge_cases.find((c) => c.name === 'long cjk without spaces')!;
  assert.deepEqual(fresh.encode(long.text), long.ids);
  assert.deepEqual(fresh.encode(fixture.long.text), fixture.long.ids);
});

test('decode(encode(s)) gives s back for every fixture string (lone surrogates as U+FFFD)', () => {
  for (const c of allCases) {
    assert.equal(tok.decode(tok.encode(c.text)), utf8RoundTrip(c.text), c.name);
    if (utf8RoundTrip(c.text) === c.text) assert.equal(tok.decode(c.ids), c.text, c.name);
  }
});

test('decode of cut multi-byte characters matches the reference (errors="replace")', () => {
  for (const d of fixture.decode_cases) assert.equal(tok.decode(d.ids), d.text, JSON.stringify(d.ids));
});

test('the special-token text inside user text is plain text, as in the reference', () => {
  const c = fixture.edge_cases.find((x) => x.name === 'special token text')!;
  assert.ok(c.ids.length > 1);
  assert.ok(!tok.encode(c.text).includes(fixture.eos_token_id));
});

test('pre-tokens concatenate back to the input', () => {
  for (const c of allCases) {
    const wf = utf8RoundTrip(c.text);
    assert.equal(gpt2PreTokenize(wf).join(''), wf, c.name);
  }
});

test('decode and tokenBytes reject ids outside the vocabulary with bad_token_id', () => {
  for (const bad of [-1, fixture.vocab_size, 1.5, Number.NaN]) {
    assert.throws(() => tok.decode([bad]), (e: unknown) => isAjarError(e) && e.code === 'bad_token_id');
    assert.throws(() => tok.tokenBytes(bad), (e: unknown) => isAjarError(e) && e.code === 'bad_token_id');
  }
});

test('StreamDecoder over emoji and CJK emits exactly the text, never half a character', () => {
  const texts = [fixture.long.text, ...fixture.edge_cases.filter((c) => /emoji|japanese|chinese|korean|cjk|combining/.test(c.name)).map((c) => c.text)];
  for (const text of texts) {
    const ids = tok.encode(text);
    const stream = new StreamDecoder(tok);
    let out = '';
    let partialSteps = 0;
    for (const id of ids) {
      const piece = stream.push(id);
      if (piece === '') partialSteps++;
      assert.ok(!piece.includes('\uFFFD'), 'a chunk held a replacement character');
      out += piece;
    }
    out += stream.flush();
    assert.equal(out, text);
    if (/[\u{1F600}-\u{1F64F}]/u.test(text)) assert.ok(partialSteps > 0, 'emoji span several tokens, so some pushes emit nothing');
  }
});

test('StreamDecoder flush turns an unfinished character into U+FFFD, like decode', () => {
  const ids = tok.encode('ok 😀');
  const cut = ids.slice(0, -1);
  const stream = new StreamDecoder(tok);
  let out = '';
  for (const id of cut) out += stream.push(id);
  out += stream.flush();
  assert.equal(out, tok.decode(cut));
  assert.ok(out.endsWith('\uFFFD'));
});

test('merges.txt parsing: #version line, CRLF, and a bad line', () => {
  assert.deepEqual(parseMergesTxt('#version: 0.2\r\nĠ t\r\nh e\r\n'), [['Ġ', 't'], ['h', 'e']]);
  assert.deepEqual(parseMergesTxt('a b\n'), [['a', 'b']]);
  assert.throws(() => parseMergesTxt('#version: 0.2\na b c\n', 'm.txt'), (e: unknown) => isAjarError(e) && e.code === 'bad_tokenizer' && e.message.includes('m.txt line 2'));
});

test('a merge whose parts are not in the vocabulary is a bad_tokenizer error', () => {
  const vocab = JSON.parse(readFileSync(join(VOCAB_DIR, 'vocab.json'), 'utf8')) as Record<string, number>;
  assert.throws(() => Gpt2BpeTokenizer.fromVocabAndMerges(vocab, [['zzzqqq', 'xxxyyy']]), (e: unknown) => isAjarError(e) && e.code === 'bad_tokenizer' && e.message.includes('zzzqqq'));
});

test('speed sanity: about 1 MB of English encodes and round-trips (time reported, not asserted)', (t) => {
  const english = readFileSync(join(ROOT, 'test/golden/gpt2-tiny/eval.txt'), 'utf8');
  // Repeat the English text with a counter word spliced in, so not every pre-token is a cache hit.
  const parts: string[] = [];
  let size = 0;
  for (let i = 0; size < 1_000_000; i++) {
    const chunk = `${english} Section ${i}: w${(i * 7919).toString(36)}.\n`;
    parts.push(chunk);
    size += chunk.length;
  }
  const text = parts.join('');
  const fresh = loadTokenizer(VOCAB_DIR);
  const t0 = performance.now();
  const ids = fresh.encode(text);
  const ms = performance.now() - t0;
  t.diagnostic(`encoded ${(text.length / 1e6).toFixed(2)} MB of English into ${ids.length} tokens in ${ms.toFixed(0)} ms (${(text.length / 1e6 / (ms / 1000)).toFixed(1)} MB/s)`);
  assert.equal(fresh.decode(ids), text);
});
