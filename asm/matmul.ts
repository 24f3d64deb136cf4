// Matrix products. The tiled path packs A into row pairs and B into 16-column panels per KC-deep block and
// runs a 2 x 16 register tile (eight f32x4 accumulators: more spill on x86-64 and halve the speed). GEMV paths
// handle M == 1 or N == 1 (decode) by streaming the matrix once.
import { MM_GEMV_DOT, MM_GEMV_STREAM } from './abi';
import { at, hsum32, imin, madd, param, paramPtr } from './simd';

/** Depth of one packed block. */
export const MM_KC: i32 = 256;
/** Largest row block (mc) and column block (nc) a chunk may have; they size the per-thread scratch. */
export const MM_MC_MAX: i32 = 256;
export const MM_NC_MAX: i32 = 1024;
const A_PACK_BYTES: usize = <usize>(MM_MC_MAX * MM_KC * 4);
const B_PACK_BYTES: usize = <usize>(MM_KC * MM_NC_MAX * 4);
export const MM_SCRATCH_BYTES: i32 = <i32>(A_PACK_BYTES + B_PACK_BYTES + 256);

// ---------------------------------------------------------------------------------------------
// Packing

/**
 * Pack rows [m0, m1) x depth [k0, k0 + kc) of A (element (m, k) at a[m * amS + k * akS]) as row pairs:
 * pair q holds kc entries of [A(m0 + 2q, k), A(m0 + 2q + 1, k)], the missing row of an odd count as zeros.
 */
function packA(a: usize, amS: i32, akS: i32, m0: i32, m1: i32, k0: i32, kc: i32, dst: usize): void {
  const pairBytes = (<usize>kc) << 3;
  for (let m = m0; m < m1; m += 2) {
    const two = m + 1 < m1;
    let d = dst + (<usize>((m - m0) >> 1)) * pairBytes;
    const r0 = at(a, m * amS + k0 * akS);
    const r1 = at(a, (m + 1) * amS + k0 * akS);
    let k = 0;
    if (akS == 1 && two) {
      for (; k + 4 <= kc; k += 4) {
        const x = v128.load(at(r0, k));
        const y = v128.load(at(r1, k));
        v128.store(d, v128.shuffle<f32>(x, y, 0, 4, 1, 5));
        v128.store(d, v128.shuffle<f32>(x, y, 2, 6, 3, 7), 16);
        d += 32;
      }
    }
    for (; k < kc; k++) {
      store<f32>(d, load<f32>(at(r0, k * akS)));
      store<f32>(d, two ? load<f32>(at(r1, k * akS)) : 0, 4);
      d += 8;
    }
  }
}

/**
 * Pack columns [n0, n1) x depth [k0, k0 + kc) of B (element (k, n) at b[k * bkS + n * bnS]) as panels of 16
 * columns: panel q holds kc rows of 16 floats, columns past n1 as zeros.
 */
function packB(b: usize, bkS: i32, bnS: i32, n0: i32, n1: i32, k0: i32, kc: i32, dst: usize): void {
  const panelBytes = (<usize>kc) << 6;
  for (let n = n0; n < n1; n += 16) {
    const nr = imin(16, n1 - n);
    const panel = dst + (<usize>((n - n0) >> 4)) * panelBytes;
    if (bnS == 1) {
      // Rows of B are contiguous in n: copy 16-float runs.
      let src = at(b, k0 * bkS + n);
      const step = (<usize>bkS) << 2;
      let d = panel;
      if (nr == 16) {
        for (let k = 0; k < kc; k++) {
          v128.store(d, v128.load(src));
          v128.store(d, v128.load(src, 16), 16);
          v128.store(d, v128.load(src, 32), 32);
          v128.store(d, v128.load(src, 48), 48);
          src += step;
          d += 64;
        }
      } else {
        for (let k = 0; k < kc; k++) {
          for (let j = 0; j < 16; j++) store<f32>(at(d, j), j < nr ? load<f32>(at(src, j)) : 0);
          src += step;
          d += 64;
        }
      }
    } else if (bkS == 1) {
      // B stored (N, K): each column n is contiguous in k. Transpose 4 x 4 blocks into the panel.
      let g = 0;
      for (; g + 4 <= nr; g += 4) {
        const c0 = at(b, (n + g) * bnS + k0);
        const c1 = at(b, (n + g + 1) * bnS + k0);
        const c2 = at(b, (n + g + 2) * bnS + k0);
        const c3 = at(b, (n + g + 3) * bnS + k0);
        let d = at(panel, g);
        let k = 0;
        for (; k + 4 <= kc; k += 4) {
          const r0 = v128.load(at(c0, k));
          const r1 = v128.load(at(c1, k));
          const r2 = v128.load(at(c2, k));
          const r3 = v128.load(at(c3, k));
          const t0 = v128.shuffle<f32>(r0, r1, 0, 4, 1, 5);
          const t1 = v128.shuffle<f32>(r2, r3, 0, 4, 1, 5);
          const t2 = v128.shuffle<f32>(r0, r1, 2, 6, 3, 7);
          const t3 = v128.shuffle<f32>(r2, r3, 2, 6, 3, 7);
          v128.store(d, v128.shuffle<f32>(t0, t1, 0, 1, 4, 5));
          v128.store(d, v128.shuffle<f32>(t0, t1, 2, 3, 6, 7), 64);
          v128.store(d, v128.shuffle<f32>(t2, t3, 0, 1, 4, 5), 128);
          v128.store(d, v128.shuffle<f32>(t2, t3, 2, 3, 6, 7), 192);
          d += 256;
        }
        for (; k < kc; k++) {
          store<f32>(d, load<f32>(at(c0, k)));
          store<f32>(d, load<f32>(at(c1, k)), 4);
          store<f32>(d, load<f32>(at(c2, k)), 8);
          store<f32>(d, load<f32>(at(c3, k)), 12);
          d += 64;
        }
      }
      for (; g < 16; g++) {
        let d = at(panel, g);
        if (g < nr) {
          const c = at(b, (n + g) * bnS + k0);
          for (let k = 0; k < kc; k++) {
            store<f32>(d, load<f32>(at(c, k)));
            d += 64;
          }
        } else {
          for (let k = 0; k < kc; k++) {
            store<f32>(d, 0);
            d += 64;
          }
        }
      }
    } else {
      // General strides.
      let d = panel;
      for (let k = 0; k < kc; k++) {
        for (let j = 0; j < 16; j++) {
          store<f32>(at(d, j), j < nr ? load<f32>(at(b, (k0 + k) * bkS + (n + j) * bnS)) : 0);
        }
        d += 64;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The 2 x 16 register tile

/**
 * C[0..mr, 0..nr) (row stride ldc bytes) = (first ? 0 : C) + Apair (kc x 2) * Bpanel (kc x 16).
 * tile is 128 bytes of scratch for partial tiles.
 */
function kernel2x16(ap: usize, bp: usize, kc: i32, c: usize, ldc: usize, mr: i32, nr: i32, first: bool,
  tile: usize): void {
  let c00 = f32x4.splat(0);
  let c01 = f32x4.splat(0);
  let c02 = f32x4.splat(0);
  let c03 = f32x4.splat(0);
  let c10 = f32x4.splat(0);
  let c11 = f32x4.splat(0);
  let c12 = f32x4.splat(0);
  let c13 = f32x4.splat(0);
  for (let k = 0; k < kc; k++) {
    const b0 = v128.load(bp);
    const b1 = v128.load(bp, 16);
    const b2 = v128.load(bp, 32);
    const b3 = v128.load(bp, 48);
    const a0 = v128.load32_splat(ap);
    c00 = madd(a0, b0, c00);
    c01 = madd(a0, b1, c01);
    c02 = madd(a0, b2, c02);
    c03 = madd(a0, b3, c03);
    const a1 = v128.load32_splat(ap, 4);
    c10 = madd(a1, b0, c10);
    c11 = madd(a1, b1, c11);
    c12 = madd(a1, b2, c12);
    c13 = madd(a1, b3, c13);
    ap += 8;
    bp += 64;
  }
  if (mr == 2 && nr == 16) {
    const c1 = c + ldc;
    if (!first) {
      c00 = f32x4.add(c00, v128.load(c));
      c01 = f32x4.add(c01, v128.load(c, 16));
      c02 = f32x4.add(c02, v128.load(c, 32));
      c03 = f32x4.add(c03, v128.load(c, 48));
      c10 = f32x4.add(c10, v128.load(c1));
      c11 = f32x4.add(c11, v128.load(c1, 16));
      c12 = f32x4.add(c12, v128.load(c1, 32));
      c13 = f32x4.add(c13, v128.load(c1, 48));
    }
    v128.store(c, c00);
    v128.store(c, c01, 16);
    v128.store(c, c02, 32);
    v128.store(c, c03, 48);
    v128.store(c1, c10);
    v128.store(c1, c11, 16);
    v128.store(c1, c12, 32);
    v128.store(c1, c13, 48);
    return;
  }
  v128.store(tile, c00);
  v128.store(tile, c01, 16);
  v128.store(tile, c02, 32);
  v128.store(tile, c03, 48);
  v128.store(tile, c10, 64);
  v128.store(tile, c11, 80);
  v128.store(tile, c12, 96);
  v128.store(tile, c13, 112);
  for (let i = 0; i < mr; i++) {
    const row = c + (<usize>i) * ldc;
    for (let j = 0; j < nr; j++) {
      const v = load<f32>(at(tile, i * 16 + j));
      store<f32>(at(row, j), first ? v : load<f32>(at(row, j)) + v);
    }
  }
}

/** One chunk of the tiled product: rows [m0, m1) x columns [n0, n1) of batch item q. */
function tiledChunk(p: usize, q: i32, m0: i32, m1: i32, n0: i32, n1: i32, scratch: usize): void {
  const K = param(p, 5);
  const transA = param(p, 7) != 0;
  const transB = param(p, 8) != 0;
  // Item q is (batch item qb, head qh): operands sit at qb * batchStride + qh * headStride, rows ld apart.
  const heads = param(p, 21);
  const qb = q / heads;
  const qh = q % heads;
  const a = at(paramPtr(p, 1), qb * param(p, 9) + qh * param(p, 22));
  const b = at(paramPtr(p, 2), qb * param(p, 10) + (qh / param(p, 27)) * param(p, 23)); // heads share B in groups
  const c = at(paramPtr(p, 3), qb * param(p, 25) + qh * param(p, 24));
  const lda = param(p, 18);
  const ldb = param(p, 19);
  const amS = transA ? 1 : lda;
  const akS = transA ? lda : 1;
  const bkS = transB ? 1 : ldb;
  const bnS = transB ? ldb : 1;
  const aPack = scratch;
  const bPack = scratch + A_PACK_BYTES;
  const tile = bPack + B_PACK_BYTES;
  const ldcE = param(p, 20);
  const ldc = (<usize>ldcE) << 2;
  for (let k0 = 0; k0 < K; k0 += MM_KC) {
    const kc = imin(MM_KC, K - k0);
    const first = k0 == 0 && param(p, 26) == 0; // the first depth block overwrites C unless accumulating
    packA(a, amS, akS, m0, m1, k0, kc, aPack);
    packB(b, bkS, bnS, n0, n1, k0, kc, bPack);
    const pairBytes = (<usize>kc) << 3;
    const panelBytes = (<usize>kc) << 6;
    for (let n = n0; n < n1; n += 16) {
      const nr = imin(16, n1 - n);
      const bp = bPack + (<usize>((n - n0) >> 4)) * panelBytes;
      for (let m = m0; m < m1; m += 2) {
        const mr = imin(2, m1 - m);
        const ap = aPack + (<usize>((m - m0) >> 1)) * pairBytes;
        kernel2x16(ap, bp, kc, at(c, m * ldcE + n), ldc, mr, nr, first, tile);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// GEMV

/** Columns of y kept in L1 while rows of W stream past (GEMV, streamed form). */
const GEMV_JB: i32 = 1024;

/**
 * y[j] = sum_k v[k] * W[k * ldw + j] for j in [j0, j1). Rows of W stream through in order, four at a time,
 * into a block of y that stays in L1 (W read once, sequentially; faster than register blocks down columns).
 */
function gemvStream(v: usize, w: usize, y: usize, K: i32, ldw: i32, j0: i32, j1: i32): void {
  const row = (<usize>ldw) << 2;
  for (let jb = j0; jb < j1; jb += GEMV_JB) {
    const n = imin(j1, jb + GEMV_JB) - jb;
    const yb = at(y, jb);
    memory.fill(yb, 0, (<usize>n) << 2);
    let k = 0;
    for (; k + 4 <= K; k += 4) {
      const x0 = load<f32>(at(v, k));
      const x1 = load<f32>(at(v, k), 4);
      const x2 = load<f32>(at(v, k), 8);
      const x3 = load<f32>(at(v, k), 12);
      const s0 = f32x4.splat(x0);
      const s1 = f32x4.splat(x1);
      const s2 = f32x4.splat(x2);
      const s3 = f32x4.splat(x3);
      const r0 = at(w, k * ldw + jb);
      const r1 = r0 + row;
      const r2 = r1 + row;
      const r3 = r2 + row;
      let j = 0;
      for (; j + 4 <= n; j += 4) {
        const o = (<usize>j) << 2;
        let acc = v128.load(yb + o);
        acc = madd(s0, v128.load(r0 + o), acc);
        acc = madd(s1, v128.load(r1 + o), acc);
        acc = madd(s2, v128.load(r2 + o), acc);
        acc = madd(s3, v128.load(r3 + o), acc);
        v128.store(yb + o, acc);
      }
      for (; j < n; j++) {
        const o = (<usize>j) << 2;
        let acc = load<f32>(yb + o);
        acc += x0 * load<f32>(r0 + o);
        acc += x1 * load<f32>(r1 + o);
        acc += x2 * load<f32>(r2 + o);
        acc += x3 * load<f32>(r3 + o);
        store<f32>(yb + o, acc);
      }
    }
    for (; k < K; k++) {
      const x = load<f32>(at(v, k));
      const s = f32x4.splat(x);
      const r = at(w, k * ldw + jb);
      let j = 0;
      for (; j + 4 <= n; j += 4) v128.store(at(yb, j), madd(s, v128.load(at(r, j)), v128.load(at(yb, j))));
      for (; j < n; j++) store<f32>(at(yb, j), load<f32>(at(yb, j)) + x * load<f32>(at(r, j)));
    }
  }
}

/** sum_k v[k] * r[k] over k in [k, K), scalar, continuing from s. */
@inline function dotTail(v: usize, r: usize, k: i32, K: i32, s: f32): f32 {
  for (; k < K; k++) s += load<f32>(at(v, k)) * load<f32>(at(r, k));
  return s;
}

/** y[j] = sum_k v[k] * W[j * ldw + k] for j in [j0, j1): four rows of W at a time against one v. */
function gemvDot(v: usize, w: usize, y: usize, K: i32, ldw: i32, j0: i32, j1: i32): void {
  const K8 = K & ~7;
  let j = j0;
  for (; j + 4 <= j1; j += 4) {
    const r0 = at(w, j * ldw);
    const r1 = at(w, (j + 1) * ldw);
    const r2 = at(w, (j + 2) * ldw);
    const r3 = at(w, (j + 3) * ldw);
    let s0 = f32x4.splat(0);
    let s1 = f32x4.splat(0);
    let s2 = f32x4.splat(0);
    let s3 = f32x4.splat(0);
    let t0 = f32x4.splat(0);
    let t1 = f32x4.splat(0);
    let t2 = f32x4.splat(0);
    let t3 = f32x4.splat(0);
    for (let k = 0; k < K8; k += 8) {
      const x0 = v128.load(at(v, k));
      const x1 = v128.load(at(v, k), 16);
      s0 = madd(x0, v128.load(at(r0, k)), s0);
      t0 = madd(x1, v128.load(at(r0, k), 16), t0);
      s1 = madd(x0, v128.load(at(r1, k)), s1);
      t1 = madd(x1, v128.load(at(r1, k), 16), t1);
      s2 = madd(x0, v128.load(at(r2, k)), s2);
      t2 = madd(x1, v128.load(at(r2, k), 16), t2);
      s3 = madd(x0, v128.load(at(r3, k)), s3);
      t3 = madd(x1, v128.load(at(r3, k), 16), t3);
    }
    store<f32>(at(y, j), dotTail(v, r0, K8, K, hsum32(f32x4.add(s0, t0))));
    store<f32>(at(y, j + 1), dotTail(v, r1, K8, K, hsum32(f32x4.add(s1, t1))));
    store<f32>(at(y, j + 2), dotTail(v, r2, K8, K, hsum32(f32x4.add(s2, t2))));
    store<f32>(at(y, j + 3), dotTail(v, r3, K8, K, hsum32(f32x4.add(s3, t3))));
  }
  for (; j < j1; j++) {
    const r = at(w, j * ldw);
    let s = f32x4.splat(0);
    let k = 0;
    for (; k + 4 <= K; k += 4) s = madd(v128.load(at(v, k)), v128.load(at(r, k)), s);
    store<f32>(at(y, j), dotTail(v, r, k, K, hsum32(s)));
  }
}

// ---------------------------------------------------------------------------------------------
// Entry

/**
 * Block (int32 slots): [mode, a, b, c, M, K, N, transA, transB, aBatchStride, bBatchStride, batch,
 * mc, nc, mChunks, nChunks, scratch, scratchBytes, lda, ldb, ldc, heads, aHeadStride, bHeadStride,
 * cHeadStride, cBatchStride, accumulate, bHeadDiv] for the tiled mode, units (item, row chunk, column chunk);
 * item q is batch item q / heads, head q % heads (heads = 1 for a plain batch), whose B is head
 * (q % heads) / bHeadDiv (grouped-query attention's shared key/value heads; 1 otherwise); accumulate != 0 adds
 * the product to C.
 * GEMV modes reuse it as [mode, v, W, y, K, J, ldw, -, -, vBatchStride, wBatchStride, batch, -, jc, -, jChunks]
 * with y (batch, J); units (item, column chunk).
 */
export function matmulRun(p: usize, tid: i32, begin: i32, end: i32): void {
  const mode = param(p, 0);
  if (mode == MM_GEMV_STREAM || mode == MM_GEMV_DOT) {
    const K = param(p, 4);
    const J = param(p, 5);
    const ldw = param(p, 6);
    const jc = param(p, 13);
    const jChunks = param(p, 15);
    for (let u = begin; u < end; u++) {
      const q = u / jChunks;
      const j0 = (u % jChunks) * jc;
      const j1 = imin(J, j0 + jc);
      const v = at(paramPtr(p, 1), q * param(p, 9));
      const w = at(paramPtr(p, 2), q * param(p, 10));
      const y = at(paramPtr(p, 3), q * J);
      if (mode == MM_GEMV_STREAM) gemvStream(v, w, y, K, ldw, j0, j1);
      else gemvDot(v, w, y, K, ldw, j0, j1);
    }
    return;
  }
  const M = param(p, 4);
  const N = param(p, 6);
  const mc = param(p, 12);
  const nc = param(p, 13);
  const mChunks = param(p, 14);
  const nChunks = param(p, 15);
  const scratch = paramPtr(p, 16) + (<usize>tid) * (<usize>param(p, 17));
  const perItem = mChunks * nChunks;
  for (let u = begin; u < end; u++) {
    const q = u / perItem;
    const r = u % perItem;
    const m0 = (r / nChunks) * mc;
    const n0 = (r % nChunks) * nc;
    tiledChunk(p, q, m0, imin(M, m0 + mc), n0, imin(N, n0 + nc), scratch);
  }
}
