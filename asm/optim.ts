// Optimizer kernels: the AdamW update and the sum of squares behind gradient clipping. Units are elements
// (AdamW) or chunks (sum of squares); each thread takes whole units.
import { at, param, paramPtr } from './simd';

/** Slot i of a parameter block as float32. */
@inline function pf(p: usize, i: i32): f32 {
  return load<f32>(p + ((<usize>i) << 2));
}

/**
 * torch.optim.AdamW's single-tensor step in float32, element by element. Block: [w, g, m, v, n, decay, beta1,
 * 1 - beta1, beta2, 1 - beta2, bc2Sqrt, eps, stepSize] (slots 5.. as float32):
 * w = w * decay - (m / (sqrt(v) / bc2Sqrt + eps)) * stepSize after m and v take g.
 */
export function adamwRun(p: usize, _tid: i32, begin: i32, end: i32): void {
  const w = paramPtr(p, 0);
  const g = paramPtr(p, 1);
  const m = paramPtr(p, 2);
  const v = paramPtr(p, 3);
  const decay = f32x4.splat(pf(p, 5));
  const b1 = f32x4.splat(pf(p, 6));
  const c1 = f32x4.splat(pf(p, 7));
  const b2 = f32x4.splat(pf(p, 8));
  const c2 = f32x4.splat(pf(p, 9));
  const bc = f32x4.splat(pf(p, 10));
  const eps = f32x4.splat(pf(p, 11));
  const step = f32x4.splat(pf(p, 12));
  let i = begin;
  for (; i + 4 <= end; i += 4) {
    const gi = v128.load(at(g, i));
    const wi = f32x4.mul(v128.load(at(w, i)), decay);
    const mi = f32x4.add(f32x4.mul(v128.load(at(m, i)), b1), f32x4.mul(gi, c1));
    const vi = f32x4.add(f32x4.mul(v128.load(at(v, i)), b2), f32x4.mul(f32x4.mul(gi, gi), c2));
    v128.store(at(m, i), mi);
    v128.store(at(v, i), vi);
    const denom = f32x4.add(f32x4.div(f32x4.sqrt(vi), bc), eps);
    v128.store(at(w, i), f32x4.sub(wi, f32x4.mul(f32x4.div(mi, denom), step)));
  }
  for (; i < end; i++) {
    const gi = load<f32>(at(g, i));
    const wi = load<f32>(at(w, i)) * pf(p, 5);
    const mi = load<f32>(at(m, i)) * pf(p, 6) + gi * pf(p, 7);
    const vi = load<f32>(at(v, i)) * pf(p, 8) + (gi * gi) * pf(p, 9);
    store<f32>(at(m, i), mi);
    store<f32>(at(v, i), vi);
    const denom = Mathf.sqrt(vi) / pf(p, 10) + pf(p, 11);
    store<f32>(at(w, i), wi - (mi / denom) * pf(p, 12));
  }
}

/** Block: [x, n, chunk, out]: out[u] (float64) = sum of x[k]^2 over chunk u's elements. */
export function sumSqRun(p: usize, _tid: i32, begin: i32, end: i32): void {
  const x = paramPtr(p, 0);
  const n = param(p, 1);
  const chunk = param(p, 2);
  const out = paramPtr(p, 3);
  for (let u = begin; u < end; u++) {
    const lo = u * chunk;
    const hi = lo + chunk < n ? lo + chunk : n;
    let s0 = f64x2.splat(0);
    let s1 = f64x2.splat(0);
    let i = lo;
    for (; i + 4 <= hi; i += 4) {
      const a = v128.load(at(x, i));
      const lo2 = f64x2.promote_low_f32x4(a);
      const hi2 = f64x2.promote_low_f32x4(v128.shuffle<f32>(a, a, 2, 3, 0, 1));
      s0 = f64x2.add(s0, f64x2.mul(lo2, lo2));
      s1 = f64x2.add(s1, f64x2.mul(hi2, hi2));
    }
    let s = (f64x2.extract_lane(s0, 0) + f64x2.extract_lane(s0, 1)) + (f64x2.extract_lane(s1, 0) + f64x2.extract_lane(s1, 1));
    for (; i < hi; i++) {
      const a = <f64>load<f32>(at(x, i));
      s += a * a;
    }
    store<f64>(out + ((<usize>u) << 3), s);
  }
}
