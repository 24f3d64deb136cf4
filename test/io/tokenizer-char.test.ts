// Character-level tokenizer: vocabulary = Python's sorted(set(text)) (nanoGPT shakespeare_char; expected chars and
// ids from test/golden/tokenizer/make_fixtures.py), code points not UTF-16 units, save/load, unknown-character errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { CharTokenizer, StreamDecoder, loadTokenizer } from '../../src/io/tokenizer/index.js';
import { isAjarError } from '../../src/tensor/errors.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url)); // dist/test/io -> repository root

interface CharCase { train_text: string; chars: string[]; probe_text: string; probe_ids: number[] }
const { char_case: fx } = JSON.parse(readFileSync(join(ROOT, 'test/golden/tokenizer/gpt2_expected.json'), 'utf8')) as { char_case: CharCase };

function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'ajar-char-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test("fromText's vocabulary is Python's sorted(set(text)), astral characters included", () => {
  const tok = CharTokenizer.fromText(fx.train_text);
  assert.equal(tok.kind, 'char');
  assert.deepEqual(tok.chars, fx.chars);
  assert.equal(tok.vocabSize, fx.chars.length);
  assert.equal(tok.eosTokenId, null);
  assert.equal(tok.bosTokenId, null);
  assert.equal(tok.addBos, false);
  assert.deepEqual(tok.encode(fx.probe_text), fx.probe_ids);
});

test('char round trip: decode(encode(s)) === s, tokenBytes and StreamDecoder agree', () => {
  const tok = CharTokenizer.fromText(fx.train_text);
  assert.equal(tok.decode(tok.encode(fx.train_text)), fx.train_text);
  const stream = new StreamDecoder(tok);
  let out = '';
  for (const id of tok.encode(fx.probe_text)) out += stream.push(id);
  out += stream.flush();
  assert.equal(out, fx.probe_text);
  const emojiId = fx.chars.indexOf('\u{1F600}');
  assert.deepEqual([...tok.tokenBytes(emojiId)], [...new TextEncoder().encode('\u{1F600}')]);
});

test('save() writes vocab.json + tokenizer_config.json and loadTokenizer() reads a char tokenizer back', (t) => {
  const dir = tempDir(t);
  CharTokenizer.fromText(fx.train_text).save(dir, { modelMaxLength: 256 });
  assert.deepEqual(readdirSync(dir).sort(), ['tokenizer_config.json', 'vocab.json']);
  const config = JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
  assert.deepEqual(config, { tokenizer_class: 'AjarCharTokenizer', model_max_length: 256 });
  const vocab = JSON.parse(readFileSync(join(dir, 'vocab.json'), 'utf8')) as Record<string, number>;
  assert.deepEqual(vocab, Object.fromEntries(fx.chars.map((ch, i) => [ch, i])));

  const back = loadTokenizer(dir);
  assert.equal(back.kind, 'char');
  assert.deepEqual(back.encode(fx.probe_text), fx.probe_ids);
  assert.equal(back.decode(fx.probe_ids), fx.probe_text);
});

test('a character outside the vocabulary is unknown_char naming it and its position', () => {
  const tok = CharTokenizer.fromText(fx.train_text);
  // Position counts code points: the emoji before 'Q' is one character, not two.
  assert.throws(() => tok.encode('hear\n\u{1F600}Q'), (e: unknown) =>
    isAjarError(e) && e.code === 'unknown_char' && e.message.includes('"Q" (U+0051)') && e.message.includes('position 6')
    && e.message.includes('line 2, column 2'));
  assert.throws(() => tok.encode('\u{1F601}'), (e: unknown) => isAjarError(e) && e.code === 'unknown_char' && e.message.includes('U+1F601'));
  assert.throws(() => tok.encode('a\uD800'), (e: unknown) => isAjarError(e) && e.code === 'unknown_char' && e.message.includes('lone surrogate U+D800'));
  assert.throws(() => tok.decode([fx.chars.length]), (e: unknown) => isAjarError(e) && e.code === 'bad_token_id');
});

test('a malformed char vocab.json is bad_tokenizer', () => {
  assert.throws(() => CharTokenizer.fromVocab({ ab: 0 }), (e: unknown) => isAjarError(e) && e.code === 'bad_tokenizer' && e.message.includes('"ab"'));
  assert.throws(() => CharTokenizer.fromVocab({ a: 0, b: 0 }), (e: unknown) => isAjarError(e) && e.code === 'bad_tokenizer');
  assert.throws(() => CharTokenizer.fromVocab({ a: 0, b: 2 }), (e: unknown) => isAjarError(e) && e.code === 'bad_tokenizer');
  assert.deepEqual(CharTokenizer.fromVocab({ b: 1, a: 0 }).chars, ['a', 'b']);
});
