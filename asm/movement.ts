// Data movement: permutations, axis copies, gathers and scatters.
import { MAX_RANK, P_RANK, P_SHAPE } from './abi';
import { at, imin, param, paramPtr } from './simd';

/** Copy n floats from src to dst (the ranges do not overlap). */
@inline function copySpan(src: usize, dst: usize, n: i32): void {
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    v128.store(at(dst, i), v128.load(at(src, i)));
    v128.store(at(dst, i), v128.load(at(src, i), 16), 16);
  }
  for (; i + 4 <= n; i += 4) v128.store(at(dst, i), v128.load(at(src, i)));
  for (; i < n; i++) store<f32>(at(dst, i), load<f32>(at(src, i)));
}

// ---------------------------------------------------------------------------------------------
// Permute. Block: [x, out, -, -, rank, -, -, -, outShape[8], srcStride[8]] over merged dimensions:
// out (contiguous, outShape) at flat position pos reads x at sum(index[d] * srcStride[d]).

const PM_STR: i32 = P_SHAPE + MAX_RANK;

export function permuteRun(p: usize, _tid: i32, begin: i32, end: i32): void {
  const x = paramPtr(p, 0);
  const out = paramPtr(p, 1);
  const rank = param(p, P_RANK);
  const inner = param(p, P_SHAPE + rank - 1);
  const s = param(p, PM_STR + rank - 1);
  let pos = begin;
  while (pos < end) {
    const j = pos % inner;
    const len = imin(inner - j, end - pos);
    let rem = pos / inner;
    let off = j * s;
    for (let d = rank - 2; d >= 0; d--) {
      const n = param(p, P_SHAPE + d);
      off += (rem % n) * param(p, PM_STR + d);
      rem /= n;
    }
    if (s == 1) {
      copySpan(at(x, off), at(out, pos), len);
    } else {
      let src = at(x, off);
      const step = (<usize>s) << 2;
      const dst = at(out, pos);
      for (let i = 0; i < len; i++) {
        store<f32>(at(dst, i), load<f32>(src));
        src += step;
      }
    }
    pos += len;
  }
}

/** Side of the square tiles of transposeRun. */
export const T_TILE: i32 = 32;

/**
 * Batched transpose out (B, C, R) = x (B, R, C) swapped, in T_TILE x T_TILE tiles.
 * Block: [x, out, B, R, C]; units are (b, row tile) pairs.
 */
export function transposeRun(p: usize, _tid: i32, begin: i32, end: i32): void {
  const x = paramPtr(p, 0);
  const out = paramPtr(p, 1);
  const R = param(p, 3);
  const C = param(p, 4);
  const tiles = (R + T_TILE - 1) / T_TILE;
  for (let u = begin; u < end; u++) {
    const b = u / tiles;
    const r0 = (u % tiles) * T_TILE;
    const r1 = imin(R, r0 + T_TILE);
    const xb = at(x, b * R * C);
    const ob = at(out, b * R * C);
    for (let c0 = 0; c0 < C; c0 += T_TILE) {
      const c1 = imin(C, c0 + T_TILE);
      for (let c = c0; c < c1; c++) {
        for (let r = r0; r < r1; r++) store<f32>(at(ob, c * R + r), load<f32>(at(xb, r * C + c)));
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Direct kernels (single-threaded; pointers and sizes as arguments).

/** dst[o, dstStart + j, i] = src[o, srcStart + j, i] for j < len. */
export function copyAxis(src: usize, srcN: i32, srcStart: i32, dst: usize, dstN: i32, dstStart: i32,
  outer: i32, len: i32, inner: i32): void {
  const block = len * inner;
  for (let o = 0; o < outer; o++) {
    const s = at(src, (o * srcN + srcStart) * inner);
    const d = at(dst, (o * dstN + dstStart) * inner);
    if (block >= 64) memory.copy(d, s, (<usize>block) << 2);
    else copySpan(s, d, block);
  }
}

/** out (outer, inner) = x[o, idx[o, i], i]; indices outside [0, n) give 0. */
export function gather(x: usize, outer: i32, n: i32, inner: i32, idx: usize, out: usize): void {
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const k = o * inner + i;
      const j = load<i32>(at(idx, k));
      store<f32>(at(out, k), j >= 0 && j < n ? load<f32>(at(x, (o * n + j) * inner + i)) : 0);
    }
  }
}

/** out (outer, n, inner) += g[o, i] at [o, idx[o, i], i]; indices outside [0, n) are skipped. */
export function scatterAdd(g: usize, outer: i32, n: i32, inner: i32, idx: usize, out: usize): void {
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const k = o * inner + i;
      const j = load<i32>(at(idx, k));
      if (j >= 0 && j < n) {
        const d = at(out, (o * n + j) * inner + i);
        store<f32>(d, load<f32>(d) + load<f32>(at(g, k)));
      }
    }
  }
}

/** out (count, dim) = rows ids of table (rows, dim); ids outside [0, rows) leave their row untouched. */
export function gatherRows(table: usize, rows: i32, dim: i32, ids: usize, count: i32, out: usize): void {
  for (let r = 0; r < count; r++) {
    const id = load<i32>(at(ids, r));
    if (id < 0 || id >= rows) continue;
    copySpan(at(table, id * dim), at(out, r * dim), dim);
  }
}

/** out (rows, dim) += g (count, dim) row-wise at ids; ids outside [0, rows) are skipped. */
export function scatterAddRows(g: usize, dim: i32, ids: usize, count: i32, out: usize, rows: i32): void {
  for (let r = 0; r < count; r++) {
    const id = load<i32>(at(ids, r));
    if (id < 0 || id >= rows) continue;
    const src = at(g, r * dim);
    const dst = at(out, id * dim);
    let i = 0;
    for (; i + 4 <= dim; i += 4) v128.store(at(dst, i), f32x4.add(v128.load(at(dst, i)), v128.load(at(src, i))));
    for (; i < dim; i++) store<f32>(at(dst, i), load<f32>(at(dst, i)) + load<f32>(at(src, i)));
  }
}
