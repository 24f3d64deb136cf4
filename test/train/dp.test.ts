// DP-SGD: one step's gradient against PyTorch clipping each example's gradient on its own
// (test/golden/dp/make_dp_step.py), for a language model, a classifier, documents cut into windows (one clip per
// document) and LoRA adapters, under ghost clipping and materialised per-example gradients; Poisson sampling's
// batch sizes against the binomial distribution; the noise against the normal distribution.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { ExampleBatcher, type ExampleBatch } from '../../src/data/index.js';
import { attachLora } from '../../src/models/index.js';
import { buildModel } from '../../src/models/registry.js';
import { Rng, type Tensor } from '../../src/tensor/index.js';
import { dpGradient, poissonSample } from '../../src/train/dp.js';
import { addGaussianNoise } from '../../src/train/noise.js';
import { perExampleLoss } from '../../src/train/gradient.js';
import type { ClipChoice } from '../../src/train/per-example.js';
import { SGD, decayGroups } from '../../src/train/optim.js';
import { forEachBackend } from '../helpers/backends.js';
import { readGoldenJson } from '../helpers/golden.js';

interface Case {
  config: Record<string, unknown>;
  weights: Record<string, { shape: number[]; data: number[] }>;
  examples: number[][];
  max_grad_norm: number;
  expected_batch: number;
  lr: number;
  norms: number[];
  dp_grad: Record<string, number[]>;
  after_sgd: Record<string, number[]>;
  /** classifier: each example's label. */
  labels?: number[];
  /** documents: the documents, cut into windows of `block` predictions. */
  documents?: number[][];
  block?: number;
  /** lora: the adapter's tensors under PEFT's names, and its settings. */
  adapter?: Record<string, { shape: number[]; data: number[] }>;
  lora?: { r: number; lora_alpha: number; target_modules: string[] };
}

const golden = readGoldenJson<{ lm: Case; classifier: Case; documents: Case; lora: Case }>('dp/dp_step.json');

/** The examples as ajar's ExampleBatcher lays them out: right-padded rows, next-token targets from the lengths. */
function batchOf(examples: number[][], labels?: number[]): ExampleBatch {
  const B = examples.length;
  const T = Math.max(...examples.map((e) => e.length));
  const ids = new Int32Array(B * T); // (B, T), padding id 0
  const attentionMask = new Float32Array(B * T);
  examples.forEach((e, b) => {
    ids.set(e, b * T);
    attentionMask.fill(1, b * T, b * T + e.length);
  });
  const b: ExampleBatch = { ids, batch: B, block: T, attentionMask, lengths: Int32Array.from(examples.map((e) => e.length)), indices: Int32Array.from(examples.keys()) };
  if (labels) b.labels = Int32Array.from(labels);
  return b;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

forEachBackend('DP-SGD step', () => {
  for (const clipping of ['auto', 'ghost', 'materialised'] as const) {
    for (const kind of ['lm', 'classifier'] as const) {
      it(`${kind}, ${clipping} norms: clipped, summed, divided by the expected batch size: equal to PyTorch per-example clipping within 1e-5`, () => {
        const methods = checkStep(golden[kind], clipping);
        const of = (name: string): string | undefined => methods.get(name);
        if (clipping === 'materialised') {
          assert.ok([...methods.values()].every((m) => m === 'materialised'));
        } else {
          // Biases and norm weights are always materialised; linear weights go ghost when T^2 < d_in d_out (auto)
          // or when forced. wte: the language model's is tied (embedding and head, three pairs of uses: 3 x 81 < 23 x 16),
          // the classifier's only embeds (81 < 23 x 16).
          assert.equal(of('transformer.h.0.ln_1.weight'), 'materialised');
          assert.equal(of('transformer.h.0.attn.c_attn.bias'), 'materialised');
          assert.equal(of('transformer.h.0.attn.c_attn.weight'), 'ghost'); // 9^2 < 16 x 48
          assert.equal(of('transformer.h.1.mlp.c_proj.weight'), 'ghost'); // 81 < 64 x 16
          assert.equal(of('transformer.wte.weight'), 'ghost');
          if (kind === 'classifier') assert.equal(of('score.weight'), 'ghost'); // one row per example: 1 < 3 x 16
        }
      });
    }
    it(`documents of 13, 4 and 8 predictions in windows of 6 (3, 1 and 2 rows), ${clipping} norms: one clip per document, equal to PyTorch within 1e-5`, () => {
      const g = golden.documents;
      const data = { kind: 'examples' as const, task: 'lm' as const, examples: g.documents!.map((d) => ({ ids: Int32Array.from(d) })), source: 'dp_step.json' };
      const batch = new ExampleBatcher(data, 3, g.block!, 0, 0, { windows: true }).batchOf(Int32Array.from([0, 1, 2]));
      assert.deepEqual([...batch.spans!], [0, 3, 4, 6]);
      checkStep(g, clipping, batch);
    });
    it(`LoRA r 2 on c_attn, base frozen, ${clipping} norms: the adapter's clipped gradient equal to PyTorch within 1e-5`, () => {
      checkStep(golden.lora, clipping);
    });
  }
});

function checkStep(golden: Case, clipping: ClipChoice, batch = batchOf(golden.examples, golden.labels)): Map<string, string> {
  const model = buildModel(golden.config, 'dp_step.json');
  model.loadWeights(new Map(Object.entries(golden.weights).map(([n, w]) => [n, { shape: w.shape, data: Float32Array.from(w.data) }])), 'dp_step.json');
  model.module.train(true);
  let named = model.module.namedParameters();
  let params = model.module.parameters();
  if (golden.lora) {
    const set = attachLora(model, { ...golden.lora, lora_dropout: 0, use_rslora: false, modules_to_save: null }, null, 'dp_step.json');
    set.loadStateDict(new Map(Object.entries(golden.adapter!).map(([n, w]) => [n, { shape: w.shape, data: Float32Array.from(w.data) }])), 'dp_step.json');
    for (const p of params) p.requiresGrad = false;
    params = set.trainableParameters();
    const byData = new Map(params.map((t) => [t.data, t]));
    named = [...set.stateDict()].map(([n, t]) => [n, byData.get(t.data)!]);
  }
  const r = dpGradient({
    params, names: new Map(named.map(([n, t]) => [t, n])), batch: golden.norms.length, spans: batch.spans,
    loss: () => perExampleLoss(model, batch, {}).loss, maxGradNorm: golden.max_grad_norm, noiseMultiplier: 0,
    expectedBatch: golden.expected_batch, rng: new Rng(0), clipping,
  });
  // The per-example norms decide the clipping: one example under C, two over it.
  for (let e = 0; e < 3; e++) assert.ok(Math.abs(r.norms[e] - golden.norms[e]) < 1e-4 * golden.norms[e], `norm ${e}: ${r.norms[e]} vs ${golden.norms[e]}`);
  const byName = new Map<string, Tensor>(named as [string, Tensor][]);
  assert.equal(params.length, Object.keys(golden.dp_grad).length, 'every trained parameter has a reference gradient');
  for (const [name, want] of Object.entries(golden.dp_grad)) {
    const p = byName.get(name);
    assert.ok(p?.grad, `${name} has a gradient`);
    assert.ok(maxAbsDiff(p.grad.data, want) < 1e-5, `${name}: gradient differs by ${maxAbsDiff(p.grad.data, want)}`);
  }
  new SGD(decayGroups(params, 0), { lr: golden.lr, momentum: 0 }).step();
  for (const [name, want] of Object.entries(golden.after_sgd)) {
    const d = maxAbsDiff(byName.get(name)!.data, want);
    assert.ok(d < 1e-5, `${name} after one SGD step differs by ${d}`);
  }
  const names = new Map(named.map(([n, t]) => [t, n]));
  return new Map([...r.methods].map(([t, m]) => [names.get(t)!, m]));
}

it('Poisson sampling: batch sizes are binomial(N, q) in mean and variance', () => {
  // 2000 draws of Binomial(N 500, q 0.05): mean 25, variance 23.75. The sample mean's z-score and the sample
  // variance's chi-square ((n - 1) s^2 / sigma^2 ~ chi2(n - 1), mean n - 1, sd sqrt(2 (n - 1))) stay within 4 sd.
  const N = 500;
  const q = 0.05;
  const draws = 2000;
  const rng = new Rng(1234);
  const sizes: number[] = [];
  let empty = 0;
  for (let k = 0; k < draws; k++) {
    const idx = poissonSample(N, q, rng);
    for (let i = 1; i < idx.length; i++) assert.ok(idx[i] > idx[i - 1], 'indices are distinct and increasing');
    sizes.push(idx.length);
  }
  const mean = sizes.reduce((a, b) => a + b, 0) / draws;
  const s2 = sizes.reduce((a, b) => a + (b - mean) ** 2, 0) / (draws - 1);
  const variance = N * q * (1 - q);
  const z = (mean - N * q) / Math.sqrt(variance / draws);
  assert.ok(Math.abs(z) < 4, `mean ${mean}: z ${z}`);
  const chi = ((draws - 1) * s2) / variance;
  const chiZ = (chi - (draws - 1)) / Math.sqrt(2 * (draws - 1));
  assert.ok(Math.abs(chiZ) < 4, `variance ${s2} vs ${variance}: chi-square z ${chiZ}`);
  // At q = 1 / N the batch is empty with probability (1 - 1/N)^N ~ e^-1: empty batches happen.
  const r2 = new Rng(99);
  for (let k = 0; k < 400; k++) if (poissonSample(50, 1 / 50, r2).length === 0) empty++;
  const pEmpty = (1 - 1 / 50) ** 50;
  const zEmpty = (empty / 400 - pEmpty) / Math.sqrt((pEmpty * (1 - pEmpty)) / 400);
  assert.ok(Math.abs(zEmpty) < 4, `empty batches ${empty} of 400: z ${zEmpty}`);
});

it('DP noise (ziggurat): N(0, std^2) by the Kolmogorov-Smirnov test, with the tails beyond the base layer', () => {
  // The reference is the normal distribution itself: its CDF (erf, Abramowitz & Stegun 7.1.26, error < 1.5e-7)
  // and P(|x| > 3.5) = 4.6525e-4 (Phi(-3.5) = 2.3263e-4).
  const n = 200_000;
  const std = 2.5;
  const x = new Float32Array(n);
  addGaussianNoise(x, new Rng(7), std);
  const sorted = Float64Array.from(x, (v) => v / std).sort();
  let d = 0;
  for (let i = 0; i < n; i++) {
    const cdf = normalCdf(sorted[i]);
    d = Math.max(d, Math.abs(cdf - i / n), Math.abs((i + 1) / n - cdf));
  }
  assert.ok(d < 1.63 / Math.sqrt(n), `KS statistic ${d} (1% critical value ${1.63 / Math.sqrt(n)})`);
  const tails = sorted.filter((v) => Math.abs(v) > 3.5).length;
  const p = 4.6525e-4;
  assert.ok(Math.abs(tails - n * p) < 4 * Math.sqrt(n * p), `${tails} beyond 3.5 sd, expected ${n * p}`);
  // Added, not written: noise goes on top of the clipped sum.
  const base = new Float32Array(4).fill(10);
  addGaussianNoise(base, new Rng(1), 0);
  assert.deepEqual([...base], [10, 10, 10, 10]);
});

function normalCdf(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const erf = 1 - t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))) * Math.exp(-x * x);
  return z >= 0 ? 0.5 * (1 + erf) : 0.5 * (1 - erf);
}
