// Causal softmax over attention scores and its gradient, for the wasm backend's fused attention kernels.
// Scores are rows of length Tk; row r is query i = r % Tq at absolute position past + i (past = Tk - Tq, the
// keys a KV cache holds), which sees keys lo..past + i: lo = 0, or past + i - window + 1 with a sliding window.
// Units are rows. The float32 steps are the composite's: scale * s, the row max, s - max, exp (through
// float64), a float64 sum, a divide; the gradient P * (g - sum(g * P)) * scale.
import { loadPartial, storePartial } from './elementwise';
import { at, param, paramPtr } from './simd';
import { rowMax, softmaxRow } from './reduce';
import { vexpF32 } from './vmath';

/**
 * Block: [s, out, rows, Tq, scale (f32 bits), Tk, window (0: none), exp32]. out[r, j] = softmax over the keys row
 * r sees of scale * s[r, j], 0 elsewhere. exp32 != 0 takes e^x in float32 (vexpF32, about 1 ulp) instead of
 * through float64: faster, a few ulp from the composite.
 */
export function causalSoftmaxRun(p: usize, _tid: i32, begin: i32, end: i32): void {
  const s = paramPtr(p, 0);
  const out = paramPtr(p, 1);
  const Tq = param(p, 3);
  const scale = f32x4.splat(load<f32>(p + 16));
  const sc = load<f32>(p + 16);
  const Tk = param(p, 5);
  const window = param(p, 6);
  const exp32 = param(p, 7) != 0;
  const past = Tk - Tq;
  for (let r = begin; r < end; r++) {
    const hi = past + (r % Tq) + 1; // one past the last key seen
    const lo = window > 0 && hi > window ? hi - window : 0;
    const n = hi - lo;
    const xr = at(s, r * Tk + lo);
    const orow = at(out, r * Tk);
    const seen = at(orow, lo);
    // Scaled scores first (the composite's mul), then its max.
    let i = 0;
    for (; i + 4 <= n; i += 4) v128.store(at(seen, i), f32x4.mul(v128.load(at(xr, i)), scale));
    for (; i < n; i++) store<f32>(at(seen, i), load<f32>(at(xr, i)) * sc);
    if (exp32) softmaxRowF32(seen, n);
    else softmaxRow(seen, seen, n);
    for (i = 0; i < lo; i++) store<f32>(at(orow, i), 0);
    for (i = hi; i < Tk; i++) store<f32>(at(orow, i), 0);
  }
}

/** softmaxRow's steps in place over row[0..n) with e^x in float32; the sum stays float64. */
@inline function softmaxRowF32(row: usize, n: i32): void {
  const m = rowMax(row, n);
  const mv = f32x4.splat(m);
  let s0 = f64x2.splat(0);
  let s1 = f64x2.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const e = vexpF32(f32x4.sub(v128.load(at(row, i)), mv));
    v128.store(at(row, i), e);
    s0 = f64x2.add(s0, f64x2.promote_low_f32x4(e));
    s1 = f64x2.add(s1, f64x2.promote_low_f32x4(v128.shuffle<f32>(e, e, 2, 3, 0, 1)));
  }
  const total = f64x2.add(s0, s1);
  let sum = f64x2.extract_lane(total, 0) + f64x2.extract_lane(total, 1);
  for (; i < n; i++) {
    const e = <f32>Math.exp(<f64>(load<f32>(at(row, i)) - m));
    store<f32>(at(row, i), e);
    sum += <f64>e;
  }
  const ss = <f32>sum;
  const sv = f32x4.splat(ss);
  i = 0;
  for (; i + 4 <= n; i += 4) v128.store(at(row, i), f32x4.div(v128.load(at(row, i)), sv));
  for (; i < n; i++) store<f32>(at(row, i), load<f32>(at(row, i)) / ss);
}

/**
 * Block: [P, g, rows, Tq, scale (f32 bits), Tk, window (0: none)]. Over the keys row r sees, g[r, j] becomes
 * scale * P[r, j] * (g[r, j] - sum_k g[r, k] P[r, k]); elsewhere 0 (P is 0 there, and g may hold anything).
 */
export function causalSoftmaxBackRun(p: usize, _tid: i32, begin: i32, end: i32): void {
  const P = paramPtr(p, 0);
  const g = paramPtr(p, 1);
  const Tq = param(p, 3);
  const scale = f32x4.splat(load<f32>(p + 16));
  const Tk = param(p, 5);
  const window = param(p, 6);
  const past = Tk - Tq;
  for (let r = begin; r < end; r++) {
    const hi = past + (r % Tq) + 1; // one past the last key seen
    const lo = window > 0 && hi > window ? hi - window : 0;
    const T = hi - lo;
    const pr = at(P, r * Tk + lo);
    const grow = at(g, r * Tk);
    const gr = at(grow, lo);
    let s0 = f64x2.splat(0);
    let s1 = f64x2.splat(0);
    for (let i = 0; i < T; i += 4) {
      const left = T - i;
      const prod = left >= 4
        ? f32x4.mul(v128.load(at(gr, i)), v128.load(at(pr, i)))
        : f32x4.mul(loadPartial(at(gr, i), left), loadPartial(at(pr, i), left));
      s0 = f64x2.add(s0, f64x2.promote_low_f32x4(prod));
      s1 = f64x2.add(s1, f64x2.promote_low_f32x4(v128.shuffle<f32>(prod, prod, 2, 3, 0, 1)));
    }
    const total = f64x2.add(s0, s1);
    const dv = f32x4.splat(<f32>(f64x2.extract_lane(total, 0) + f64x2.extract_lane(total, 1)));
    for (let i = 0; i < T; i += 4) {
      const left = T - i;
      if (left >= 4) {
        const v = f32x4.mul(f32x4.mul(v128.load(at(pr, i)), f32x4.sub(v128.load(at(gr, i)), dv)), scale);
        v128.store(at(gr, i), v);
      } else {
        const v = f32x4.mul(f32x4.mul(loadPartial(at(pr, i), left), f32x4.sub(loadPartial(at(gr, i), left), dv)), scale);
        storePartial(at(gr, i), v, left);
      }
    }
    for (let i = 0; i < lo; i++) store<f32>(at(grow, i), 0);
    for (let i = hi; i < Tk; i++) store<f32>(at(grow, i), 0);
  }
}
