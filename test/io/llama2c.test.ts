// llama2.c -> Hugging Face Llama conversion of the real stories260K model, checked against test/golden/llama2c/
// expected.json, which run.c (an independent C implementation of llama2.c's inference) wrote via make_reference.sh:
// greedy ids through ajar's LlamaForCausalLM, and run.c's BPE encodings through @huggingface/tokenizers.
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { loadModelFolder } from '../../src/io/folder.js';
import { convertLlama2c, permuteRope, readLlama2cCheckpoint } from '../../src/io/llama2c.js';
import { buildModel } from '../../src/models/registry.js';
import type { CausalLM } from '../../src/models/types.js';
import { isAjarError, noGrad } from '../../src/tensor/index.js';
import { forEachBackend } from '../helpers/backends.js';
import { goldenPath, readGoldenJson } from '../helpers/golden.js';

export interface Llama2cExpected {
  prompt: string;
  prompt_ids: number[];
  max_new_tokens: number;
  generated_ids: number[];
  text: string;
  encodings: { text: string; ids: number[] }[];
}

const MODEL = goldenPath('llama2c/stories260K/stories260K.bin');
const TOKENIZER = goldenPath('llama2c/stories260K/tok512.bin');
const expected = readGoldenJson<Llama2cExpected>('llama2c/expected.json');

function convertToTemp(): string {
  const out = join(mkdtempSync(join(tmpdir(), 'ajar-l2c-')), 'stories260K-hf');
  convertLlama2c({ model: MODEL, tokenizer: TOKENIZER, out });
  return out;
}

/** Assert fn throws an AjarError with this code whose message is one line matching pattern. */
function throwsCode(fn: () => unknown, code: string, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(isAjarError(e), `not an AjarError: ${String(e)}`);
    assert.equal(e.code, code);
    assert.match(e.message, pattern);
    assert.ok(!e.message.includes('\n'), `message has a newline: ${JSON.stringify(e.message)}`);
    return true;
  });
}

describe('convertLlama2c on stories260K', () => {
  const out = convertToTemp();

  it('writes config.json with the README\'s hyperparameters and llama2.c\'s constants', () => {
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as Record<string, unknown>;
    assert.deepEqual(config.architectures, ['LlamaForCausalLM']);
    // stories260K's README: dim 64, hidden 172, 5 layers, 8 heads, 4 KV heads, vocabulary 512, context 512.
    assert.equal(config.hidden_size, 64);
    assert.equal(config.intermediate_size, 172);
    assert.equal(config.num_hidden_layers, 5);
    assert.equal(config.num_attention_heads, 8);
    assert.equal(config.num_key_value_heads, 4);
    assert.equal(config.vocab_size, 512);
    assert.equal(config.max_position_embeddings, 512);
    // run.c: rmsnorm's 1e-5, RoPE base 10000, BOS 1, EOS 2; a positive vocab_size header means a shared classifier.
    assert.equal(config.rms_norm_eps, 1e-5);
    assert.equal(config.rope_theta, 10000);
    assert.equal(config.hidden_act, 'silu');
    assert.equal(config.bos_token_id, 1);
    assert.equal(config.eos_token_id, 2);
    assert.equal(config.tie_word_embeddings, true);
    const gen = JSON.parse(readFileSync(join(out, 'generation_config.json'), 'utf8')) as Record<string, unknown>;
    assert.deepEqual(gen, { bos_token_id: 1, eos_token_id: 2 });
    const tc = JSON.parse(readFileSync(join(out, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(tc.add_bos_token, true);
    assert.equal(tc.bos_token, '<s>');
    assert.equal(tc.eos_token, '</s>');
    assert.equal(tc.unk_token, '<unk>');
    assert.deepEqual(readdirSync(out).sort(),
      ['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
  });

  it('names and shapes the tensors as transformers\' LlamaForCausalLM, with no lm_head when tied', () => {
    const { weights } = loadModelFolder(out);
    const want = new Map<string, number[]>([['model.embed_tokens.weight', [512, 64]], ['model.norm.weight', [64]]]);
    for (let l = 0; l < 5; l++) {
      const p = `model.layers.${l}`;
      want.set(`${p}.input_layernorm.weight`, [64]);
      want.set(`${p}.post_attention_layernorm.weight`, [64]);
      want.set(`${p}.self_attn.q_proj.weight`, [64, 64]);
      want.set(`${p}.self_attn.k_proj.weight`, [32, 64]); // 4 KV heads of 8
      want.set(`${p}.self_attn.v_proj.weight`, [32, 64]);
      want.set(`${p}.self_attn.o_proj.weight`, [64, 64]);
      want.set(`${p}.mlp.gate_proj.weight`, [172, 64]);
      want.set(`${p}.mlp.up_proj.weight`, [172, 64]);
      want.set(`${p}.mlp.down_proj.weight`, [64, 172]);
    }
    assert.deepEqual([...weights.keys()].sort(), [...want.keys()].sort());
    for (const [name, shape] of want) assert.deepEqual(weights.get(name)!.shape, shape, name);
    // The bytes of the checkpoint reach the file unchanged where no permutation applies.
    const ck = readLlama2cCheckpoint(MODEL);
    assert.deepEqual(weights.get('model.embed_tokens.weight')!.data, ck.tokenEmbedding);
    assert.deepEqual(weights.get('model.layers.3.mlp.down_proj.weight')!.data, ck.w2[3]);
    assert.deepEqual(weights.get('model.layers.3.mlp.up_proj.weight')!.data, ck.w3[3]);
  });

  it('tokenizer.json, read by @huggingface/tokenizers, reproduces run.c\'s BPE encodings and decoding', () => {
    const json = JSON.parse(readFileSync(join(out, 'tokenizer.json'), 'utf8')) as Record<string, unknown>;
    const config = JSON.parse(readFileSync(join(out, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
    const model = json.model as Record<string, unknown>;
    assert.equal(model.type, 'BPE');
    assert.equal(model.byte_fallback, true);
    assert.equal(json.pre_tokenizer, null);
    const hf = new HfTokenizer(json, config);
    assert.ok(expected.encodings.length >= 8);
    for (const e of expected.encodings) {
      assert.deepEqual(hf.encode(e.text, { add_special_tokens: false }).ids, e.ids, JSON.stringify(e.text));
    }
    assert.deepEqual(hf.encode(expected.prompt).ids, expected.prompt_ids, 'the post-processor puts <s> first');
    const all = [...expected.prompt_ids, ...expected.generated_ids];
    assert.equal(hf.decode(all, { skip_special_tokens: true }), expected.text);
  });
});

/** Greedy continuation of expected.json's prompt ids by the model in a converted folder, one token at a time. */
function greedyIds(out: string, steps: number): number[] {
  const folder = loadModelFolder(out);
  const model = buildModel(folder.config, 'config.json') as CausalLM;
  model.loadWeights(folder.weights, 'model.safetensors');
  model.module.eval();
  const V = model.vocabSize;
  const cache = model.newCache();
  const generated: number[] = [];
  noGrad(() => {
    let input = Int32Array.from(expected.prompt_ids);
    for (let step = 0; step < steps; step++) {
      const logits = model.forward(input, 1, { cache }).data; // (1, T, V)
      const row = logits.subarray(logits.length - V);
      let best = 0;
      for (let i = 1; i < V; i++) if (row[i] > row[best]) best = i;
      generated.push(best);
      input = Int32Array.of(best);
    }
  });
  return generated;
}

forEachBackend('converted stories260K through ajar\'s LlamaForCausalLM', () => {
  it('greedy decoding gives run.c\'s token ids', () => {
    assert.equal(expected.generated_ids.length, expected.max_new_tokens);
    assert.deepEqual(greedyIds(convertToTemp(), expected.max_new_tokens), expected.generated_ids);
  });

  it('an unshared classifier (negative vocab_size) becomes lm_head.weight and tie_word_embeddings false', () => {
    // The same model written as llama2.c writes an untied one: vocab_size negated, the classifier after the RoPE
    // tables. With the embedding as its classifier, run.c's greedy ids are unchanged.
    const bytes = readFileSync(MODEL);
    const ck = readLlama2cCheckpoint(MODEL);
    const untied = Buffer.concat([bytes, Buffer.from(ck.tokenEmbedding.buffer, ck.tokenEmbedding.byteOffset, ck.tokenEmbedding.byteLength)]);
    untied.writeInt32LE(-512, 20);
    const dir = mkdtempSync(join(tmpdir(), 'ajar-l2c-untied-'));
    const model = join(dir, 'untied.bin');
    writeFileSync(model, untied);
    const out = join(dir, 'hf');
    convertLlama2c({ model, tokenizer: TOKENIZER, out });
    const folder = loadModelFolder(out);
    assert.equal(folder.config.tie_word_embeddings, false);
    assert.deepEqual(folder.weights.get('lm_head.weight')!.shape, [512, 64]);
    assert.deepEqual(folder.weights.get('lm_head.weight')!.data, ck.tokenEmbedding);
    assert.deepEqual(greedyIds(out, 16), expected.generated_ids.slice(0, 16));
  });
});

describe('permuteRope', () => {
  it('moves each head\'s interleaved pairs to halves as convert_llama_weights_to_hf.py\'s permute', () => {
    // view(2 heads, hs/2 = 2, 2, cols = 1).transpose(1, 2): head rows [0 1 2 3] -> [0 2 1 3].
    const w = Float32Array.from([0, 1, 2, 3, 10, 11, 12, 13]);
    assert.deepEqual(Array.from(permuteRope(w, 2, 1)), [0, 2, 1, 3, 10, 12, 11, 13]);
    // Two columns: whole rows move.
    const w2 = Float32Array.from([0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5]);
    assert.deepEqual(Array.from(permuteRope(w2, 1, 2)), [0, 0.5, 2, 2.5, 1, 1.5, 3, 3.5]);
  });
});

describe('convertLlama2c refuses bad input and leaves nothing behind', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ajar-l2c-bad-'));
  const bytes = readFileSync(MODEL);
  const tokBytes = readFileSync(TOKENIZER);
  const write = (name: string, data: Uint8Array): string => {
    const p = join(dir, name);
    writeFileSync(p, data);
    return p;
  };
  const entriesBeside = (): string[] => readdirSync(dir).filter((n) => n.includes('hf'));

  it('a truncated model .bin is bad_weights naming both sizes; no folder is written', () => {
    const model = write('short.bin', bytes.subarray(0, bytes.length - 100));
    const out = join(dir, 'short-hf');
    throwsCode(() => convertLlama2c({ model, tokenizer: TOKENIZER, out }), 'bad_weights',
      new RegExp(`truncated: .*needs ${bytes.length} bytes, the file has ${bytes.length - 100}`));
    assert.equal(existsSync(out), false);
    assert.deepEqual(entriesBeside(), []);
  });

  it('a model .bin with bytes past its arrays, or a garbled header, is bad_weights', () => {
    const long = write('long.bin', Buffer.concat([bytes, Buffer.alloc(8)]));
    throwsCode(() => convertLlama2c({ model: long, tokenizer: TOKENIZER, out: join(dir, 'long-hf') }), 'bad_weights',
      /longer than its header says/);
    const garbled = Buffer.from(bytes);
    garbled.writeInt32LE(7, 12); // n_heads 7 does not divide dim 64
    const g = write('garbled.bin', garbled);
    throwsCode(() => convertLlama2c({ model: g, tokenizer: TOKENIZER, out: join(dir, 'garbled-hf') }), 'bad_weights',
      /n_heads 7.*dim must split into n_heads heads/);
    const tiny = write('tiny.bin', bytes.subarray(0, 10));
    throwsCode(() => convertLlama2c({ model: tiny, tokenizer: TOKENIZER, out: join(dir, 'tiny-hf') }), 'bad_weights',
      /shorter than the 28-byte llama2\.c header/);
    assert.deepEqual(entriesBeside(), []);
  });

  it('a truncated or oversized tokenizer .bin is bad_tokenizer', () => {
    const short = write('short-tok.bin', tokBytes.subarray(0, tokBytes.length - 3));
    throwsCode(() => convertLlama2c({ model: MODEL, tokenizer: short, out: join(dir, 'tok-hf') }), 'bad_tokenizer',
      /truncated: token 511 needs/);
    const long = write('long-tok.bin', Buffer.concat([tokBytes, Buffer.alloc(4)]));
    throwsCode(() => convertLlama2c({ model: MODEL, tokenizer: long, out: join(dir, 'tok-hf') }), 'bad_tokenizer',
      /4 bytes follow the model's 512 tokens/);
    assert.deepEqual(entriesBeside(), []);
  });

  it('a missing model or tokenizer file is a clear error', () => {
    throwsCode(() => convertLlama2c({ model: join(dir, 'nope.bin'), tokenizer: TOKENIZER, out: join(dir, 'x-hf') }),
      'model_not_found', /llama2\.c model .*nope\.bin does not exist/);
    throwsCode(() => convertLlama2c({ model: MODEL, tokenizer: join(dir, 'nope-tok.bin'), out: join(dir, 'x-hf') }),
      'bad_tokenizer', /llama2\.c tokenizer .*nope-tok\.bin does not exist/);
  });

  it('a non-empty --out is refused unless forced, and then replaced whole', () => {
    const out = join(dir, 'busy-hf');
    mkdirSync(out);
    copyFileSync(TOKENIZER, join(out, 'keep.bin'));
    throwsCode(() => convertLlama2c({ model: MODEL, tokenizer: TOKENIZER, out }), 'out_exists', /is not empty/);
    assert.deepEqual(readdirSync(out), ['keep.bin']);
    convertLlama2c({ model: MODEL, tokenizer: TOKENIZER, out, force: true });
    assert.equal(existsSync(join(out, 'keep.bin')), false);
    assert.ok(existsSync(join(out, 'model.safetensors')));
    assert.deepEqual(entriesBeside(), ['busy-hf']);
  });
});
