// `ajar quantize` (models/quantize.ts): the folder format the docs describe, loading it back into the int8 kernels,
// the refusals (training, merging and a plain load; bad configs and tensors), and the accuracy bar: the
// evaluation loss on held-out text rises by at most 1% relative, on GPT-2's shape (test/golden/gpt2-tiny, written
// by make_gpt2_tiny.py, PyTorch's loss as the float32 baseline) and on a shakespeare-char run trained here.
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { evaluateLM } from '../../src/eval/lm.js';
import { openWeights } from '../../src/io/folder.js';
import { readSafetensorsHeader, writeSafetensors, type Int8Tensor, type WeightTensor } from '../../src/io/safetensors.js';
import { Conv1D, Embedding } from '../../src/nn/index.js';
import { loadCausalLM, loadPretrained } from '../../src/models/index.js';
import { AjarError, quantizeQ8, setBackend } from '../../src/tensor/index.js';
import { backends, useReferenceBackend } from '../helpers/backends.js';
import { runCli } from '../helpers/cli.js';
import { goldenPath, readGoldenJson } from '../helpers/golden.js';

const tiny = goldenPath('gpt2-tiny');
const tmp = mkdtempSync(join(tmpdir(), 'ajar-quantize-'));
const q8 = join(tmp, 'gpt2-tiny-int8');

/** Rise of `after` over `before`, relative. */
const rise = (after: number, before: number): number => (after - before) / before;

describe('ajar quantize on gpt2-tiny', () => {
  before(() => {
    useReferenceBackend();
    const r = runCli(['quantize', '--model', tiny, '--out', q8, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { modules: number; group_size: number; float32_bytes: number; quantized_bytes: number };
    // wte, wpe and 3 x (c_attn, attn.c_proj, c_fc, mlp.c_proj): n_embd 96 and n_inner 384 split into groups of 32.
    assert.equal(out.modules, 14);
    assert.equal(out.group_size, 32);
    assert.ok(out.quantized_bytes < 0.3 * out.float32_bytes, `${out.quantized_bytes} vs ${out.float32_bytes}`);
  });

  it('writes the documented format: quantization_config, NAME.qweight I8 (out, in), NAME.scales F32', () => {
    const config = JSON.parse(readFileSync(join(q8, 'config.json'), 'utf8')) as { quantization_config: Record<string, unknown> };
    const qc = config.quantization_config;
    assert.equal(qc.quant_method, 'ajar_q8_0');
    assert.equal(qc.bits, 8);
    assert.equal(qc.group_size, 32);
    assert.equal(qc.scale_dtype, 'float32');
    assert.ok((qc.modules as string[]).includes('transformer.h.0.attn.c_attn.weight'));
    const { tensors } = readSafetensorsHeader(join(q8, 'model.safetensors'));
    const at = (n: string): [string, readonly number[]] | undefined => {
      const t = tensors.get(n);
      return t && [t.dtype, t.shape];
    };
    assert.deepEqual(at('transformer.h.0.attn.c_attn.qweight'), ['I8', [288, 96]]); // Conv1D (96, 288) transposed
    assert.deepEqual(at('transformer.h.0.attn.c_attn.scales'), ['F32', [288, 3]]);
    assert.deepEqual(at('transformer.wte.qweight'), ['I8', [50257, 96]]);
    assert.equal(at('transformer.h.0.attn.c_attn.weight'), undefined);
    assert.deepEqual(at('transformer.h.0.attn.c_attn.bias'), ['F32', [288]]);
    assert.deepEqual(at('transformer.ln_f.weight'), ['F32', [96]]);
  });

  it('loads back into the int8 layers: the values quantizeQ8 gives the float32 weights', () => {
    const fp = loadCausalLM(tiny).model;
    const q = loadCausalLM(q8, { int8: true }).model;
    const layers = new Map(q.module.namedModules());
    let checked = 0;
    for (const [name, m] of fp.module.namedModules()) {
      const other = layers.get(name);
      if (!(m instanceof Conv1D || m instanceof Embedding) || !(other instanceof Conv1D || other instanceof Embedding)) continue;
      const [rows, cols] = m instanceof Conv1D ? [m.outFeatures, m.inFeatures] : [m.num, m.dim];
      let w = m.weight.data;
      if (m instanceof Conv1D) {
        w = new Float32Array(rows * cols);
        for (let i = 0; i < cols; i++) for (let o = 0; o < rows; o++) w[o * cols + i] = m.weight.data[i * rows + o];
      }
      const want = quantizeQ8(w, rows, cols);
      assert.ok(other.quant, `${name} is not int8`);
      assert.deepEqual(other.quant.q, want.q, name);
      assert.deepEqual(other.quant.scales, want.scales, name);
      assert.equal(other.weight.size, 0, `${name} kept its float32 weight`);
      checked++;
    }
    assert.equal(checked, 14);
  });

  it('refuses a plain load, training from it and merging into it; generate runs', () => {
    assert.throws(() => loadPretrained(q8), (e: unknown) => e instanceof AjarError && e.code === 'quantized_model');
    const train = runCli(['train', '--init-from', q8, '--data', goldenPath('gpt2-tiny/eval.txt'), '--max-iters', '1', '--out', join(tmp, 'train')]);
    assert.equal(train.code, 2, train.stderr);
    assert.match(train.stderr, /int8 weights/);
    const gen = runCli(['generate', '-m', q8, '-p', 'The', '-n', '3', '-t', '0', '--json']);
    assert.equal(gen.code, 0, gen.stderr);
  });

  it('refuses an --out that holds files, without --force', () => {
    const r = runCli(['quantize', '--model', tiny, '--out', q8]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /exists and is not empty/);
  });

  it('refuses a folder whose quantization_config or int8 tensors are wrong, naming what', () => {
    const broken = (edit: (dir: string) => void): string => {
      const dir = mkdtempSync(join(tmp, 'broken-'));
      cpSync(q8, dir, { recursive: true });
      edit(dir);
      return dir;
    };
    const editConfig = (f: (qc: Record<string, unknown>) => void) => (dir: string): void => {
      const c = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as { quantization_config: Record<string, unknown> };
      f(c.quantization_config);
      writeFileSync(join(dir, 'config.json'), JSON.stringify(c));
    };
    const code = (dir: string, want: string, re: RegExp): void => {
      assert.throws(() => loadCausalLM(dir, { int8: true }), (e: unknown) => e instanceof AjarError && e.code === want && re.test(e.message));
    };
    code(broken(editConfig((qc) => { qc.quant_method = 'gptq'; })), 'bad_config', /"gptq" is not supported/);
    code(broken(editConfig((qc) => { qc.group_size = 24; })), 'bad_config', /group_size/);
    code(broken(editConfig((qc) => { qc.modules = ['transformer.h.0.ln_1.weight']; })), 'bad_config', /ln_1.weight/);
    /** The folder's tensors rewritten by `f` (name, tensor) -> tensor to write, or null to leave it out. */
    const rewrite = (f: (name: string, t: WeightTensor | Int8Tensor) => WeightTensor | Int8Tensor | null) => (dir: string): void => {
      const files = openWeights(dir, { int8: true });
      const out = new Map<string, WeightTensor | Int8Tensor>();
      for (const name of files.keys()) {
        const shape = files.shapeOf(name)!;
        const n = shape.reduce((a, b) => a * b, 1);
        let t: WeightTensor | Int8Tensor;
        if (files.dtypeOf(name) === 'I8') {
          t = { shape, data: new Int8Array(n) };
          files.readInt8Into(name, t.data);
        } else {
          t = { shape, data: new Float32Array(n) };
          files.readInto(name, t.data);
        }
        const kept = f(name, t);
        if (kept) out.set(name, kept);
      }
      writeSafetensors(join(dir, 'model.safetensors'), out);
    };
    code(broken(rewrite((n, t) => (n === 'transformer.h.1.mlp.c_fc.scales' ? null : t))), 'bad_weights',
      /'transformer.h.1.mlp.c_fc.scales' is missing/);
    code(broken(rewrite((n, t) => (n === 'transformer.wpe.qweight' ? { shape: t.shape, data: Float32Array.from(t.data) } : t))),
      'bad_weights', /'transformer.wpe.qweight' is F32 \(128, 96\), expected I8/);
  });
});

describe('int8 accuracy on GPT-2\'s shape (gpt2-tiny)', () => {
  // NOTE: on the fastest backend only (the kernels are checked against each other above and in tensor/quant.test.ts;
  // the js reference takes half a minute over the 50,257-word head).
  before(() => setBackend(backends[backends.length - 1]));
  it('the evaluation loss rises at most 1% over PyTorch\'s float32 loss', () => {
    const expected = readGoldenJson<{ eval: Record<string, { loss: number }>; eval_ids: number[] }>('gpt2-tiny/expected.json');
    const q = loadCausalLM(q8, { int8: true }).model;
    const r = evaluateLM(q, expected.eval_ids, { blockSize: 128 });
    const torchLoss = expected.eval['128'].loss;
    assert.ok(rise(r.loss, torchLoss) <= 0.01, `int8 loss ${r.loss} vs PyTorch float32 ${torchLoss}`);
  });
});

describe('int8 accuracy on a shakespeare-char run', () => {
  it('the held-out loss of a briefly trained preset model rises at most 1%', () => {
    const run = join(tmp, 'sc');
    const train = runCli(['train', '--preset', 'shakespeare-char', '--max-iters', '200', '--n-layer', '2', '--eval-interval', '200',
      '--eval-iters', '1', '--sample-tokens', '0', '--out', run, '--json']);
    assert.equal(train.code, 0, train.stderr);
    const out = join(tmp, 'sc-int8');
    const r = runCli(['quantize', '--model', run, '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    // The last 20,000 characters: inside the preset's validation tenth, never trained on.
    const text = readFileSync(goldenPath('../../examples/data/tinyshakespeare.txt'), 'utf8').slice(-20000);
    const held = join(tmp, 'held.txt');
    writeFileSync(held, text);
    const evalOf = (dir: string): number => {
      const e = runCli(['eval', '-m', dir, '--data', held, '--json']);
      assert.equal(e.code, 0, e.stderr);
      return (JSON.parse(e.stdout) as { loss: number }).loss;
    };
    const [fp, int8] = [evalOf(run), evalOf(out)];
    assert.ok(fp < 3, `the run did not learn (held-out loss ${fp})`);
    assert.ok(rise(int8, fp) <= 0.01, `int8 ${int8} vs float32 ${fp}`);
  });
});
