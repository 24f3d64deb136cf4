// DP-SGD (Abadi et al. 2016) with Opacus's semantics: Poisson sampling at rate q = batch size / N, each example's
// gradient clipped to norm C as one flat vector (factor min(1, C / (norm + 1e-6))), summed, Gaussian noise
// N(0, (S C)^2) added once to the sum, divided by the expected batch size; the RDP accountant reports epsilon.
// Per-example gradient norms come from one backward pass (train/per-example.ts: materialised per-example gradients
// or ghost clipping, chosen per parameter), and the clipped sum from the same pass's factors.
import { AjarError, type Rng, Tensor } from '../tensor/index.js';
import { DEFAULT_ORDERS, computeRdp, defaultDelta, noiseMultiplierFor, privacySpent } from './accountant.js';
import type { GradientMode, StepContext, TrainBatch } from './gradient.js';
import { addGaussianNoise } from './noise.js';
import { PerExampleGrads, type ClipChoice, type ClipMethod } from './per-example.js';

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
    const batch = indices.length > 0 ? this.batchOf(indices) : null;
    const loss = (): Tensor => {
      const r = ctx.loss(batch!, true);
      tokens = r.tokens;
      return r.loss;
    };
    const formed = dpGradient({
      params: this.params, names: this.names, batch: indices.length, spans: batch?.ex?.spans, loss, maxGradNorm: this.settings.maxGradNorm,
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
  /**
   * Example e owns the loss graph's leading rows spans[e] .. spans[e + 1] (a document cut into several windows);
   * default one row each.
   */
  spans?: Int32Array;
  /** Builds the sum of the batch's per-example losses, with its graph (not called for an empty batch). */
  loss: () => Tensor;
  maxGradNorm: number;
  noiseMultiplier: number;
  /** The divisor: the expected batch size q N, whatever this batch's size. */
  expectedBatch: number;
  /** Draws the noise. */
  rng: Rng;
  /** Ghost clipping or materialised per-example gradients: per parameter by size (auto, the default), or forced. */
  clipping?: ClipChoice;
}

/**
 * One DP-SGD gradient: per-example gradients from one backward pass, each clipped to maxGradNorm as one flat
 * vector, summed, N(0, (noiseMultiplier maxGradNorm)^2) noise added to the sum, divided by the expected batch size;
 * written into each parameter's .grad. Returns the batch's mean per-example loss (NaN for an empty batch).
 */
export function dpGradient(s: DpStep): { loss: number; norms: Float64Array; methods: Map<Tensor, ClipMethod> } {
  let sums: Float32Array[] = s.params.map((p) => new Float32Array(p.size));
  let loss = NaN;
  let norms: Float64Array = new Float64Array(0);
  let methods = new Map<Tensor, ClipMethod>();
  if (s.batch > 0) {
    const spans = s.spans ?? PerExampleGrads.oneRowEach(s.batch);
    if (spans.length !== s.batch + 1) throw new Error(`unreachable: ${spans.length} spans for ${s.batch} examples`);
    const grads = new PerExampleGrads(s.params, spans, s.names, s.clipping);
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
    sums = grads.clippedSum(norms.map((n) => Math.min(1, s.maxGradNorm / (n + CLIP_EPS))));
    grads.release();
    methods = grads.method;
  }
  const std = s.noiseMultiplier * s.maxGradNorm;
  const scale = 1 / s.expectedBatch;
  s.params.forEach((p, k) => {
    const sum = sums[k];
    if (std > 0) addGaussianNoise(sum, s.rng, std);
    for (let j = 0; j < p.size; j++) sum[j] *= scale;
    p.grad = new Tensor(sum, p.shape);
  });
  return { loss, norms, methods };
}
