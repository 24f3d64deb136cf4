// Learning-rate schedule: linear warmup then cosine decay to a minimum (nanoGPT's get_lr).

export interface LrSchedule {
  lr: number; // peak learning rate
  warmupIters: number;
  decayIters: number; // iteration at which the minimum is reached
  minLr: number;
  decay: boolean; // false: constant lr after warmup
}

/** The learning rate at iteration `it` (0-based), exactly as nanoGPT's train.py get_lr. */
export function lrAt(s: LrSchedule, it: number): number {
  if (!s.decay) return it < s.warmupIters ? (s.lr * (it + 1)) / (s.warmupIters + 1) : s.lr;
  if (it < s.warmupIters) return (s.lr * (it + 1)) / (s.warmupIters + 1);
  if (it > s.decayIters) return s.minLr;
  const ratio = (it - s.warmupIters) / (s.decayIters - s.warmupIters);
  const coeff = 0.5 * (1 + Math.cos(Math.PI * ratio));
  return s.minLr + coeff * (s.lr - s.minLr);
}
