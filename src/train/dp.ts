// DP-SGD (Abadi et al. 2016) with Opacus's semantics: Poisson sampling at rate q = batch size / N, each example's
// gradient clipped to norm C as one flat vector (factor min(1, C / (norm + 1e-6))), summed, Gaussian noise
// N(0, (S C)^2) added once to the sum, divided by the expected batch size; the RDP accountant reports epsilon.
// Per-example gradients come from one backward pass: each parameter's op (linear, matmul, embedding, layer and
// RMS norm, broadcast mul/add) gets its per-example gradient from its inputs and its output's gradient, as
// Opacus's GradSampleModule computes them for nn.Linear, nn.Embedding and nn.LayerNorm.
import { emptyBuf } from '../tensor/backend.js';
import { AjarError, getBackend, type BackwardHooks, type Rng, Tensor } from '../tensor/index.js';
import { normalFill } from '../tensor/random.js';
import { DEFAULT_ORDERS, computeRdp, defaultDelta, noiseMultiplierFor, privacySpent } from './accountant.js';
import type { GradientMode, StepContext, TrainBatch } from './gradient.js';

/** The run folder's privacy record (PrivacyRecord as JSON), which 'ajar release open' puts in the card's front matter. */
export const PRIVACY_FILE = 'privacy.json';

/** Opacus's clipping guard: factor min(1, C / (norm + 1e-6)). */
const CLIP_EPS = 1e-6;

/** The privacy record of a run: metrics.jsonl, the run's privacy.json and the model card's `privacy:` front matter. */
export interface PrivacyRecord {
  mechanism: 'DP-SGD';
  epsilon: number;
  delta: number;
  noise_multiplier: number;
  max_grad_norm: number;
  sample_rate: number;
  steps: number;
  accountant: string;
}

export interface DpSettings {
  /** N: examples in the training set (the unit of privacy is one example). */
  examples: number;
  /** The expected batch size q N (the configured batch size). */
  batchSize: number;
  maxGradNorm: number;
  /** Given, or null to solve for one from targetEpsilon over plannedSteps. */
  noiseMultiplier: number | null;
  targetEpsilon: number | null;
  /** null: the largest power of ten below 1/N. */
  delta: number | null;
  plannedSteps: number;
}

/** Poisson sampling: each of n examples joins the batch independently with probability q (the batch may be empty). */
export function poissonSample(n: number, q: number, rng: Rng): Int32Array {
  const picked: number[] = [];
  for (let i = 0; i < n; i++) if (rng.nextFloat() < q) picked.push(i);
  return Int32Array.from(picked);
}

/**
 * Per-example gradients of the trained parameters, (B, size) each, filled from a backward pass's output gradients.
 * Rows of every op's input are example-major: B examples of R / B rows each (the batch is the outermost dimension).
 */
export class PerExampleGrads implements BackwardHooks {
  readonly grads = new Map<Tensor, Float32Array>(); // (B, size) per parameter
  /** Parameters whose buffer holds a contribution already (the first product is written in place, not added). */
  private readonly touched = new Set<Tensor>();

  constructor(readonly params: readonly Tensor[], readonly batch: number, private readonly names: Map<Tensor, string>) {
    for (const p of params) this.grads.set(p, new Float32Array(batch * p.size));
  }

  onOutputGrad(t: Tensor, g: Tensor): void {
    const node = t.node!;
    if (!node.inputs.some((x) => this.grads.has(x))) return;
    const [a, b, c] = node.inputs;
    switch (node.op) {
      case 'linear':
        if (this.grads.has(b)) this.weightOfProduct(b, a, g, node.attrs.transW as boolean);
        if (c && this.grads.has(c)) this.rowSum(c, g, null);
        if (this.grads.has(a)) this.unsupported(a, 'as the input of a linear layer');
        return;
      case 'matmul':
        if (this.grads.has(a) || b.rank !== 2 || node.attrs.transA) this.unsupported(this.grads.has(a) ? a : b, 'in a matmul');
        this.weightOfProduct(b, a, g, node.attrs.transB as boolean);
        return;
      case 'embedding':
        this.embedding(a, g, node.attrs.ids as Int32Array);
        return;
      case 'fused_layer_norm':
      case 'fused_rms_norm': {
        const rstd = node.attrs.rstd as Float32Array;
        const mean = node.op === 'fused_layer_norm' ? node.attrs.mean as Float32Array : null;
        if (b && this.grads.has(b)) this.rowSum(b, g, (row, j) => (a.data[row * b.size + j] - (mean ? mean[row] : 0)) * rstd[row]);
        if (c && this.grads.has(c)) this.rowSum(c, g, null);
        if (this.grads.has(a)) this.unsupported(a, 'as the input of a norm');
        return;
      }
      case 'mul':
      case 'add': {
        // A weight or bias broadcast over rows: y = x * w or x + w, w (N) and x of the output's shape.
        const [p, other] = this.grads.has(a) ? [a, b] : [b, a];
        if (this.grads.has(other) || p.size !== g.shape[g.rank - 1] || other.size !== g.size) this.unsupported(p, `in a broadcast ${node.op}`);
        this.rowSum(p, g, node.op === 'mul' ? (row, j) => other.data[row * p.size + j] : null);
        return;
      }
      default:
        this.unsupported(node.inputs.find((x) => this.grads.has(x))!, `in op '${node.op}'`);
    }
  }

  private unsupported(p: Tensor, how: string): never {
    throw new AjarError('dp_unsupported', `--dp: parameter ${this.names.get(p) ?? '?'} is used ${how}, which has no per-example gradient rule; ` +
      'train this model without --dp, or with --lora (adapters on linear layers)');
  }

  /** Rows per example of an op input with `rows` rows. */
  private rowsPerExample(rows: number): number {
    if (rows % this.batch !== 0) throw new Error(`unreachable: ${rows} rows do not split into ${this.batch} examples`);
    return rows / this.batch;
  }

  /**
   * w of x @ w (w (K, N)) or x @ w^T (transposed, w (N, K)): per example e, dW_e = x_e^T g_e or g_e^T x_e over its
   * r rows; one batched product over the B examples.
   */
  private weightOfProduct(w: Tensor, x: Tensor, g: Tensor, transposed: boolean): void {
    const K = x.shape[x.rank - 1];
    const N = g.shape[g.rank - 1];
    const r = this.rowsPerExample(x.size / K);
    const B = this.batch;
    const acc = this.grads.get(w)!;
    const first = !this.touched.has(w);
    this.touched.add(w);
    const out = first ? acc : emptyBuf(B * K * N); // (B, N, K) or (B, K, N)
    const be = getBackend();
    if (transposed) {
      be.matmul(g.data, x.data, out, { batch: B, M: N, K: r, N: K, transA: true, transB: false, aBatchStride: r * N, bBatchStride: r * K });
    } else {
      be.matmul(x.data, g.data, out, { batch: B, M: K, K: r, N, transA: true, transB: false, aBatchStride: r * K, bBatchStride: r * N });
    }
    if (first) return;
    for (let i = 0; i < acc.length; i++) acc[i] += out[i];
    be.free?.(out);
  }

  /** p (N): per example, the sum over its rows of g (times factor(row, j) when given). */
  private rowSum(p: Tensor, g: Tensor, factor: ((row: number, j: number) => number) | null): void {
    const N = p.size;
    const rows = g.size / N;
    const r = this.rowsPerExample(rows);
    const acc = this.grads.get(p)!;
    this.touched.add(p);
    const gd = g.data;
    for (let row = 0; row < rows; row++) {
      const base = Math.floor(row / r) * N;
      for (let j = 0; j < N; j++) acc[base + j] += factor ? gd[row * N + j] * factor(row, j) : gd[row * N + j];
    }
  }

  /** An embedding table (V, D): per example, its rows' gradients added at their ids. */
  private embedding(table: Tensor, g: Tensor, ids: Int32Array): void {
    const D = table.shape[1];
    const r = this.rowsPerExample(ids.length);
    const acc = this.grads.get(table)!;
    this.touched.add(table);
    const gd = g.data;
    for (let row = 0; row < ids.length; row++) {
      const base = Math.floor(row / r) * table.size + ids[row] * D;
      for (let j = 0; j < D; j++) acc[base + j] += gd[row * D + j];
    }
  }

  /** Each example's gradient norm over all parameters, as one flat vector. */
  norms(): Float64Array {
    const out = new Float64Array(this.batch);
    for (const p of this.params) {
      const acc = this.grads.get(p)!;
      for (let e = 0; e < this.batch; e++) {
        let s = 0;
        for (let j = e * p.size; j < (e + 1) * p.size; j++) s += acc[j] * acc[j];
        out[e] += s;
      }
    }
    for (let e = 0; e < this.batch; e++) out[e] = Math.sqrt(out[e]);
    return out;
  }
}

/** DP-SGD as a gradient mode; the loop asks it for each step's gradient and its epsilon so far. */
export class DpSgd implements GradientMode {
  readonly globalClip = false;
  readonly sampleRate: number;
  readonly noiseMultiplier: number;
  readonly delta: number;
  /** RDP of one step at each of DEFAULT_ORDERS (steps compose by adding). */
  private readonly rdpPerStep: number[];
  private readonly names: Map<Tensor, string>;

  /**
   * params: the trained parameters (named by `named`); batchOf builds a batch of the given example indices;
   * rng draws the Poisson samples and the noise.
   */
  constructor(readonly settings: DpSettings, private readonly params: Tensor[], named: Iterable<[string, Tensor]>,
    private readonly batchOf: (indices: Int32Array) => TrainBatch, private readonly rng: Rng) {
    const s = settings;
    if (s.batchSize > s.examples) {
      throw new AjarError('bad_config', `--dp: batch size ${s.batchSize} exceeds the ${s.examples} training examples; the sampling rate batch size / N must be at most 1`);
    }
    this.sampleRate = s.batchSize / s.examples;
    this.delta = s.delta ?? defaultDelta(s.examples);
    this.noiseMultiplier = s.noiseMultiplier ?? noiseMultiplierFor(s.targetEpsilon!, this.delta, this.sampleRate, s.plannedSteps);
    this.rdpPerStep = computeRdp(this.sampleRate, this.noiseMultiplier, 1, DEFAULT_ORDERS);
    this.names = new Map([...named].map(([n, t]) => [t, n]));
  }

  /** Epsilon after `steps` steps at this run's delta. */
  epsilon(steps: number): number {
    if (steps === 0) return 0;
    return privacySpent(DEFAULT_ORDERS, this.rdpPerStep.map((r) => r * steps), this.delta).epsilon;
  }

  record(steps: number): PrivacyRecord {
    return {
      mechanism: 'DP-SGD', epsilon: this.epsilon(steps), delta: this.delta, noise_multiplier: this.noiseMultiplier,
      max_grad_norm: this.settings.maxGradNorm, sample_rate: this.sampleRate, steps, accountant: 'rdp',
    };
  }

  report(steps: number): Record<string, number> {
    return { epsilon: this.epsilon(steps) };
  }

  privacy(steps: number): PrivacyRecord {
    return this.record(steps);
  }

  formGradient(ctx: StepContext): { loss: number; tokens: number } {
    const indices = poissonSample(this.settings.examples, this.sampleRate, this.rng);
    let tokens = 0;
    const loss = (): Tensor => {
      const r = ctx.loss(this.batchOf(indices), true);
      tokens = r.tokens;
      return r.loss;
    };
    const formed = dpGradient({
      params: this.params, names: this.names, batch: indices.length, loss, maxGradNorm: this.settings.maxGradNorm,
      noiseMultiplier: this.noiseMultiplier, expectedBatch: this.settings.batchSize, rng: this.rng,
    });
    return { loss: formed.loss, tokens };
  }
}

export interface DpStep {
  /** The trained parameters; each gets its .grad. */
  params: readonly Tensor[];
  /** Parameter names, for errors. */
  names: Map<Tensor, string>;
  /** Examples in the batch (0: an empty Poisson batch, whose gradient is the noise alone). */
  batch: number;
  /** Builds the sum of the batch's per-example losses, with its graph (not called for an empty batch). */
  loss: () => Tensor;
  maxGradNorm: number;
  noiseMultiplier: number;
  /** The divisor: the expected batch size q N, whatever this batch's size. */
  expectedBatch: number;
  /** Draws the noise. */
  rng: Rng;
}

/**
 * One DP-SGD gradient: per-example gradients from one backward pass, each clipped to maxGradNorm as one flat
 * vector, summed, N(0, (noiseMultiplier maxGradNorm)^2) noise added to the sum, divided by the expected batch size;
 * written into each parameter's .grad. Returns the batch's mean per-example loss (NaN for an empty batch).
 */
export function dpGradient(s: DpStep): { loss: number; norms: Float64Array } {
  const sums = s.params.map((p) => new Float32Array(p.size));
  let loss = NaN;
  let norms: Float64Array = new Float64Array(0);
  if (s.batch > 0) {
    const grads = new PerExampleGrads(s.params, s.batch, s.names);
    const total = s.loss();
    // NOTE: the summed gradient is formed from the per-example ones; turning requiresGrad off for the backward
    // pass makes the gradient rules skip the parameters' own products (dW), which would be thrown away.
    for (const p of s.params) p.requiresGrad = false;
    try {
      total.backward(undefined, grads);
    } finally {
      for (const p of s.params) p.requiresGrad = true;
    }
    loss = total.item() / s.batch;
    norms = grads.norms();
    const factors = Array.from(norms, (n) => Math.min(1, s.maxGradNorm / (n + CLIP_EPS)));
    s.params.forEach((p, k) => {
      const acc = grads.grads.get(p)!;
      const sum = sums[k];
      for (let e = 0; e < s.batch; e++) {
        const f = factors[e];
        for (let j = 0; j < p.size; j++) sum[j] += f * acc[e * p.size + j];
      }
    });
  }
  const std = s.noiseMultiplier * s.maxGradNorm;
  s.params.forEach((p, k) => {
    const sum = sums[k];
    if (std > 0) {
      const noise = new Float32Array(p.size);
      normalFill(noise, s.rng, std);
      for (let j = 0; j < p.size; j++) sum[j] += noise[j];
    }
    for (let j = 0; j < p.size; j++) sum[j] /= s.expectedBatch;
    p.grad = new Tensor(sum, p.shape);
  });
  return { loss, norms };
}
