// Loading Llama checkpoints: F32, F16 and sharded BF16 folders written by PyTorch
// (test/golden/llama-load/make_llama_load.py) load to PyTorch's float32 values, and a folder ajar cannot run
// (unknown rope_scaling, weight shapes against the config, an unknown tokenizer model) is refused with one
// line naming the field, before the model's memory is allocated, and by the CLI with exit code 2.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openWeights, readConfig, readWeights } from '../../src/io/folder.js';
import { writeSafetensors } from '../../src/io/safetensors.js';
import { buildShapesOnly } from '../../src/nn/index.js';
import { buildModel, loadPretrained } from '../../src/models/index.js';
import { AjarError } from '../../src/tensor/errors.js';
import { forEachBackend, useReferenceBackend } from '../helpers/backends.js';
import { runCli } from '../helpers/cli.js';
import { goldenPath, readGoldenJson } from '../helpers/golden.js';

const FOLDERS = ['f32', 'f16', 'bf16-sharded'];
const expected = readGoldenJson<{ config: Record<string, unknown>; folders: Record<string, Record<string, number[]>> }>(
  'llama-load/expected.json');

function bitsOf(f: Float32Array): number[] {
  return Array.from(new Uint32Array(f.buffer, f.byteOffset, f.length));
}

const root = mkdtempSync(join(tmpdir(), 'ajar-llama-load-'));
after(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;

/** A copy of the golden f32 folder with config.json edited by `edit`. */
function editedFolder(edit: (config: Record<string, unknown>) => void, from = 'f32'): string {
  const dir = join(root, `m${counter++}`);
  cpSync(goldenPath(`llama-load/${from}`), dir, { recursive: true });
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
  edit(config);
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  return dir;
}

/** `f` throws an AjarError with `code` whose one-line message contains every string in `mentions`. */
function refuses(f: () => unknown, code: string, mentions: string[]): void {
  assert.throws(f, (e: unknown) => {
    assert.ok(e instanceof AjarError, `expected an AjarError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.ok(!e.message.includes('\n'), `one line: ${e.message}`);
    for (const m of mentions) assert.ok(e.message.includes(m), `message should mention ${m}: ${e.message}`);
    return true;
  });
}

/** `ajar generate` on the folder exits 2 with one stderr line naming every mention. */
function cliRefuses(dir: string, mentions: string[]): void {
  const r = runCli(['generate', '--model', dir, '--prompt', 'hi', '--max-new-tokens', '1', '--backend', 'js']);
  assert.equal(r.code, 2, r.stderr);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  for (const m of mentions) assert.ok(lines[0].includes(m), `stderr should mention ${m}: ${lines[0]}`);
}

forEachBackend('loading Llama checkpoints', (b) => {
  for (const name of FOLDERS) {
    test(`${name}: every parameter holds PyTorch's float32 value`, () => {
      const { model, tokenizer } = loadPretrained(goldenPath(`llama-load/${name}`));
      assert.equal(model.architecture, 'LlamaForCausalLM');
      assert.deepEqual(tokenizer.encode('hi'), [104, 105]);
      const want = expected.folders[name];
      const params = new Map(model.module.namedParameters());
      assert.equal(params.size, Object.keys(expected.folders.f32).length);
      for (const [pname, t] of params) assert.deepEqual(bitsOf(t.data), want[pname], pname);
    });
  }

  test('F16 and sharded BF16 load to the same values as F32 (the fixture holds values exact in all three)', () => {
    const ref = new Map(loadPretrained(goldenPath('llama-load/f32')).model.module.namedParameters());
    for (const name of ['f16', 'bf16-sharded']) {
      for (const [pname, t] of loadPretrained(goldenPath(`llama-load/${name}`)).model.module.namedParameters()) {
        assert.deepEqual(t.data, ref.get(pname)!.data, `${name} ${pname}`);
      }
    }
  });

  test('onProgress counts every parameter value read, ending at the total', () => {
    const calls: [number, number][] = [];
    const { model } = loadPretrained(goldenPath('llama-load/bf16-sharded'), { onProgress: (done, total) => calls.push([done, total]) });
    assert.equal(calls.length, 1 + model.module.namedParameters().length);
    assert.deepEqual(calls[0], [0, model.module.numParameters()]);
    assert.deepEqual(calls.at(-1), [model.module.numParameters(), model.module.numParameters()]);
    for (let i = 1; i < calls.length; i++) assert.ok(calls[i][0] > calls[i - 1][0]);
  });

  test('ajar generate runs each folder, greedy ids the same from F32, F16 and sharded BF16', () => {
    const ids = FOLDERS.map((name) => {
      const r = runCli(['generate', '--model', goldenPath(`llama-load/${name}`), '--prompt', 'hi', '--max-new-tokens', '3',
        '--temperature', '0', '--json', '--backend', b.name]);
      assert.equal(r.code, 0, r.stderr);
      return (JSON.parse(r.stdout) as { ids: number[] }).ids;
    });
    assert.equal(ids[0].length, 3);
    assert.deepEqual(ids[1], ids[0]);
    assert.deepEqual(ids[2], ids[0]);
  });

  test('readWeights still reads a sharded folder whole, a stored tied lm_head included', () => {
    const w = readWeights(goldenPath('llama-load/bf16-sharded'));
    assert.deepEqual(bitsOf(w.get('lm_head.weight')!.data), expected.folders['bf16-sharded']['lm_head.weight']);
    assert.equal(openWeights(goldenPath('llama-load/bf16-sharded')).dtypeOf('lm_head.weight'), 'BF16');
  });

  test('a shapes-only build declares the real shapes and allocates no parameter', () => {
    const config = readConfig(goldenPath('llama-load/f32'));
    const plan = buildShapesOnly(() => buildModel(config));
    const real = buildModel(config);
    assert.deepEqual(plan.module.namedParameterShapes(), real.module.namedParameterShapes());
    for (const [, t] of plan.module.namedParameters()) assert.equal(t.data.length, 0);
    assert.throws(() => plan.loadWeights(openWeights(goldenPath('llama-load/f32')), 'x'), /shapes-only/);
  });
});

describe('refusing what ajar cannot run', () => {
  before(useReferenceBackend);

  test('an unknown rope_scaling type names rope_scaling', () => {
    const dir = editedFolder((c) => {
      c.rope_scaling = { rope_type: 'yarn', factor: 4 };
    });
    refuses(() => loadPretrained(dir), 'bad_config', ['config.json', 'rope_scaling', '"yarn"']);
    cliRefuses(dir, ['rope_scaling', 'yarn']);
  });

  test('a config claiming a huge model its weights disagree with is refused fast, nothing allocated', () => {
    // 2^20 x 2^20 embeddings would be 4 TiB of float32: allocating it would throw a RangeError, not this.
    const dir = editedFolder((c) => {
      c.hidden_size = 2 ** 20;
      c.vocab_size = 2 ** 20;
      c.intermediate_size = 2 ** 22;
    });
    const t0 = performance.now();
    const rss0 = process.memoryUsage().rss;
    refuses(() => loadPretrained(dir), 'bad_weights', ["'model.embed_tokens.weight'", '(256, 8)', '(1048576, 1048576)',
      'vocab_size 1048576, hidden_size 1048576']);
    assert.ok(performance.now() - t0 < 5000, 'refused without building the model');
    assert.ok(process.memoryUsage().rss - rss0 < 256 * 2 ** 20, 'refused without allocating the model');
    cliRefuses(dir, ['model.embed_tokens.weight', '(1048576, 1048576)']);
  });

  test('one layer shape off names that tensor', () => {
    const dir = editedFolder((c) => {
      c.intermediate_size = 17;
    });
    refuses(() => loadPretrained(dir), 'bad_weights', ["'model.layers.0.mlp.gate_proj.weight'", '(16, 8)', '(17, 8)',
      'intermediate_size 17, hidden_size 8']);
  });

  test('a stored tied lm_head of another shape is refused', () => {
    const dir = join(root, `m${counter++}`);
    cpSync(goldenPath('llama-load/bf16-sharded'), dir, { recursive: true });
    // Untie: lm_head.weight is then a parameter of shape (vocab, hidden) like the stored one, so loading works.
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, tie_word_embeddings: false }));
    const { model } = loadPretrained(dir);
    const head = new Map(model.module.namedParameters()).get('lm_head.weight')!;
    assert.deepEqual(bitsOf(head.data), expected.folders['bf16-sharded']['lm_head.weight']);
    // A tied model with a stored head whose shape disagrees with the embeddings' (here transposed).
    const tied = editedFolder(() => undefined);
    const weights = readWeights(tied);
    weights.set('lm_head.weight', { shape: [8, 256], data: new Float32Array(2048) });
    writeSafetensors(join(tied, 'model.safetensors'), weights);
    refuses(() => loadPretrained(tied), 'bad_weights', ["'lm_head.weight'", '(8, 256)', '(256, 8)', 'tied']);
  });

  test('an unknown tokenizer model type names model.type', () => {
    const dir = editedFolder(() => undefined);
    const tokenizer = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify({ ...tokenizer, model: { type: 'Unigram', vocab: [] } }));
    refuses(() => loadPretrained(dir), 'bad_tokenizer', ['tokenizer.json', 'model.type', 'Unigram']);
    cliRefuses(dir, ['model.type', 'Unigram']);
  });
});
