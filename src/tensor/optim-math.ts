// The optimizer arithmetic every backend shares: the reference AdamW update and sum of squares that the
// fused kernels (FusedKernels.adamw / sumSquares) are checked against, and that run where there is none.
import type { AdamWScalars } from './backend.js';

/**
 * torch.optim.AdamW's single-tensor step (1.13), element by element; each line rounds to float32 like the
 * PyTorch tensor op it mirrors: w *= decay; m = m b1 + g (1 - b1); v = v b2 + g g (1 - b2);
 * w -= (m / (sqrt(v) / bc2Sqrt + eps)) stepSize.
 */
export function adamwUpdate(w: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, h: AdamWScalars): void {
  const f = Math.fround;
  const { decay, beta1: b1, beta2: b2, eps, bc2Sqrt, stepSize } = h;
  for (let i = 0; i < w.length; i++) {
    const gi = g[i];
    const wi = f(w[i] * decay);
    const mi = (m[i] = f(f(m[i] * b1) + f(gi * (1 - b1))));
    const vi = (v[i] = f(f(v[i] * b2) + f(f(gi * gi) * (1 - b2))));
    const denom = f(f(f(Math.sqrt(vi)) / bc2Sqrt) + eps);
    w[i] = wi - f(f(mi / denom) * stepSize);
  }
}

/** Sum of squares of x, accumulated in float64. */
export function sumSquares(x: Float32Array): number {
  let sq = 0;
  for (let i = 0; i < x.length; i++) sq += x[i] * x[i];
  return sq;
}
