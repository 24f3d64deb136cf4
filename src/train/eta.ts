// Time left in a training run: an exponential moving average of the optimizer step's time (evaluation left out, so an
// evaluation neither drags the step rate down nor inflates it), plus the evaluations still to come at their measured
// duration. No estimate until a few steps are timed: the first steps warm up (kernels, allocations) and mislead.

export interface EtaOptions {
  /** Steps whose time is not used at all (warm-up). Default 2. */
  warmupSteps?: number;
  /** Timed steps (after warm-up) before any estimate. Default 3. */
  minSteps?: number;
  /** Weight of the newest step in the moving average. Default 0.1. */
  alpha?: number;
}

export class EtaEstimator {
  private readonly warmup: number;
  private readonly minSteps: number;
  private readonly alpha: number;
  private seen = 0;
  private timed = 0;
  private stepS = NaN;
  private evalS = NaN;

  constructor(opts: EtaOptions = {}) {
    this.warmup = opts.warmupSteps ?? 2;
    this.minSteps = opts.minSteps ?? 3;
    this.alpha = opts.alpha ?? 0.1;
  }

  /** One optimizer step took `seconds` (training only). */
  recordStep(seconds: number): void {
    this.seen++;
    if (this.seen <= this.warmup) return;
    this.timed++;
    this.stepS = Number.isNaN(this.stepS) ? seconds : this.alpha * seconds + (1 - this.alpha) * this.stepS;
  }

  /** One evaluation (train and val estimates) took `seconds`; the latest one is what the next ones are expected to take. */
  recordEval(seconds: number): void {
    this.evalS = seconds;
  }

  /** The moving average of a step's seconds, or NaN before enough steps. */
  get secondsPerStep(): number {
    return this.timed >= this.minSteps ? this.stepS : NaN;
  }

  /** Seconds left for `steps` more steps and `evals` more evaluations; NaN until enough steps are timed. */
  eta(steps: number, evals: number): number {
    const perStep = this.secondsPerStep;
    if (Number.isNaN(perStep)) return NaN;
    return steps * perStep + evals * (Number.isNaN(this.evalS) ? 0 : this.evalS);
  }
}

/**
 * Evaluations still to come after `step` when evaluating at every multiple of `interval` and at the last step
 * (`maxIters`), as the trainer does.
 */
export function evaluationsLeft(step: number, maxIters: number, interval: number): number {
  if (step >= maxIters) return 0;
  return Math.floor((maxIters - 1) / interval) - Math.floor(step / interval) + 1;
}
