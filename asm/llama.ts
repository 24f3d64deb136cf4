// The Llama family's fused kernels: RMS norm and its gradient, rotate-half RoPE, and SwiGLU's silu(gate) * up
// with its gradient. Each performs the float32 steps of its composite in src/tensor/ops.ts (noted per kernel),
// except that SwiGLU's sigmoid takes e^x in float32 rather than through float64 (see sigmoid4).
import { loadPartial, storePartial } from './elementwise';
import { at, param, paramPtr } from './simd';
import { vexpF32 } from './vmath';

// ---------------------------------------------------------------------------------------------
// RMS norm over the last axis. Block: [x, out, rows, n, weight, eps (f32 bits), rstd]; weight and rstd may be
// 0 (absent). Units are rows. The composite's float32 steps: ms = sum(x * x) / n, r = rsqrt(ms + eps),
// y = x * r (* w).

export function rmsNormRun(p: usize, _tid: i32, begin: i32, end: i32): void {
  const x = paramPtr(p, 0);
  const out = paramPtr(p, 1);
  const n = param(p, 3);
  const w = paramPtr(p, 4);
  const eps = reinterpret<f32>(param(p, 5));
  const rstdOut = paramPtr(p, 6);
  const nf = <f32>n;
  for (let r = begin; r < end; r++) {
    const xr = at(x, r * n);
    const orow = at(out, r * n);
    let s0 = f64x2.splat(0);
    let s1 = f64x2.splat(0);
    let i = 0;
    for (; i + 4 <= n; i += 4) {
      const v = v128.load(at(xr, i));
      const sq = f32x4.mul(v, v);
      s0 = f64x2.add(s0, f64x2.promote_low_f32x4(sq));
      s1 = f64x2.add(s1, f64x2.promote_low_f32x4(v128.shuffle<f32>(sq, sq, 2, 3, 0, 1)));
    }
    const total = f64x2.add(s0, s1);
    let ss = f64x2.extract_lane(total, 0) + f64x2.extract_lane(total, 1);
    for (; i < n; i++) {
      const v = load<f32>(at(xr, i));
      ss += <f64>(v * v);
    }
    const ms = <f32>ss / nf;
    const rstd = <f32>(1 / Math.sqrt(<f64>(ms + eps)));
    if (rstdOut != 0) store<f32>(at(rstdOut, r), rstd);
    const rv = f32x4.splat(rstd);
    i = 0;
    for (; i + 4 <= n; i += 4) {
      let y = f32x4.mul(v128.load(at(xr, i)), rv);
      if (w != 0) y = f32x4.mul(y, v128.load(at(w, i)));
      v128.store(at(orow, i), y);
    }
    for (; i < n; i++) {
      let y = load<f32>(at(xr, i)) * rstd;
      if (w != 0) y *= load<f32>(at(w, i));
      store<f32>(at(orow, i), y);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// RMS norm backward over the last axis. Block: [x, g, rows, n, weight, rstd, dx, gxhat]; weight and gxhat may
// be 0 (absent). Units are rows. The rule's float32 steps: xhat = x * r, dxhat = g (* w),
// dx = r * (dxhat - xhat * (sum(dxhat * xhat) / n)); gxhat = g * xhat (the rows the weight's gradient sums).

export function rmsNormBackRun(p: usize, _tid: i32, begin: i32, end: i32): void {
  const x = paramPtr(p, 0);
  const g = paramPtr(p, 1);
  const n = param(p, 3);
  const w = paramPtr(p, 4);
  const rstdIn = paramPtr(p, 5);
  const dx = paramPtr(p, 6);
  const gx = paramPtr(p, 7);
  const nf = <f32>n;
  for (let r = begin; r < end; r++) {
    const xr = at(x, r * n);
    const gr = at(g, r * n);
    const dr = at(dx, r * n);
    const rs = load<f32>(at(rstdIn, r));
    const rsv = f32x4.splat(rs);
    let b0 = f64x2.splat(0);
    let b1 = f64x2.splat(0);
    let i = 0;
    for (; i + 4 <= n; i += 4) {
      const xh = f32x4.mul(v128.load(at(xr, i)), rsv);
      const gi = v128.load(at(gr, i));
      const dh = w != 0 ? f32x4.mul(gi, v128.load(at(w, i))) : gi;
      const dhx = f32x4.mul(dh, xh);
      if (gx != 0) v128.store(at(gx, r * n + i), f32x4.mul(gi, xh));
      b0 = f64x2.add(b0, f64x2.promote_low_f32x4(dhx));
      b1 = f64x2.add(b1, f64x2.promote_low_f32x4(v128.shuffle<f32>(dhx, dhx, 2, 3, 0, 1)));
    }
    const total = f64x2.add(b0, b1);
    let sb = f64x2.extract_lane(total, 0) + f64x2.extract_lane(total, 1);
    const tail = i;
    for (; i < n; i++) {
      const xh = load<f32>(at(xr, i)) * rs;
      const gi = load<f32>(at(gr, i));
      const dh = w != 0 ? gi * load<f32>(at(w, i)) : gi;
      if (gx != 0) store<f32>(at(gx, r * n + i), gi * xh);
      sb += <f64>(dh * xh);
    }
    const mbs = <f32>sb / nf;
    const mb = f32x4.splat(mbs);
    i = 0;
    for (; i + 4 <= n; i += 4) {
      const xh = f32x4.mul(v128.load(at(xr, i)), rsv);
      const gi = v128.load(at(gr, i));
      const dh = w != 0 ? f32x4.mul(gi, v128.load(at(w, i))) : gi;
      v128.store(at(dr, i), f32x4.mul(rsv, f32x4.sub(dh, f32x4.mul(xh, mb))));
    }
    for (i = tail; i < n; i++) {
      const xh = load<f32>(at(xr, i)) * rs;
      const gi = load<f32>(at(gr, i));
      const dh = w != 0 ? gi * load<f32>(at(w, i)) : gi;
      store<f32>(at(dr, i), rs * (dh - xh * mbs));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Rotate-half RoPE. Block: [x, out, rows, T, H, hs, cos, sin, inverse]; x and out (rows, H * hs) with row
// r at position r % T; cos and sin (T, hs / 2). Units are rows. Each head's halves (x1, x2) become
// (x1 c - x2 s, x2 c + x1 s), the composite's float32 products and sums (no fused multiply-add); inverse
// rotates by -s instead, (x1 c + x2 s, x2 c - x1 s), which is the forward's gradient.

export function ropeRun(p: usize, _tid: i32, begin: i32, end: i32): void {
  const x = paramPtr(p, 0);
  const out = paramPtr(p, 1);
  const T = param(p, 3);
  const H = param(p, 4);
  const hs = param(p, 5);
  const cosT = paramPtr(p, 6);
  const sinT = paramPtr(p, 7);
  const inverse = param(p, 8) != 0;
  const h2 = hs >> 1;
  const C = H * hs;
  for (let r = begin; r < end; r++) {
    const t = r % T;
    const cr = at(cosT, t * h2);
    const sr = at(sinT, t * h2);
    for (let h = 0; h < H; h++) {
      const x1 = at(x, r * C + h * hs);
      const x2 = at(x1, h2);
      const o1 = at(out, r * C + h * hs);
      const o2 = at(o1, h2);
      let d = 0;
      for (; d + 4 <= h2; d += 4) {
        const a = v128.load(at(x1, d));
        const b = v128.load(at(x2, d));
        const c = v128.load(at(cr, d));
        const s = v128.load(at(sr, d));
        v128.store(at(o1, d), rot1(a, b, c, s, inverse));
        v128.store(at(o2, d), rot2(a, b, c, s, inverse));
      }
      if (d < h2) {
        const left = h2 - d;
        const a = loadPartial(at(x1, d), left);
        const b = loadPartial(at(x2, d), left);
        const c = loadPartial(at(cr, d), left);
        const s = loadPartial(at(sr, d), left);
        storePartial(at(o1, d), rot1(a, b, c, s, inverse), left);
        storePartial(at(o2, d), rot2(a, b, c, s, inverse), left);
      }
    }
  }
}

/** The first half of a rotation: x1 c - x2 s (inverse: x1 c + x2 s). */
@inline function rot1(a: v128, b: v128, c: v128, s: v128, inverse: bool): v128 {
  return inverse ? f32x4.add(f32x4.mul(a, c), f32x4.mul(b, s)) : f32x4.sub(f32x4.mul(a, c), f32x4.mul(b, s));
}

/** The second half: x2 c + x1 s (inverse: x2 c - x1 s). */
@inline function rot2(a: v128, b: v128, c: v128, s: v128, inverse: bool): v128 {
  return inverse ? f32x4.sub(f32x4.mul(b, c), f32x4.mul(a, s)) : f32x4.add(f32x4.mul(b, c), f32x4.mul(a, s));
}

// ---------------------------------------------------------------------------------------------
// SwiGLU's gated unit. Units are elements.

/**
 * sigmoid(x) = 1 / (1 + e^-x) on four float32 lanes, in float32.
 * NOTE: the sigmoid primitive goes through float64 (to match the js reference bit for bit), which costs two
 * float64 exponentials per four lanes and was most of this kernel's time; here e^-x is float32 (about 1 ulp), so
 * results stay within a few ulp of the composite's, far inside the conformance tolerance.
 */
@inline function sigmoid4(x: v128): v128 {
  const one = f32x4.splat(1);
  return f32x4.div(one, f32x4.add(one, vexpF32(f32x4.neg(x))));
}

/**
 * Block: [gate, up, out, sig]. out = (gate * s) * up with s = sigmoid(gate), the composite's float32 steps; sig,
 * when not 0, receives s for the backward pass.
 */
export function siluMulRun(p: usize, _tid: i32, begin: i32, end: i32): void {
  const gate = paramPtr(p, 0);
  const up = paramPtr(p, 1);
  const out = paramPtr(p, 2);
  const sig = paramPtr(p, 3);
  let i = begin;
  for (; i + 4 <= end; i += 4) {
    const gv = v128.load(at(gate, i));
    const s = sigmoid4(gv);
    v128.store(at(out, i), f32x4.mul(f32x4.mul(gv, s), v128.load(at(up, i))));
    if (sig != 0) v128.store(at(sig, i), s);
  }
  if (i < end) {
    const left = end - i;
    const gv = loadPartial(at(gate, i), left);
    const s = sigmoid4(gv);
    storePartial(at(out, i), f32x4.mul(f32x4.mul(gv, s), loadPartial(at(up, i), left)), left);
    if (sig != 0) storePartial(at(sig, i), s, left);
  }
}

/** siluMul's two gradients for four lanes from the upstream g, gate x, up u and s = sigmoid(x). */
@inline function siluMulGrads(g: v128, x: v128, u: v128, s: v128, dgate: usize, dup: usize, i: i32, left: i32): void {
  // dup = g * (x * s); dgate = (g * u) * (s + x * (s * (1 - s)))
  const du = f32x4.mul(g, f32x4.mul(x, s));
  const dsilu = f32x4.add(s, f32x4.mul(x, f32x4.mul(s, f32x4.sub(f32x4.splat(1), s))));
  const dg = f32x4.mul(f32x4.mul(g, u), dsilu);
  if (left >= 4) {
    if (dup != 0) v128.store(at(dup, i), du);
    if (dgate != 0) v128.store(at(dgate, i), dg);
  } else {
    if (dup != 0) storePartial(at(dup, i), du, left);
    if (dgate != 0) storePartial(at(dgate, i), dg, left);
  }
}

/** Block: [g, gate, up, sig, dgate, dup]: sig is the forward's sigmoid(gate); dgate or dup may be 0 (not wanted). */
export function siluMulBackRun(p: usize, _tid: i32, begin: i32, end: i32): void {
  const g = paramPtr(p, 0);
  const gate = paramPtr(p, 1);
  const up = paramPtr(p, 2);
  const sig = paramPtr(p, 3);
  const dgate = paramPtr(p, 4);
  const dup = paramPtr(p, 5);
  let i = begin;
  for (; i + 4 <= end; i += 4) {
    siluMulGrads(v128.load(at(g, i)), v128.load(at(gate, i)), v128.load(at(up, i)), v128.load(at(sig, i)), dgate, dup,
      i, 4);
  }
  if (i < end) {
    const left = end - i;
    siluMulGrads(loadPartial(at(g, i), left), loadPartial(at(gate, i), left), loadPartial(at(up, i), left),
      loadPartial(at(sig, i), left), dgate, dup, i, left);
  }
}
