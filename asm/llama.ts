// The Llama family's fused kernels: RMS norm and its gradient, rotate-half RoPE, and SwiGLU's silu(gate) * up
// with its gradient. Each performs the float32 steps of its composite in src/tensor/ops.ts (noted per kernel).
import { loadPartial, storePartial } from './elementwise';
import { at, param, paramPtr } from './simd';
import { c64, ONE, vexp } from './vmath';

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
      for (let d = 0; d < h2; d += 4) {
        const left = h2 - d;
        const full = left >= 4;
        const a = full ? v128.load(at(x1, d)) : loadPartial(at(x1, d), left);
        const b = full ? v128.load(at(x2, d)) : loadPartial(at(x2, d), left);
        const c = full ? v128.load(at(cr, d)) : loadPartial(at(cr, d), left);
        const s = full ? v128.load(at(sr, d)) : loadPartial(at(sr, d), left);
        let y1: v128;
        let y2: v128;
        if (inverse) {
          y1 = f32x4.add(f32x4.mul(a, c), f32x4.mul(b, s));
          y2 = f32x4.sub(f32x4.mul(b, c), f32x4.mul(a, s));
        } else {
          y1 = f32x4.sub(f32x4.mul(a, c), f32x4.mul(b, s));
          y2 = f32x4.add(f32x4.mul(b, c), f32x4.mul(a, s));
        }
        if (full) {
          v128.store(at(o1, d), y1);
          v128.store(at(o2, d), y2);
        } else {
          storePartial(at(o1, d), y1, left);
          storePartial(at(o2, d), y2, left);
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// SwiGLU's gated unit. Units are elements.

/** sigmoid(x) of four float32 lanes through float64, as the unary kernel computes it: 1 / (1 + exp(-x)). */
@inline function sigmoid4(x: v128): v128 {
  const one = c64(ONE);
  const lo = f64x2.promote_low_f32x4(x);
  const hi = f64x2.promote_low_f32x4(v128.shuffle<f32>(x, x, 2, 3, 0, 1));
  const slo = f64x2.div(one, f64x2.add(one, vexp(f64x2.neg(lo))));
  const shi = f64x2.div(one, f64x2.add(one, vexp(f64x2.neg(hi))));
  return v128.shuffle<f32>(f32x4.demote_f64x2_zero(slo), f32x4.demote_f64x2_zero(shi), 0, 1, 4, 5);
}

/** Block: [gate, up, out]. out = (gate * sigmoid(gate)) * up, the composite's float32 steps. */
export function siluMulRun(p: usize, _tid: i32, begin: i32, end: i32): void {
  const gate = paramPtr(p, 0);
  const up = paramPtr(p, 1);
  const out = paramPtr(p, 2);
  for (let i = begin; i < end; i += 4) {
    const left = end - i;
    const full = left >= 4;
    const gv = full ? v128.load(at(gate, i)) : loadPartial(at(gate, i), left);
    const uv = full ? v128.load(at(up, i)) : loadPartial(at(up, i), left);
    const y = f32x4.mul(f32x4.mul(gv, sigmoid4(gv)), uv);
    if (full) v128.store(at(out, i), y);
    else storePartial(at(out, i), y, left);
  }
}

/**
 * Block: [g, gate, up, dgate, dup]; dgate or dup may be 0 (not wanted). With s = sigmoid(gate):
 * dup = g * (gate * s), dgate = (g * up) * (s + gate * (s * (1 - s))).
 */
export function siluMulBackRun(p: usize, _tid: i32, begin: i32, end: i32): void {
  const g = paramPtr(p, 0);
  const gate = paramPtr(p, 1);
  const up = paramPtr(p, 2);
  const dgate = paramPtr(p, 3);
  const dup = paramPtr(p, 4);
  const one = f32x4.splat(1);
  for (let i = begin; i < end; i += 4) {
    const left = end - i;
    const full = left >= 4;
    const gi = full ? v128.load(at(g, i)) : loadPartial(at(g, i), left);
    const xv = full ? v128.load(at(gate, i)) : loadPartial(at(gate, i), left);
    const s = sigmoid4(xv);
    if (dup != 0) {
      const d = f32x4.mul(gi, f32x4.mul(xv, s));
      if (full) v128.store(at(dup, i), d);
      else storePartial(at(dup, i), d, left);
    }
    if (dgate != 0) {
      const uv = full ? v128.load(at(up, i)) : loadPartial(at(up, i), left);
      const dsilu = f32x4.add(s, f32x4.mul(xv, f32x4.mul(s, f32x4.sub(one, s))));
      const d = f32x4.mul(f32x4.mul(gi, uv), dsilu);
      if (full) v128.store(at(dgate, i), d);
      else storePartial(at(dgate, i), d, left);
    }
  }
}
