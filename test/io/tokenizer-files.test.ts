// Tokenizer folders: tokenizer.json (string and pair merges) loads to the same ids as vocab.json + merges.txt,
// save() writes Hugging Face's files and loadTokenizer() reads them back, and folders without a tokenizer fail clearly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { Gpt2BpeTokenizer, loadTokenizer } from '../../src/io/tokenizer/index.js';
import { isAjarError } from '../../src/tensor/errors.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url)); // dist/test/io -> repository root
const VOCAB_DIR = join(ROOT, 'test/golden/gpt2-vocab');

interface Case { name: string; text: string; ids: number[] }
interface Fixture { eos_token_id: number; long: Case; edge_cases: Case[]; random_cases: Case[] }
const fixture = JSON.parse(readFileSync(join(ROOT, 'test/golden/tokenizer/gpt2_expected.json'), 'utf8')) as Fixture;
const someCases: Case[] = [fixture.long, ...fixture.edge_cases, ...fixture.random_cases.slice(0, 60)];

const vocabText = readFileSync(join(VOCAB_DIR, 'vocab.json'), 'utf8');
const mergesText = readFileSync(join(VOCAB_DIR, 'merges.txt'), 'utf8');
const vocab = JSON.parse(vocabText) as Record<string, number>;
// merges.txt as OpenAI's encoder.py reads it: drop the #version line and the empty string after the last newline.
const mergeLines = mergesText.split('\n').slice(1, -1);

function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'ajar-tok-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function errorWith(code: string, ...fragments: string[]) {
  return (e: unknown) => isAjarError(e) && e.code === code && fragments.every((f) => e.message.includes(f));
}

/** A tokenizer.json in the layout of the Hugging Face Hub's gpt2, written by hand (not by our save()). */
function hubStyleTokenizerJson(merges: unknown[]): object {
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [{ id: 50256, content: '<|endoftext|>', single_word: false, lstrip: false, rstrip: false, normalized: true, special: true }],
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true },
    post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true },
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '', fuse_unk: false, vocab, merges },
  };
}

test('tokenizer.json with "a b" merges and with [a, b] merges gives the reference ids', (t) => {
  const pairs = mergeLines.map((l) => l.split(' '));
  for (const merges of [mergeLines, pairs]) {
    const dir = tempDir(t);
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(hubStyleTokenizerJson(merges)));
    const tok = loadTokenizer(dir);
    assert.equal(tok.kind, 'gpt2-bpe');
    assert.equal(tok.eosTokenId, fixture.eos_token_id);
    for (const c of someCases) assert.deepEqual(tok.encode(c.text), c.ids, c.name);
  }
});

test('tokenizer.json settings we would get wrong are refused with bad_tokenizer', () => {
  const base = hubStyleTokenizerJson(mergeLines) as Record<string, unknown>;
  const variants: [string, Record<string, unknown>][] = [
    ['normalizer', { ...base, normalizer: { type: 'NFC' } }],
    ['add_prefix_space', { ...base, pre_tokenizer: { type: 'ByteLevel', add_prefix_space: true } }],
    ['not ByteLevel', { ...base, pre_tokenizer: { type: 'Metaspace' } }],
    ['"BPE"', { ...base, model: { type: 'WordPiece', vocab } }],
  ];
  for (const [fragment, json] of variants) {
    assert.throws(() => Gpt2BpeTokenizer.fromTokenizerJson(json), errorWith('bad_tokenizer', fragment));
  }
});

test('save() writes the five files, nothing else, and loadTokenizer() reads them back', (t) => {
  const dir = tempDir(t);
  const tok = loadTokenizer(VOCAB_DIR);
  tok.save(dir, { modelMaxLength: 1024 });
  assert.deepEqual(readdirSync(dir).sort(), ['merges.txt', 'special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json', 'vocab.json']);

  // vocab.json and merges.txt are OpenAI's files again: same mapping, merges.txt byte for byte.
  assert.deepEqual(JSON.parse(readFileSync(join(dir, 'vocab.json'), 'utf8')), vocab);
  assert.equal(readFileSync(join(dir, 'merges.txt'), 'utf8'), mergesText);

  const config = JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
  assert.equal(config.tokenizer_class, 'GPT2Tokenizer');
  assert.equal(config.model_max_length, 1024);
  assert.equal(config.eos_token, '<|endoftext|>');
  assert.equal(config.bos_token, '<|endoftext|>');
  assert.equal(config.unk_token, '<|endoftext|>');
  assert.equal(config.add_bos_token, false);
  assert.deepEqual(JSON.parse(readFileSync(join(dir, 'special_tokens_map.json'), 'utf8')),
    { bos_token: '<|endoftext|>', eos_token: '<|endoftext|>', unk_token: '<|endoftext|>' });

  const tj = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')) as Record<string, Record<string, unknown>>;
  assert.deepEqual(tj.pre_tokenizer, { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true });
  assert.equal(tj.decoder.type, 'ByteLevel');
  assert.equal(tj.model.type, 'BPE');
  assert.deepEqual(tj.model.vocab, vocab);
  assert.deepEqual(tj.model.merges, mergeLines);
  assert.deepEqual(tj.added_tokens, [{ id: 50256, content: '<|endoftext|>', single_word: false, lstrip: false, rstrip: false, normalized: true, special: true }]);

  const back = loadTokenizer(dir);
  assert.equal(back.eosTokenId, fixture.eos_token_id);
  for (const c of someCases) assert.deepEqual(back.encode(c.text), c.ids, c.name);

  // Without the caller's length, model_max_length is left out.
  const dir2 = tempDir(t);
  back.save(dir2);
  assert.equal('model_max_length' in JSON.parse(readFileSync(join(dir2, 'tokenizer_config.json'), 'utf8')), false);
});

test("save()'s tokenizer.json loads in Hugging Face's tokenizers.js and encodes plain text to the reference ids", (t) => {
  const dir = tempDir(t);
  loadTokenizer(VOCAB_DIR).save(dir);
  const hf = new HfTokenizer(
    JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')) as object,
    JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8')) as object,
  );
  // Cases without U+FEFF, U+0085, post-Unicode-15.0 letters or <|endoftext|>, where tokenizers.js agrees with encoder.py.
  for (const name of ['hello', 'contractions', 'uppercase contractions', 'digits', 'crlf', 'indented code', 'japanese', 'emoji', 'combining marks']) {
    const c = fixture.edge_cases.find((x) => x.name === name)!;
    assert.deepEqual(hf.encode(c.text, { add_special_tokens: false }).ids, c.ids, name);
    assert.equal(hf.decode(c.ids), c.text, name);
  }
  // <|endoftext|> is registered as a special added token, as the Hub's gpt2 has it.
  assert.deepEqual(hf.encode('<|endoftext|>', { add_special_tokens: false }).ids, [fixture.eos_token_id]);
});

test('loadTokenizer reads a model folder with tokenizer_config.json + vocab.json + merges.txt', () => {
  const tok = loadTokenizer(join(ROOT, 'test/golden/gpt2-tiny'));
  assert.equal(tok.kind, 'gpt2-bpe');
  assert.equal(tok.eosTokenId, 50256); // test/golden/gpt2-tiny/config.json's eos_token_id
  assert.equal(tok.addBos, false);
  const c = fixture.edge_cases.find((x) => x.name === 'contractions')!;
  assert.deepEqual(tok.encode(c.text), c.ids);
});

test('tokenizer_config.json: add_bos_token, eos named as an AddedToken object, and an unknown eos', (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'vocab.json'), vocabText);
  writeFileSync(join(dir, 'merges.txt'), mergesText);
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({
    tokenizer_class: 'GPT2Tokenizer', add_bos_token: true, eos_token: { content: '<|endoftext|>', __type: 'AddedToken' }, bos_token: null,
  }));
  const tok = loadTokenizer(dir);
  assert.equal(tok.addBos, true);
  assert.equal(tok.eosTokenId, 50256);
  assert.equal(tok.bosTokenId, null);

  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ eos_token: '<|im_end|>' }));
  assert.throws(() => loadTokenizer(dir), errorWith('bad_tokenizer', '<|im_end|>', 'eos_token'));
});

test('a folder with no tokenizer is bad_tokenizer, naming the files looked for', (t) => {
  const dir = tempDir(t);
  assert.throws(() => loadTokenizer(dir), errorWith('bad_tokenizer', 'tokenizer_config.json', 'tokenizer.json', 'vocab.json + merges.txt', 'none of them'));
  writeFileSync(join(dir, 'vocab.json'), vocabText);
  assert.throws(() => loadTokenizer(dir), errorWith('bad_tokenizer', 'found', 'vocab.json'));
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ tokenizer_class: 'LlamaTokenizer' }));
  assert.throws(() => loadTokenizer(dir), errorWith('bad_tokenizer', 'LlamaTokenizer'));
  assert.throws(() => loadTokenizer(join(dir, 'missing')), errorWith('bad_tokenizer', 'not a folder'));
  writeFileSync(join(dir, 'tokenizer.json'), '{ not json');
  assert.throws(() => loadTokenizer(dir), errorWith('bad_tokenizer', 'tokenizer.json', 'not valid JSON'));
});
