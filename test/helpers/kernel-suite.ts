// The kernel-by-kernel conformance suite (STYLE.md rule 6 for the backend kernels): every Backend kernel and
// fused kernel of a faster backend against the js reference (the oracle) on random inputs of odd sizes, in every
// transpose, batch, broadcast and stride form the engine uses, with buffers of each placement the caller names.
// test/backends/wasm.test.ts and native.test.ts run it at one thread and two.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { jsBackend } from '../../src/backends/js/index.js';
import {
  BINARY_OPS, getBackend, hasBackend, setBackend, UNARY_OPS, type AxisLayout, type Backend, type FusedKernels, type UnaryOp,
} from '../../src/tensor/backend.js';
import * as ops from '../../src/tensor/ops.js';
import { adamwUpdate, sumSquares } from '../../src/tensor/optim-math.js';
import { Rng } from '../../src/tensor/random.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { assertMatmulForms, MATMUL_DIMS } from './matmul.js';

export const SIZES = [1, 3, 17, 33, 100, 257];
export const EPS32 = 2 ** -24;

export function randoms(rng: Rng, n: number, lo = -1, hi = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = lo + (hi - lo) * rng.next();
  return a;
}

/** Assert |got - want| <= tol * max(1, |want|) elementwise (NaN must meet NaN; tol 0 means equal). */
export function assertClose(got: ArrayLike<number>, want: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) {
    const a = got[i];
    const b = want[i];
    if (Number.isNaN(b) || Number.isNaN(a)) {
      assert.ok(Number.isNaN(a) && Number.isNaN(b), `${what}: [${i}] = ${a}, expected ${b}`);
      continue;
    }
    if (a === b) continue;
    assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${what}: [${i}] = ${a}, expected ${b}`);
  }
}

const numel = (s: readonly number[]): number => s.reduce((p, d) => p * d, 1);

const TRANSCENDENTAL = new Set<UnaryOp>(['exp', 'log', 'tanh', 'sigmoid', 'gelu_tanh', 'gelu_erf', 'gelu_tanh_grad',
  'gelu_erf_grad']);
const SPECIALS = [0, -0, NaN, Infinity, -Infinity, 1e-30, -1e-30, 80, -80, 20, -20, 0.5, -0.5];

/** A backend with every fused kernel the suite calls. */
export type FullBackend = Backend & { fused: FusedKernels };

/** n floats placed as `where` names (the backend's own memory, an ordinary Float32Array, ...). */
export type Place = (n: number, where: string) => Float32Array;

/**
 * The suite's tests, for each placement in `wheres`, on the backend `get()` returns when a test starts (tests
 * run after the caller's before hook has made it).
 */
export function kernelTests(get: () => FullBackend, place: Place, wheres: readonly string[]): void {
  const buf = (_be: FullBackend, n: number, where: string): Float32Array => place(n, where);
  const filled = (_be: FullBackend, values: ArrayLike<number>, where: string): Float32Array => {
    const a = place(values.length, where);
    a.set(values);
    return a;
  };
  for (const where of wheres) {
    test(`unary, every op (${where} buffers)`, () => {
      const be = get();
      const rng = new Rng(1);
      for (const op of UNARY_OPS) {
        for (const n of [...SIZES, 1000]) {
          const vals = randoms(rng, n, -6, 6);
          for (let i = 0; i < Math.min(n, SPECIALS.length); i++) vals[(i * 7) % n] = SPECIALS[i];
          const x = filled(be, vals, where);
          const out = buf(be, n, where);
          const want = new Float32Array(n);
          be.unary(op, x, out);
          jsBackend.unary(op, x, want);
          assertClose(out, want, TRANSCENDENTAL.has(op) ? 1e-6 : 0, `${op} n=${n}`);
        }
      }
    });

    test(`binary, every op and broadcast form (${where} buffers)`, () => {
      const be = get();
      const rng = new Rng(2);
      const forms: [number[], number[], number[]][] = [];
      for (const n of SIZES) forms.push([[n], [n], [n]], [[n], [1], [n]], [[1], [n], [n]]);
      for (const [R, C] of [[3, 17], [33, 5], [1, 100], [17, 1], [2, 257]]) {
        forms.push([[R, C], [1, C], [R, C]], [[R, C], [R, 1], [R, C]], [[R, 1], [1, C], [R, C]],
          [[1, 1], [R, C], [R, C]], [[1, C], [R, C], [R, C]]);
      }
      forms.push([[2, 3, 5, 7], [1, 1, 5, 7], [2, 3, 5, 7]], [[2, 1, 5, 1], [1, 3, 1, 7], [2, 3, 5, 7]],
        [[2, 3, 4, 5], [2, 1, 4, 1], [2, 3, 4, 5]]);
      // Rank 10 with alternating broadcast: more merged dims than the kernels take (the js fallback).
      forms.push([[2, 1, 2, 1, 2, 1, 2, 1, 2, 3], [1, 2, 1, 2, 1, 2, 1, 2, 1, 3], [2, 2, 2, 2, 2, 2, 2, 2, 2, 3]]);
      for (const op of BINARY_OPS) {
        for (const [aShape, bShape, outShape] of forms) {
          const lo = op === 'pow' ? 0.1 : -2;
          const av = randoms(rng, numel(aShape), lo, 2).map((v) => (op === 'eq' ? Math.round(v) : v));
          const bv = randoms(rng, numel(bShape), lo, 2).map((v) => (op === 'eq' ? Math.round(v) : v));
          if (av.length > 2) av[1] = NaN;
          if (bv.length > 3) bv[2] = NaN;
          const a = filled(be, av, where);
          const b = filled(be, bv, where);
          const out = buf(be, numel(outShape), where);
          const want = new Float32Array(numel(outShape));
          be.binary(op, a, aShape, b, bShape, out, outShape);
          jsBackend.binary(op, a, aShape, b, bShape, want, outShape);
          assertClose(out, want, op === 'pow' ? 1e-6 : 0, `${op} ${JSON.stringify([aShape, bShape])}`);
        }
      }
    });

    test(`where, broadcast forms (${where} buffers)`, () => {
      const be = get();
      const rng = new Rng(3);
      const forms: number[][][] = [
        [[100], [100], [100], [100]], [[17], [1], [17], [17]], [[33], [33], [1], [33]],
        [[1, 1, 5, 5], [1, 1, 1, 1], [2, 3, 5, 5], [2, 3, 5, 5]],
        [[5, 7], [5, 1], [1, 7], [5, 7]], [[1, 257], [3, 1], [1, 1], [3, 257]],
        [[2, 1, 2, 1, 2, 1, 2, 1, 2, 3], [1, 2, 1, 2, 1, 2, 1, 2, 1, 3], [2, 2, 2, 2, 2, 2, 2, 2, 2, 1],
          [2, 2, 2, 2, 2, 2, 2, 2, 2, 3]],
      ];
      for (const [cShape, aShape, bShape, outShape] of forms) {
        const cv = randoms(rng, numel(cShape)).map((v) => (v > 0.3 ? 1 : v < -0.6 ? -0 : 0));
        if (cv.length > 2) cv[1] = NaN;
        const c = filled(be, cv, where);
        const a = filled(be, randoms(rng, numel(aShape)), where);
        const b = filled(be, randoms(rng, numel(bShape)), where);
        const out = buf(be, numel(outShape), where);
        const want = new Float32Array(numel(outShape));
        be.where(c, cShape, a, aShape, b, bShape, out, outShape);
        jsBackend.where(c, cShape, a, aShape, b, bShape, want, outShape);
        assertClose(out, want, 0, `where ${JSON.stringify([cShape, aShape, bShape])}`);
      }
    });

    test(`reduce sum / max and argmax over every axis (${where} buffers)`, () => {
      const be = get();
      const rng = new Rng(4);
      const shapes = [[1], [7], [257], [3, 17], [33, 5], [2, 100, 3], [4, 1, 70], [5, 257, 9], [3, 33, 100]];
      for (const shape of shapes) {
        for (let axis = 0; axis < shape.length; axis++) {
          const layout: AxisLayout = {
            outer: numel(shape.slice(0, axis)), n: shape[axis], inner: numel(shape.slice(axis + 1)),
          };
          const vals = randoms(rng, numel(shape)).map((v) => Math.round(v * 8) / 8); // ties for argmax
          const x = filled(be, vals, where);
          const size = layout.outer * layout.inner;
          const sum = buf(be, size, where);
          const wantSum = new Float32Array(size);
          be.reduce('sum', x, layout, sum);
          jsBackend.reduce('sum', x, layout, wantSum);
          // Blocked float32 sums: within 64 roundings of the sum of magnitudes.
          for (let i = 0; i < size; i++) {
            assert.ok(Math.abs(sum[i] - wantSum[i]) <= 70 * EPS32 * layout.n + 1e-30, `sum ${shape} axis ${axis} [${i}]`);
          }
          const mx = buf(be, size, where);
          const wantMax = new Float32Array(size);
          be.reduce('max', x, layout, mx);
          jsBackend.reduce('max', x, layout, wantMax);
          assertClose(mx, wantMax, 0, `max ${shape} axis ${axis}`);
          const idx = new Int32Array(size);
          const wantIdx = new Int32Array(size);
          be.argmax(x, layout, idx);
          jsBackend.argmax(x, layout, wantIdx);
          assert.deepEqual(idx, wantIdx, `argmax ${shape} axis ${axis}`);
        }
      }
    });

    test(`reduce with NaN, -Infinity rows and empty axes (${where} buffers)`, () => {
      const be = get();
      const rows = [
        [1, NaN, 3, 2, 5, 0, 1, 2, 9, 9, 1],
        [-Infinity, -Infinity, -Infinity, -Infinity, -Infinity, -Infinity, -Infinity, -Infinity, -Infinity],
        [NaN, -Infinity, NaN, NaN, NaN, NaN, NaN, NaN, NaN, NaN],
        [NaN, 2, 2, 1, 0, 0, 0, 0, 0, NaN, 2, NaN],
      ];
      for (const r of rows) {
        for (const layout of [{ outer: 1, n: r.length, inner: 1 }, { outer: 1, n: 1, inner: r.length }]) {
          const x = filled(be, r, where);
          const size = layout.outer * layout.inner;
          for (const op of ['sum', 'max'] as const) {
            const out = buf(be, size, where);
            const want = new Float32Array(size);
            be.reduce(op, x, layout, out);
            jsBackend.reduce(op, x, layout, want);
            assertClose(out, want, 1e-6, `${op} ${r}`);
          }
          const idx = new Int32Array(size);
          const wantIdx = new Int32Array(size);
          be.argmax(x, layout, idx);
          jsBackend.argmax(x, layout, wantIdx);
          assert.deepEqual(idx, wantIdx, `argmax ${r}`);
        }
      }
      // n == 0: sum 0, max -Infinity.
      const empty = buf(be, 0, where);
      const out = filled(be, [5, 5, 5], where);
      be.reduce('sum', empty, { outer: 3, n: 0, inner: 1 }, out);
      assert.deepEqual(Array.from(out), [0, 0, 0]);
      be.reduce('max', empty, { outer: 1, n: 0, inner: 3 }, out);
      assert.deepEqual(Array.from(out), [-Infinity, -Infinity, -Infinity]);
    });

    test(`gather and scatterAdd along an axis, out-of-range indices skipped (${where} buffers)`, () => {
      const be = get();
      const rng = new Rng(5);
      for (const [outer, n, inner] of [[1, 1, 1], [3, 17, 1], [33, 5, 3], [2, 100, 17], [1, 257, 2]]) {
        const x = filled(be, randoms(rng, outer * n * inner), where);
        const idx = Int32Array.from({ length: outer * inner }, () => Math.floor(rng.next() * (n + 2)) - 1);
        const layout = { outer, n, inner };
        const out = buf(be, outer * inner, where);
        const want = new Float32Array(outer * inner);
        be.gather(x, layout, idx, out);
        jsBackend.gather(x, layout, idx, want);
        assertClose(out, want, 0, `gather ${[outer, n, inner]}`);
        const g = filled(be, randoms(rng, outer * inner), where);
        const base = randoms(rng, outer * n * inner);
        const acc = filled(be, base, where);
        const wantAcc = Float32Array.from(base);
        be.scatterAdd(g, layout, idx, acc);
        jsBackend.scatterAdd(g, layout, idx, wantAcc);
        assertClose(acc, wantAcc, 0, `scatterAdd ${[outer, n, inner]}`);
      }
    });

    test(`matmul: every transpose form, batch strides and sizes (${where} buffers)`, () => {
      const be = get();
      assertMatmulForms(be, new Rng(6), MATMUL_DIMS, (values) => filled(be, values, where));
    });

    test(`permute: attention heads, transposes, general (${where} buffers)`, () => {
      const be = get();
      const rng = new Rng(7);
      const cases: [number[], number[]][] = [
        [[3, 17], [1, 0]], [[33, 100], [1, 0]], [[2, 5, 3, 7], [0, 2, 1, 3]], [[4, 1, 33, 3], [0, 2, 1, 3]],
        [[2, 9, 4, 16], [0, 2, 1, 3]], [[2, 3, 4, 5], [3, 2, 1, 0]], [[2, 3, 4], [0, 2, 1]], [[3, 40, 70], [0, 2, 1]],
        [[5, 1, 3], [1, 0, 2]], [[2, 3, 4, 5], [1, 0, 3, 2]], [[1, 257], [1, 0]],
        [[2, 1, 2, 1, 2, 1, 2, 1, 2, 3], [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]],
      ];
      for (const [shape, perm] of cases) {
        const x = filled(be, randoms(rng, numel(shape)), where);
        const out = buf(be, numel(shape), where);
        const want = new Float32Array(numel(shape));
        be.permute(x, shape, perm, out);
        jsBackend.permute(x, shape, perm, want);
        assertClose(out, want, 0, `permute ${shape} by ${perm}`);
      }
    });

    test(`copyAxis: slice, pad and concat forms (${where} buffers)`, () => {
      const be = get();
      const rng = new Rng(8);
      for (const [outer, srcN, dstN, srcStart, dstStart, len, inner] of [
        [1, 5, 5, 0, 0, 5, 1], [3, 17, 4, 2, 0, 4, 33], [2, 4, 10, 0, 3, 4, 17], [5, 7, 9, 1, 2, 6, 1], [1, 100, 3, 97, 0, 3, 64],
      ]) {
        const src = filled(be, randoms(rng, outer * srcN * inner), where);
        const base = randoms(rng, outer * dstN * inner);
        const dst = filled(be, base, where);
        const want = Float32Array.from(base);
        be.copyAxis(src, srcN, srcStart, dst, dstN, dstStart, outer, len, inner);
        jsBackend.copyAxis(src, srcN, srcStart, want, dstN, dstStart, outer, len, inner);
        assertClose(dst, want, 0, `copyAxis ${[outer, srcN, dstN, srcStart, dstStart, len, inner]}`);
      }
    });

    test(`gatherRows and scatterAddRows with repeated and skipped ids (${where} buffers)`, () => {
      const be = get();
      const rng = new Rng(9);
      const rows = 50;
      for (const dim of [1, 3, 17, 100]) {
        const table = filled(be, randoms(rng, rows * dim), where);
        const ids = Int32Array.from({ length: 33 }, () => Math.floor(rng.next() * rows));
        ids[3] = ids[5];
        const out = buf(be, ids.length * dim, where);
        const want = new Float32Array(ids.length * dim);
        be.gatherRows(table, dim, ids, out);
        jsBackend.gatherRows(table, dim, ids, want);
        assertClose(out, want, 0, `gatherRows dim ${dim}`);
        const g = filled(be, randoms(rng, ids.length * dim), where);
        const scatterIds = Int32Array.from(ids);
        scatterIds[7] = -1;
        const base = randoms(rng, rows * dim);
        const acc = filled(be, base, where);
        const wantAcc = Float32Array.from(base);
        be.scatterAddRows(g, dim, scatterIds, acc);
        jsBackend.scatterAddRows(g, dim, scatterIds, wantAcc);
        assertClose(acc, wantAcc, 0, `scatterAddRows dim ${dim}`);
      }
    });

    test(`fused softmax matches the composite's float32 steps (${where} buffers)`, () => {
      const be = get();
      const rng = new Rng(10);
      for (const [rows, n] of [[1, 1], [3, 17], [7, 100], [2, 257], [64, 64]]) {
        const vals = randoms(rng, rows * n, -10, 10);
        for (let r = 0; r < rows; r++) if (n > 2) vals[r * n + (r % n)] = -Infinity; // masked positions
        const x = filled(be, vals, where);
        const out = buf(be, rows * n, where);
        be.fused.softmax(x, rows, n, out);
        const want = compositeSoftmax(x, rows, n);
        assertClose(out, want, 1e-6, `softmax ${rows}x${n}`);
      }
    });

    test(`fused logSoftmax and layerNorm match the composites (${where} buffers)`, () => {
      const be = get();
      const rng = new Rng(15);
      for (const [rows, n] of [[1, 1], [3, 17], [7, 100], [2, 257], [5, 768]]) {
        const vals = randoms(rng, rows * n, -5, 5);
        const x = filled(be, vals, where);
        const out = buf(be, rows * n, where);
        be.fused.logSoftmax(x, rows, n, out);
        assertClose(out, composite(() => ops.logSoftmax(ops.tensor(vals, [rows, n]), -1)), 1e-6, `logSoftmax ${rows}x${n}`);
        const w = randoms(rng, n, 0.5, 1.5);
        const b = randoms(rng, n);
        for (const [weight, bias] of [[w, b], [null, null], [w, null]] as const) {
          const ln = buf(be, rows * n, where);
          const mean = buf(be, rows, where);
          const rstd = buf(be, rows, where);
          be.fused.layerNorm(x, rows, n, weight && filled(be, weight, where), bias && filled(be, bias, where), 1e-5, ln, mean, rstd);
          const want = composite(() => ops.layerNorm(ops.tensor(vals, [rows, n]), weight && ops.tensor(weight),
            bias && ops.tensor(bias), 1e-5));
          assertClose(ln, want, 1e-5, `layerNorm ${rows}x${n} weight ${!!weight} bias ${!!bias}`);
          const wantMean = composite(() => ops.mean(ops.tensor(vals, [rows, n]), -1));
          assertClose(mean, wantMean, 1e-6, 'layerNorm mean');
          assert.ok(rstd.every((v) => v > 0));
        }
      }
    });

    test(`fused layerNorm backward matches the gradient rule's composite on js (${where} buffers)`, () => {
      const be = get();
      const rng = new Rng(18);
      for (const [rows, n] of [[1, 1], [3, 17], [5, 128], [2, 771]]) {
        const vals = randoms(rng, rows * n, -3, 3);
        const up = randoms(rng, rows * n, -1, 1);
        const wv = randoms(rng, n, 0.5, 1.5);
        for (const withWeight of [true, false]) {
          const x = filled(be, vals, where);
          const mean = buf(be, rows, where);
          const rstd = buf(be, rows, where);
          be.fused.layerNorm(x, rows, n, withWeight ? filled(be, wv, where) : null, null, 1e-5, buf(be, rows * n, where), mean, rstd);
          const dx = buf(be, rows * n, where);
          const gx = buf(be, rows * n, where);
          be.fused.layerNormBackward(x, filled(be, up, where), withWeight ? filled(be, wv, where) : null, mean, rstd, rows, n, dx, gx);
          const prev = hasBackend() ? getBackend() : undefined;
          setBackend(jsBackend);
          try {
            const xt = ops.tensor(vals, [rows, n]).requireGrad();
            const wt = withWeight ? ops.tensor(wv).requireGrad() : null;
            ops.sum(ops.mul(ops.layerNormComposite(xt, wt, null, 1e-5), ops.tensor(up, [rows, n]))).backward();
            assertClose(dx, xt.grad!.data, 1e-4, `layerNorm backward dx ${rows}x${n}`);
            if (wt) assertClose(composite(() => ops.sum(ops.tensor(gx, [rows, n]), 0)), wt.grad!.data, 1e-4, `dw ${rows}x${n}`);
          } finally {
            if (prev) setBackend(prev);
          }
        }
      }
    });

    test(`fused AdamW and sum of squares match the reference arithmetic (${where} buffers)`, () => {
      const be = get();
      const rng = new Rng(17);
      for (const n of [1, 3, 4, 17, 1000, 70001]) {
        const w0 = randoms(rng, n, -1, 1);
        const g = randoms(rng, n, -0.1, 0.1);
        const m0 = randoms(rng, n, -0.01, 0.01);
        const v0 = randoms(rng, n, 0, 1e-4);
        const h = { decay: Math.fround(1 - 1e-3 * 0.1), beta1: 0.9, beta2: 0.99, eps: 1e-8, bc2Sqrt: Math.sqrt(1 - 0.99 ** 3),
          stepSize: 1e-3 / (1 - 0.9 ** 3) };
        const [w, m, v] = [filled(be, w0, where), filled(be, m0, where), filled(be, v0, where)];
        be.fused.adamw(w, filled(be, g, where), m, v, h);
        const [rw, rm, rv] = [Float32Array.from(w0), Float32Array.from(m0), Float32Array.from(v0)];
        adamwUpdate(rw, Float32Array.from(g), rm, rv, h);
        assertClose(m, rm, 1e-6, `adamw m n=${n}`);
        assertClose(v, rv, 1e-6, `adamw v n=${n}`);
        assertClose(w, rw, 1e-6, `adamw w n=${n}`);
        const sq = be.fused.sumSquares(filled(be, g, where));
        const want = sumSquares(Float32Array.from(g));
        assert.ok(Math.abs(sq - want) <= 1e-12 * want, `sumSquares n=${n}: ${sq} vs ${want}`);
      }
    });

    test(`fused GELU backward is g times the derivative the reference gives (${where} buffers)`, () => {
      const be = get();
      const rng = new Rng(21);
      for (const n of [1, 3, 17, 1000, 70001]) {
        const xv = randoms(rng, n, -6, 6);
        for (let i = 0; i < Math.min(n, SPECIALS.length); i++) xv[(i * 7) % n] = SPECIALS[i];
        const gv = randoms(rng, n);
        const dx = buf(be, n, where);
        be.fused.geluTanhBackward(filled(be, xv, where), filled(be, gv, where), dx);
        const want = new Float32Array(n);
        jsBackend.unary('gelu_tanh_grad', xv, want);
        jsBackend.binary('mul', gv, [n], want, [n], want, [n]);
        assertClose(dx, want, 1e-6, `geluTanhBackward n=${n}`);
      }
    });

    test(`fused attention and its backward match the composite on js (${where} buffers)`, () => {
      const be = get();
      const rng = new Rng(16);
      for (const [B, T, C, H] of [[2, 5, 12, 3], [1, 1, 8, 2], [2, 33, 64, 4], [1, 70, 96, 3], [1, 18, 72, 2]]) {
        const vals = randoms(rng, B * T * 3 * C, -2, 2);
        const up = randoms(rng, B * T * C, -1, 1);
        const qkv = filled(be, vals, where);
        const y = buf(be, B * T * C, where);
        const p = buf(be, B * H * T * T, where);
        be.fused.attention(qkv, B, T, C, H, 0.4, y, p);
        const dqkv = buf(be, B * T * 3 * C, where);
        be.fused.attentionBackward(filled(be, up, where), qkv, p, B, T, C, H, 0.4, dqkv);
        const prev = hasBackend() ? getBackend() : undefined;
        setBackend(jsBackend);
        try {
          const x = ops.tensor(vals, [B, T, 3 * C]).requireGrad();
          const want = ops.causalSelfAttentionComposite(x, H, 0.4);
          ops.sum(ops.mul(want, ops.tensor(up, [B, T, C]))).backward();
          assertClose(y, want.data, 1e-5, `attention ${B}x${T}x${C}/${H}`);
          assertClose(dqkv, x.grad!.data, 1e-5, `attention backward ${B}x${T}x${C}/${H}`);
        } finally {
          if (prev) setBackend(prev);
        }
      }
    });

    test(`fused rmsNorm, rope and siluMul and their gradients match the composites on js (${where} buffers)`, () => {
      const be = get();
      const rng = new Rng(19);
      for (const [rows, n] of [[1, 1], [3, 17], [5, 128], [2, 577]]) {
        const vals = randoms(rng, rows * n, -3, 3);
        const up = randoms(rng, rows * n);
        const wv = randoms(rng, n, 0.5, 1.5);
        for (const withWeight of [true, false]) {
          const x = filled(be, vals, where);
          const w = withWeight ? filled(be, wv, where) : null;
          const [y, rstd, dx, gx] = [buf(be, rows * n, where), buf(be, rows, where), buf(be, rows * n, where), buf(be, rows * n, where)];
          be.fused.rmsNorm(x, rows, n, w, 1e-5, y, rstd);
          be.fused.rmsNormBackward(x, filled(be, up, where), w, rstd, rows, n, dx, gx);
          const [want, wantDx, wantDw] = compositeGrads((xt, wt) => ops.rmsNormComposite(xt, withWeight ? wt : null, 1e-5),
            [[vals, [rows, n]], [wv, [n]]], up);
          const what = `rmsNorm ${rows}x${n} weight ${withWeight}`;
          assertClose(y, want, 1e-5, what);
          assertClose(dx, wantDx, 1e-4, `${what} dx`);
          if (withWeight) assertClose(composite(() => ops.sum(ops.tensor(gx, [rows, n]), 0)), wantDw, 1e-4, `${what} dw`);
        }
      }
      for (const [B, T, H, hs] of [[1, 1, 1, 2], [2, 5, 3, 6], [2, 9, 4, 64]]) {
        const n = B * T * H * hs;
        const [vals, up] = [randoms(rng, n, -2, 2), randoms(rng, n)];
        const [c, sn] = [randoms(rng, T * hs / 2), randoms(rng, T * hs / 2)];
        const [y, dx] = [buf(be, n, where), buf(be, n, where)];
        be.fused.rope(filled(be, vals, where), B, T, H, hs, filled(be, c, where), filled(be, sn, where), y, false);
        be.fused.rope(filled(be, up, where), B, T, H, hs, filled(be, c, where), filled(be, sn, where), dx, true);
        const [want, wantDx] = compositeGrads((xt, ct, st) => ops.ropeComposite(xt, H, ct, st),
          [[vals, [B, T, H * hs]], [c, [T, hs / 2]], [sn, [T, hs / 2]]], up);
        assertClose(y, want, 0, `rope ${B}x${T}x${H}x${hs}`);
        assertClose(dx, wantDx, 1e-5, `rope inverse ${B}x${T}x${H}x${hs}`);
      }
      for (const n of [1, 3, 4, 17, 1000, 70001]) {
        const [gv, uv, up] = [randoms(rng, n, -8, 8), randoms(rng, n, -2, 2), randoms(rng, n)];
        const [y, sig, dg, du] = [buf(be, n, where), buf(be, n, where), buf(be, n, where), buf(be, n, where)];
        be.fused.siluMul(filled(be, gv, where), filled(be, uv, where), y, sig);
        be.fused.siluMulBackward(filled(be, up, where), filled(be, gv, where), filled(be, uv, where), sig, dg, du);
        const [want, wantDg, wantDu] = compositeGrads((g, u) => ops.siluMulComposite(g, u), [[gv, [n]], [uv, [n]]], up);
        assertClose(y, want, 1e-6, `siluMul n=${n}`);
        assertClose(dg, wantDg, 1e-5, `siluMul dgate n=${n}`);
        assertClose(du, wantDu, 1e-6, `siluMul dup n=${n}`);
      }
    });

    test(`fused grouped attention and its backward match the composite on js (${where} buffers)`, () => {
      const be = get();
      const rng = new Rng(20);
      for (const [B, Tq, Tk, Hq, Hkv, hs, window] of [[2, 5, 5, 4, 2, 8, 0], [1, 1, 7, 6, 3, 4, 0], [2, 4, 9, 3, 3, 8, 3],
        [1, 33, 40, 9, 3, 16, 0], [1, 17, 17, 4, 1, 8, 6], [2, 70, 75, 4, 2, 8, 0], [1, 129, 129, 2, 1, 4, 50],
        // decoding steps over a long cache (native runs these on its own kernel; the second is big enough to split)
        [1, 1, 90, 12, 12, 64, 0], [2, 2, 600, 8, 2, 67, 250]]) {
        const [nq, nk] = [B * Tq * Hq * hs, B * Tk * Hkv * hs];
        const [qv, kv, vv, up] = [randoms(rng, nq, -2, 2), randoms(rng, nk, -2, 2), randoms(rng, nk, -2, 2), randoms(rng, nq)];
        const [q, k, v] = [filled(be, qv, where), filled(be, kv, where), filled(be, vv, where)];
        const [y, p] = [buf(be, nq, where), buf(be, B * Hq * Tq * Tk, where)];
        be.fused.groupedAttention(q, k, v, B, Tq, Tk, Hq, Hkv, hs, 0.3, window, y, p);
        const [dq, dk, dv] = [buf(be, nq, where), buf(be, nk, where), buf(be, nk, where)];
        be.fused.groupedAttentionBackward(filled(be, up, where), q, k, v, p, B, Tq, Tk, Hq, Hkv, hs, 0.3, dq, dk, dv);
        const opts = { nHead: Hq, nKvHead: Hkv, scale: 0.3, window: window || null };
        const want = compositeGrads((qt, kt, vt) => ops.groupedCausalAttentionComposite(qt, kt, vt, opts),
          [[qv, [B, Tq, Hq * hs]], [kv, [B, Tk, Hkv * hs]], [vv, [B, Tk, Hkv * hs]]], up);
        const what = `grouped attention B=${B} Tq=${Tq} Tk=${Tk} Hq=${Hq} Hkv=${Hkv} hs=${hs} window=${window}`;
        assertClose(y, want[0], 1e-5, what);
        [dq, dk, dv].forEach((d, i) => assertClose(d, want[i + 1], 1e-5, `${what} gradient ${i}`));
      }
    });
  }
}

/**
 * A composite op's output and the gradients of sum(out * up) with respect to each input, on the js reference
 * backend; inputs are [values, shape] pairs.
 */
export function compositeGrads(fn: (...xs: Tensor[]) => Tensor, inputs: [Float32Array, number[]][],
  up: Float32Array): Float32Array[] {
  const prev = hasBackend() ? getBackend() : undefined;
  setBackend(jsBackend);
  try {
    const xs = inputs.map(([vals, shape]) => ops.tensor(vals, shape).requireGrad());
    const out = fn(...xs);
    ops.sum(ops.mul(out, ops.tensor(up, out.shape))).backward();
    return [out, ...xs.map((x) => x.grad ?? ops.zeros(x.shape))].map((t) => Float32Array.from(t.data));
  } finally {
    if (prev) setBackend(prev);
  }
}

/** A composite op's output computed with the js reference backend. */
export function composite(fn: () => { data: Float32Array }): Float32Array {
  const prev = hasBackend() ? getBackend() : undefined;
  setBackend(jsBackend);
  try {
    return Float32Array.from(fn().data);
  } finally {
    if (prev) setBackend(prev);
  }
}

/** max, sub, exp, sum, div with the js reference kernels (ops.ts's softmax). */
export function compositeSoftmax(x: Float32Array, rows: number, n: number): Float32Array {
  const layout = { outer: rows, n, inner: 1 };
  const m = new Float32Array(rows);
  jsBackend.reduce('max', x, layout, m);
  const shifted = new Float32Array(rows * n);
  jsBackend.binary('sub', x, [rows, n], m, [rows, 1], shifted, [rows, n]);
  const e = new Float32Array(rows * n);
  jsBackend.unary('exp', shifted, e);
  const s = new Float32Array(rows);
  jsBackend.reduce('sum', e, layout, s);
  const out = new Float32Array(rows * n);
  jsBackend.binary('div', e, [rows, n], s, [rows, 1], out, [rows, n]);
  return out;
}
