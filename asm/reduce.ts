// Reductions over one axis of x seen as (outer, n, inner): sum, max and argmax, plus the fused softmax.
// Sums accumulate float32 lanes over short blocks and the block totals in float64, so long reductions stay
// close to the float64 reference.
import { R_ARGMAX, R_MAX, R_SUM } from './abi';
import { loadPartial, storePartial } from './elementwise';
import { at, hsum64, imin, param, paramPtr } from './simd';
import { vexp } from './vmath';

/** Columns of x handled together when reducing over a non-innermost axis. */
export const COL_BLOCK: i32 = 64;
/** Rows summed in float32 before the partial sums move to float64. */
const SUM_BLOCK: i32 = 64;

// ---------------------------------------------------------------------------------------------
// Contiguous rows (inner == 1)

/** Sum of x[0..n) in float64. */
export function rowSum(x: usize, n: i32): f64 {
  let total: f64 = 0;
  let i = 0;
  while (i + 16 <= n) {
    const blockEnd = imin(n, i + 16 * SUM_BLOCK) & ~15;
    let s0 = f32x4.splat(0);
    let s1 = f32x4.splat(0);
    let s2 = f32x4.splat(0);
    let s3 = f32x4.splat(0);
    for (; i < blockEnd; i += 16) {
      s0 = f32x4.add(s0, v128.load(at(x, i)));
      s1 = f32x4.add(s1, v128.load(at(x, i), 16));
      s2 = f32x4.add(s2, v128.load(at(x, i), 32));
      s3 = f32x4.add(s3, v128.load(at(x, i), 48));
    }
    total += (hsum64(s0) + hsum64(s1)) + (hsum64(s2) + hsum64(s3));
  }
  for (; i < n; i++) total += <f64>load<f32>(at(x, i));
  return total;
}

/** Maximum of x[0..n); NaN when any element is NaN; -Infinity when n == 0. */
export function rowMax(x: usize, n: i32): f32 {
  let i = 0;
  let m: f32 = -Infinity;
  if (n >= 8) {
    let m0 = f32x4.splat(-Infinity);
    let m1 = f32x4.splat(-Infinity);
    for (; i + 8 <= n; i += 8) {
      m0 = f32x4.max(m0, v128.load(at(x, i))); // wasm max propagates NaN
      m1 = f32x4.max(m1, v128.load(at(x, i), 16));
    }
    m0 = f32x4.max(m0, m1);
    m0 = f32x4.max(m0, v128.shuffle<f32>(m0, m0, 2, 3, 0, 1));
    m0 = f32x4.max(m0, v128.shuffle<f32>(m0, m0, 1, 0, 3, 2));
    m = f32x4.extract_lane(m0, 0);
  }
  for (; i < n; i++) {
    const v = load<f32>(at(x, i));
    if (v > m || v != v) m = v;
  }
  if (m != m) return NaN;
  return m;
}

/** Index of the first maximum of x[0..n), ignoring NaN (0 when nothing exceeds -Infinity). */
export function rowArgmax(x: usize, n: i32): i32 {
  let i = 0;
  let m: f32 = -Infinity;
  if (n >= 8) {
    let m0 = f32x4.splat(-Infinity);
    for (; i + 4 <= n; i += 4) {
      const v = v128.load(at(x, i));
      m0 = v128.bitselect(v, m0, f32x4.gt(v, m0)); // a NaN compares false and is skipped
    }
    const v0 = f32x4.extract_lane(m0, 0);
    const v1 = f32x4.extract_lane(m0, 1);
    const v2 = f32x4.extract_lane(m0, 2);
    const v3 = f32x4.extract_lane(m0, 3);
    if (v0 > m) m = v0;
    if (v1 > m) m = v1;
    if (v2 > m) m = v2;
    if (v3 > m) m = v3;
  }
  for (; i < n; i++) {
    const v = load<f32>(at(x, i));
    if (v > m) m = v;
  }
  if (m == -Infinity) return 0;
  // The first position holding the maximum.
  let j = 0;
  const mv = f32x4.splat(m);
  for (; j + 4 <= n; j += 4) {
    if (v128.any_true(f32x4.eq(v128.load(at(x, j)), mv))) break;
  }
  for (; j < n; j++) if (load<f32>(at(x, j)) == m) return j;
  return 0;
}

// ---------------------------------------------------------------------------------------------
// Strided columns (inner > 1): out[i] for i in [i0, i1) reduces x[j * inner + i] over j < n.

function colSum(x: usize, n: i32, inner: i32, i0: i32, i1: i32, out: usize): void {
  let i = i0;
  for (; i + 8 <= i1; i += 8) {
    let d0 = f64x2.splat(0);
    let d1 = f64x2.splat(0);
    let d2 = f64x2.splat(0);
    let d3 = f64x2.splat(0);
    for (let j0 = 0; j0 < n; j0 += SUM_BLOCK) {
      const j1 = imin(n, j0 + SUM_BLOCK);
      let s0 = f32x4.splat(0);
      let s1 = f32x4.splat(0);
      let ptr = at(x, j0 * inner + i);
      const step = (<usize>inner) << 2;
      for (let j = j0; j < j1; j++) {
        s0 = f32x4.add(s0, v128.load(ptr));
        s1 = f32x4.add(s1, v128.load(ptr, 16));
        ptr += step;
      }
      d0 = f64x2.add(d0, f64x2.promote_low_f32x4(s0));
      d1 = f64x2.add(d1, f64x2.promote_low_f32x4(v128.shuffle<f32>(s0, s0, 2, 3, 0, 1)));
      d2 = f64x2.add(d2, f64x2.promote_low_f32x4(s1));
      d3 = f64x2.add(d3, f64x2.promote_low_f32x4(v128.shuffle<f32>(s1, s1, 2, 3, 0, 1)));
    }
    const r0 = v128.shuffle<f32>(f32x4.demote_f64x2_zero(d0), f32x4.demote_f64x2_zero(d1), 0, 1, 4, 5);
    const r1 = v128.shuffle<f32>(f32x4.demote_f64x2_zero(d2), f32x4.demote_f64x2_zero(d3), 0, 1, 4, 5);
    v128.store(at(out, i), r0);
    v128.store(at(out, i), r1, 16);
  }
  for (; i < i1; i++) {
    let s: f64 = 0;
    for (let j = 0; j < n; j++) s += <f64>load<f32>(at(x, j * inner + i));
    store<f32>(at(out, i), <f32>s);
  }
}

function colMax(x: usize, n: i32, inner: i32, i0: i32, i1: i32, out: usize): void {
  let i = i0;
  const step = (<usize>inner) << 2;
  for (; i + 4 <= i1; i += 4) {
    let m = f32x4.splat(-Infinity);
    let ptr = at(x, i);
    for (let j = 0; j < n; j++) {
      const v = v128.load(ptr);
      // v > m or v is NaN: NaN, once taken, stays (nothing compares greater).
      m = v128.bitselect(v, m, v128.or(f32x4.gt(v, m), f32x4.ne(v, v)));
      ptr += step;
    }
    v128.store(at(out, i), m);
  }
  for (; i < i1; i++) {
    let m: f32 = -Infinity;
    for (let j = 0; j < n; j++) {
      const v = load<f32>(at(x, j * inner + i));
      if (v > m || v != v) m = v;
      if (m != m) break;
    }
    store<f32>(at(out, i), m);
  }
}

function colArgmax(x: usize, n: i32, inner: i32, i0: i32, i1: i32, out: usize): void {
  let i = i0;
  const step = (<usize>inner) << 2;
  for (; i + 4 <= i1; i += 4) {
    let m = f32x4.splat(-Infinity);
    let idx = i32x4.splat(0);
    let ptr = at(x, i);
    for (let j = 0; j < n; j++) {
      const v = v128.load(ptr);
      const take = f32x4.gt(v, m);
      m = v128.bitselect(v, m, take);
      idx = v128.bitselect(i32x4.splat(j), idx, take);
      ptr += step;
    }
    v128.store(at(out, i), idx);
  }
  for (; i < i1; i++) {
    let m: f32 = -Infinity;
    let best = 0;
    for (let j = 0; j < n; j++) {
      const v = load<f32>(at(x, j * inner + i));
      if (v > m) {
        m = v;
        best = j;
      }
    }
    store<i32>(at(out, i), best);
  }
}

/**
 * Block: [op, x, out, outer, n, inner]. Work units: one row when inner == 1, else (o, column block) pairs,
 * COL_BLOCK columns each. out is float32 for sum and max, int32 for argmax.
 */
export function reduceRun(p: usize, _tid: i32, begin: i32, end: i32): void {
  const op = param(p, 0);
  const x = paramPtr(p, 1);
  const out = paramPtr(p, 2);
  const n = param(p, 4);
  const inner = param(p, 5);
  if (inner == 1) {
    for (let o = begin; o < end; o++) {
      const row = at(x, o * n);
      if (op == R_SUM) store<f32>(at(out, o), <f32>rowSum(row, n));
      else if (op == R_MAX) store<f32>(at(out, o), rowMax(row, n));
      else store<i32>(at(out, o), rowArgmax(row, n));
    }
    return;
  }
  const blocks = (inner + COL_BLOCK - 1) / COL_BLOCK;
  for (let u = begin; u < end; u++) {
    const o = u / blocks;
    const i0 = (u % blocks) * COL_BLOCK;
    const i1 = imin(inner, i0 + COL_BLOCK);
    const slab = at(x, o * n * inner);
    const dst = at(out, o * inner);
    if (op == R_SUM) colSum(slab, n, inner, i0, i1, dst);
    else if (op == R_MAX) colMax(slab, n, inner, i0, i1, dst);
    else colArgmax(slab, n, inner, i0, i1, dst);
  }
}

// ---------------------------------------------------------------------------------------------
// Fused softmax over the last axis. Block: [x, out, rows, n]; units are rows.
// It performs the reference composite's float32 steps (max, x - max, exp, float64 sum, divide) in two passes.

export function softmaxRun(p: usize, _tid: i32, begin: i32, end: i32): void {
  const x = paramPtr(p, 0);
  const out = paramPtr(p, 1);
  const n = param(p, 3);
  for (let r = begin; r < end; r++) softmaxRow(at(x, r * n), at(out, r * n), n);
}

/**
 * The shared pass of softmax and log-softmax over one row: d = x - max(x) and e = exp(d), with e (softmax) or
 * d (log-softmax) stored into orow (which may be xr); returns sum(e), accumulated in float64.
 */
@inline function shiftedExpRow(xr: usize, orow: usize, n: i32, storeShifted: bool): f32 {
  const mv = f32x4.splat(rowMax(xr, n));
  let s0 = f64x2.splat(0);
  let s1 = f64x2.splat(0);
  for (let i = 0; i < n; i += 4) {
    const left = n - i;
    const d = f32x4.sub(left >= 4 ? v128.load(at(xr, i)) : loadPartial(at(xr, i), left), mv);
    let e = exp4(d);
    const kept = storeShifted ? d : e;
    if (left < 4) {
      e = v128.and(e, i32x4(left > 0 ? -1 : 0, left > 1 ? -1 : 0, left > 2 ? -1 : 0, 0)); // padding lanes out of the sum
      storePartial(at(orow, i), kept, left);
    } else {
      v128.store(at(orow, i), kept);
    }
    s0 = f64x2.add(s0, f64x2.promote_low_f32x4(e));
    s1 = f64x2.add(s1, f64x2.promote_low_f32x4(v128.shuffle<f32>(e, e, 2, 3, 0, 1)));
  }
  const total = f64x2.add(s0, s1);
  return <f32>(f64x2.extract_lane(total, 0) + f64x2.extract_lane(total, 1));
}

/** One row of the composite softmax from xr into orow (which may be xr): max, x - max, exp, sum, divide. */
@inline export function softmaxRow(xr: usize, orow: usize, n: i32): void {
  const ss = shiftedExpRow(xr, orow, n, false);
  const sv = f32x4.splat(ss);
  let i = 0;
  for (; i + 4 <= n; i += 4) v128.store(at(orow, i), f32x4.div(v128.load(at(orow, i)), sv));
  for (; i < n; i++) store<f32>(at(orow, i), load<f32>(at(orow, i)) / ss);
}

/** exp(d) of four float32 lanes through float64, rounded to float32. */
@inline function exp4(d: v128): v128 {
  const lo = f32x4.demote_f64x2_zero(vexp(f64x2.promote_low_f32x4(d)));
  const hi = f32x4.demote_f64x2_zero(vexp(f64x2.promote_low_f32x4(v128.shuffle<f32>(d, d, 2, 3, 0, 1))));
  return v128.shuffle<f32>(lo, hi, 0, 1, 4, 5);
}

// ---------------------------------------------------------------------------------------------
// Fused log-softmax over the last axis. Block: [x, out, rows, n]; units are rows.
// The composite's float32 steps: m = max, s = x - m, l = log(sum(exp(s))), out = s - l.

export function logSoftmaxRun(p: usize, _tid: i32, begin: i32, end: i32): void {
  const x = paramPtr(p, 0);
  const out = paramPtr(p, 1);
  const n = param(p, 3);
  for (let r = begin; r < end; r++) {
    const orow = at(out, r * n);
    const total = shiftedExpRow(at(x, r * n), orow, n, true);
    const l = <f32>Math.log(<f64>total);
    const lv = f32x4.splat(l);
    let i = 0;
    for (; i + 4 <= n; i += 4) v128.store(at(orow, i), f32x4.sub(v128.load(at(orow, i)), lv));
    for (; i < n; i++) store<f32>(at(orow, i), load<f32>(at(orow, i)) - l);
  }
}

// ---------------------------------------------------------------------------------------------
// Fused layer norm over the last axis. Block: [x, out, rows, n, weight, bias, eps (f32 bits), mean, rstd];
// weight, bias, mean and rstd may be 0 (absent). Units are rows. The composite's float32 steps:
// mu = sum(x) / n, xc = x - mu, var = sum(xc * xc) / n, r = rsqrt(var + eps), y = xc * r (* w) (+ b).

export function layerNormRun(p: usize, _tid: i32, begin: i32, end: i32): void {
  const x = paramPtr(p, 0);
  const out = paramPtr(p, 1);
  const n = param(p, 3);
  const w = paramPtr(p, 4);
  const b = paramPtr(p, 5);
  const eps = reinterpret<f32>(param(p, 6));
  const meanOut = paramPtr(p, 7);
  const rstdOut = paramPtr(p, 8);
  const nf = <f32>n;
  for (let r = begin; r < end; r++) {
    const xr = at(x, r * n);
    const orow = at(out, r * n);
    const mu = <f32>rowSum(xr, n) / nf;
    const muv = f32x4.splat(mu);
    // xc into out, then its sum of squares.
    let i = 0;
    for (; i + 4 <= n; i += 4) v128.store(at(orow, i), f32x4.sub(v128.load(at(xr, i)), muv));
    for (; i < n; i++) store<f32>(at(orow, i), load<f32>(at(xr, i)) - mu);
    let ss: f64 = 0;
    i = 0;
    for (; i + 4 <= n; i += 4) {
      const c = v128.load(at(orow, i));
      const sq = f32x4.mul(c, c);
      ss += (<f64>f32x4.extract_lane(sq, 0) + <f64>f32x4.extract_lane(sq, 1))
        + (<f64>f32x4.extract_lane(sq, 2) + <f64>f32x4.extract_lane(sq, 3));
    }
    for (; i < n; i++) {
      const c = load<f32>(at(orow, i));
      ss += <f64>(c * c);
    }
    const variance = <f32>ss / nf;
    const rstd = <f32>(1 / Math.sqrt(<f64>(variance + eps)));
    if (meanOut != 0) store<f32>(at(meanOut, r), mu);
    if (rstdOut != 0) store<f32>(at(rstdOut, r), rstd);
    const rv = f32x4.splat(rstd);
    i = 0;
    for (; i + 4 <= n; i += 4) {
      let y = f32x4.mul(v128.load(at(orow, i)), rv);
      if (w != 0) y = f32x4.mul(y, v128.load(at(w, i)));
      if (b != 0) y = f32x4.add(y, v128.load(at(b, i)));
      v128.store(at(orow, i), y);
    }
    for (; i < n; i++) {
      let y = load<f32>(at(orow, i)) * rstd;
      if (w != 0) y *= load<f32>(at(w, i));
      if (b != 0) y += load<f32>(at(b, i));
      store<f32>(at(orow, i), y);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Layer norm backward over the last axis. Block: [x, g, rows, n, weight, mean, rstd, dx, gxhat]; weight and
// gxhat may be 0 (absent). Units are rows. The rule's float32 steps: xhat = (x - mean) * rstd,
// dxhat = g (* w), dx = rstd * (dxhat - sum(dxhat) / n - xhat * (sum(dxhat * xhat) / n)); gxhat = g * xhat
// (the rows the weight's gradient sums).

export function layerNormBackRun(p: usize, _tid: i32, begin: i32, end: i32): void {
  const x = paramPtr(p, 0);
  const g = paramPtr(p, 1);
  const n = param(p, 3);
  const w = paramPtr(p, 4);
  const meanIn = paramPtr(p, 5);
  const rstdIn = paramPtr(p, 6);
  const dx = paramPtr(p, 7);
  const gx = paramPtr(p, 8);
  const nf = <f32>n;
  for (let r = begin; r < end; r++) {
    const xr = at(x, r * n);
    const gr = at(g, r * n);
    const dr = at(dx, r * n);
    const mu = f32x4.splat(load<f32>(at(meanIn, r)));
    const rs = load<f32>(at(rstdIn, r));
    const rsv = f32x4.splat(rs);
    // First pass: the two row sums (float64 per lane pair), gxhat on the way.
    let a0 = f64x2.splat(0);
    let a1 = f64x2.splat(0);
    let b0 = f64x2.splat(0);
    let b1 = f64x2.splat(0);
    let i = 0;
    for (; i + 4 <= n; i += 4) {
      const xh = f32x4.mul(f32x4.sub(v128.load(at(xr, i)), mu), rsv);
      const gi = v128.load(at(gr, i));
      const dh = w != 0 ? f32x4.mul(gi, v128.load(at(w, i))) : gi;
      const dhx = f32x4.mul(dh, xh);
      if (gx != 0) v128.store(at(gx, r * n + i), f32x4.mul(gi, xh));
      a0 = f64x2.add(a0, f64x2.promote_low_f32x4(dh));
      a1 = f64x2.add(a1, f64x2.promote_low_f32x4(v128.shuffle<f32>(dh, dh, 2, 3, 0, 1)));
      b0 = f64x2.add(b0, f64x2.promote_low_f32x4(dhx));
      b1 = f64x2.add(b1, f64x2.promote_low_f32x4(v128.shuffle<f32>(dhx, dhx, 2, 3, 0, 1)));
    }
    let sa = (f64x2.extract_lane(a0, 0) + f64x2.extract_lane(a0, 1)) + (f64x2.extract_lane(a1, 0) + f64x2.extract_lane(a1, 1));
    let sb = (f64x2.extract_lane(b0, 0) + f64x2.extract_lane(b0, 1)) + (f64x2.extract_lane(b1, 0) + f64x2.extract_lane(b1, 1));
    const tail = i;
    for (; i < n; i++) {
      const xh = (load<f32>(at(xr, i)) - f32x4.extract_lane(mu, 0)) * rs;
      const gi = load<f32>(at(gr, i));
      const dh = w != 0 ? gi * load<f32>(at(w, i)) : gi;
      if (gx != 0) store<f32>(at(gx, r * n + i), gi * xh);
      sa += <f64>dh;
      sb += <f64>(dh * xh);
    }
    const ma = f32x4.splat(<f32>sa / nf);
    const mb = f32x4.splat(<f32>sb / nf);
    // Second pass: dx.
    i = 0;
    for (; i + 4 <= n; i += 4) {
      const xh = f32x4.mul(f32x4.sub(v128.load(at(xr, i)), mu), rsv);
      const gi = v128.load(at(gr, i));
      const dh = w != 0 ? f32x4.mul(gi, v128.load(at(w, i))) : gi;
      v128.store(at(dr, i), f32x4.mul(rsv, f32x4.sub(f32x4.sub(dh, ma), f32x4.mul(xh, mb))));
    }
    for (i = tail; i < n; i++) {
      const xh = (load<f32>(at(xr, i)) - f32x4.extract_lane(mu, 0)) * rs;
      const gi = load<f32>(at(gr, i));
      const dh = w != 0 ? gi * load<f32>(at(w, i)) : gi;
      store<f32>(at(dr, i), rs * ((dh - <f32>sa / nf) - xh * (<f32>sb / nf)));
    }
  }
}
