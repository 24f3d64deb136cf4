// How one optimizer step's gradient is formed, asked by the loop in trainer.ts: the plain mean over grad_accum
// micro-batches here; DP-SGD's clipped, summed and noised per-example gradients in train/dp.ts.
import type { ExampleBatch, LMBatch } from '../data/index.js';
import type { AnyModel } from '../models/index.js';
import { crossEntropy, mseLoss, mul, reshape, sum, tensor, type Rng, type Tensor } from '../tensor/index.js';

export interface TrainBatch {
  lm?: LMBatch;
  ex?: ExampleBatch;
}

/** What the loop lends a gradient mode for one step. */
export interface StepContext {
  /** The step's first batch when the loop drew it already (stream data draws it before evaluating), else null. */
  first: TrainBatch | null;
  /** The next batch of the loop's batcher. */
  nextBatch(): TrainBatch;
  /**
   * A batch's loss with its graph: the mean over the batch, or with perExample the sum of per-example losses
   * (each example's own mean over its tokens), whose gradient is the sum of the examples' gradients.
   */
  loss(batch: TrainBatch, perExample: boolean): { loss: Tensor; tokens: number };
}

export interface GradientMode {
  /** Whether grad_clip (one global norm over the batch's gradient) applies after formGradient. */
  readonly globalClip: boolean;
  /** Fill each trained parameter's .grad for one step (the optimizer has zeroed them); the mean loss and tokens seen. */
  formGradient(ctx: StepContext): { loss: number; tokens: number };
  /** Values for metrics.jsonl and the progress line after `steps` steps (DP-SGD: epsilon); {} for none. */
  report(steps: number): Record<string, number>;
  /** The privacy guarantee after `steps` steps, for the run folder and the model card; null when there is none. */
  privacy(steps: number): object | null;
}

/** The plain gradient: grad_accum micro-batches, each scaled so the step sees their mean (nanoGPT's train.py). */
export class MeanGradient implements GradientMode {
  readonly globalClip = true;

  constructor(private readonly gradAccum: number) {}

  formGradient(ctx: StepContext): { loss: number; tokens: number } {
    let lossSum = 0;
    let tokens = 0;
    for (let micro = 0; micro < this.gradAccum; micro++) {
      const batch = micro === 0 && ctx.first ? ctx.first : ctx.nextBatch();
      const { loss, tokens: n } = ctx.loss(batch, false);
      lossSum += loss.item();
      // Gradients accumulate in .grad across micro-batches.
      (this.gradAccum > 1 ? mul(loss, 1 / this.gradAccum) : loss).backward();
      tokens += n;
    }
    return { loss: lossSum / this.gradAccum, tokens };
  }

  report(): Record<string, number> {
    return {};
  }

  privacy(): null {
    return null;
  }
}

/**
 * The sum over a batch's examples of each example's own loss: for a language model its mean over its target tokens
 * (all its windows' when a document spans several rows),
 * for a classifier its cross-entropy, for regression its squared error. Its gradient is the sum of the examples'.
 */
export function perExampleLoss(model: AnyModel, b: ExampleBatch, opts: { rng?: Rng }): { loss: Tensor; tokens: number } {
  const tokens = b.batch * b.block;
  if (model.task === 'causal-lm') {
    const logits = model.forward(b.ids, b.batch, opts); // (B, T, V)
    const targets = b.targets ?? lmTargets(b); // (B*T)
    // (B*T): 1 / (the example's targets), 0 where ignored; an example is one row, or its spans' rows (windows).
    const weights = new Float32Array(targets.length);
    const spans = b.spans ?? Int32Array.from({ length: b.batch + 1 }, (_, i) => i);
    for (let e = 0; e + 1 < spans.length; e++) {
      const own = targets.subarray(spans[e] * b.block, spans[e + 1] * b.block);
      const n = countTargets(own);
      for (let t = 0; t < own.length; t++) if (own[t] !== -100) weights[spans[e] * b.block + t] = 1 / n;
    }
    const losses = crossEntropy(reshape(logits, [b.batch * b.block, logits.shape[2]]), targets, { reduction: 'none' }); // (B*T)
    return { loss: sum(mul(losses, tensor(weights))), tokens };
  }
  const scores = model.classify(b.ids, b.batch, b.lengths.map((l) => l - 1), opts); // (B, K)
  if (model.regression) return { loss: mul(mseLoss(reshape(scores, [b.batch]), tensor(b.values!)), b.batch), tokens };
  return { loss: crossEntropy(scores, b.labels!, { reduction: 'sum' }), tokens };
}

/** Next-token targets for plain LM examples: the next id, -100 past each row's end. */
export function lmTargets(b: ExampleBatch): Int32Array {
  const t = new Int32Array(b.batch * b.block).fill(-100);
  for (let r = 0; r < b.batch; r++) for (let i = 0; i < b.lengths[r] - 1; i++) t[r * b.block + i] = b.ids[r * b.block + i + 1];
  return t;
}

export function countTargets(t: Int32Array): number {
  let n = 0;
  for (const v of t) if (v !== -100) n++;
  return n;
}
