// The wasm backend's kernels against the js reference (the oracle) on random inputs of odd sizes, in every
// transpose, batch, broadcast and stride form the engine uses, with buffers inside and outside the wasm memory,
// on one thread and split across two; plus the allocator, memory growth, fallbacks and process exit.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { jsBackend } from '../../src/backends/js/index.js';
import {
  createWasmBackend, wasmAvailable, wasmUnavailableReason, type WasmBackend, type WasmBackendOptions,
} from '../../src/backends/wasm/index.js';
import { sizeClass, WasmHeap } from '../../src/backends/wasm/heap.js';
import { mergeBroadcast, mergePermute } from '../../src/backends/wasm/layout.js';
import {
  BINARY_OPS, getBackend, hasBackend, setBackend, UNARY_OPS, type AxisLayout, type MatmulArgs, type UnaryOp,
} from '../../src/tensor/backend.js';
import * as ops from '../../src/tensor/ops.js';
import { adamwUpdate, sumSquares } from '../../src/tensor/optim-math.js';
import { Rng } from '../../src/tensor/random.js';
import { assertMatmulForms, MATMUL_DIMS } from '../helpers/matmul.js';
import { stridesOf } from '../../src/tensor/shape.js';
import type { Tensor } from '../../src/tensor/tensor.js';

const SIZES = [1, 3, 17, 33, 100, 257];
const EPS32 = 2 ** -24;
const available = wasmAvailable();
const skip = available ? false : `wasm backend unavailable: ${wasmUnavailableReason()}`;

test('the kernels are built and this runtime loads them', () => {
  // Node >= 20 has WebAssembly SIMD and shared memory, so the only way to get here is unbuilt kernels.
  assert.ok(available, wasmUnavailableReason());
});

type Where = 'heap' | 'foreign';

/** n floats in the backend's memory or in an ordinary Float32Array. */
function buf(be: WasmBackend, n: number, where: Where): Float32Array {
  return where === 'heap' ? be.alloc(n) : new Float32Array(n);
}

function filled(be: WasmBackend, values: ArrayLike<number>, where: Where): Float32Array {
  const a = buf(be, values.length, where);
  a.set(values);
  return a;
}

function randoms(rng: Rng, n: number, lo = -1, hi = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = lo + (hi - lo) * rng.next();
  return a;
}

/** Assert |got - want| <= tol * max(1, |want|) elementwise (NaN must meet NaN; tol 0 means equal). */
function assertClose(got: ArrayLike<number>, want: ArrayLike<number>, tol: number, what: string): void {
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

/** The kernel comparisons, run against one backend configuration. */
function kernelSuite(label: string, opts: WasmBackendOptions): void {
  describe(`wasm kernels vs js (${label})`, { skip }, () => {
    let be: WasmBackend;
    before(() => {
      be = createWasmBackend(opts);
      if ((opts.threads ?? 1) > 1) assert.equal(be.waitForWorkers(), (opts.threads ?? 1) - 1, 'workers started');
    });
    after(() => be.close());

    for (const where of ['heap', 'foreign'] as const) {
      test(`unary, every op (${where} buffers)`, () => {
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
        assertMatmulForms(be, new Rng(6), MATMUL_DIMS, (values) => filled(be, values, where));
      });

      test(`permute: attention heads, transposes, general (${where} buffers)`, () => {
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

      test(`fused attention and its backward match the composite on js (${where} buffers)`, () => {
        const rng = new Rng(16);
        for (const [B, T, C, H] of [[2, 5, 12, 3], [1, 1, 8, 2], [2, 33, 64, 4]]) {
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
        const rng = new Rng(20);
        for (const [B, Tq, Tk, Hq, Hkv, hs, window] of [[2, 5, 5, 4, 2, 8, 0], [1, 1, 7, 6, 3, 4, 0], [2, 4, 9, 3, 3, 8, 3],
          [1, 33, 40, 9, 3, 16, 0], [1, 17, 17, 4, 1, 8, 6], [2, 70, 75, 4, 2, 8, 0], [1, 129, 129, 2, 1, 4, 50]]) {
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
  });
}

/**
 * A composite op's output and the gradients of sum(out * up) with respect to each input, on the js reference
 * backend; inputs are [values, shape] pairs.
 */
function compositeGrads(fn: (...xs: Tensor[]) => Tensor, inputs: [Float32Array, number[]][],
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
function composite(fn: () => { data: Float32Array }): Float32Array {
  const prev = hasBackend() ? getBackend() : undefined;
  setBackend(jsBackend);
  try {
    return Float32Array.from(fn().data);
  } finally {
    if (prev) setBackend(prev);
  }
}

/** max, sub, exp, sum, div with the js reference kernels (ops.ts's softmax). */
function compositeSoftmax(x: Float32Array, rows: number, n: number): Float32Array {
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

kernelSuite('1 thread', { threads: 1 });
kernelSuite('2 threads, every job split', { threads: 2, parallelScale: 0 });

describe('wasm threading', { skip }, () => {
  let one: WasmBackend;
  let two: WasmBackend;
  before(() => {
    one = createWasmBackend({ threads: 1 });
    two = createWasmBackend({ threads: 2, parallelScale: 0 });
    two.waitForWorkers();
  });
  after(() => {
    one.close();
    two.close();
  });

  test('split work gives bit-identical results to one thread, and the worker takes chunks', () => {
    const before = two.chunksRun()[1];
    const run = (be: WasmBackend): Float32Array[] => {
      const r = new Rng(12);
      const a = filled(be, randoms(r, 3 * 64 * 300), 'heap');
      const b = filled(be, randoms(r, 300 * 48), 'heap');
      const c = be.alloc(3 * 64 * 48);
      be.matmul(a, b, c, { batch: 3, M: 64, K: 300, N: 48, transA: false, transB: false, aBatchStride: 64 * 300, bBatchStride: 0 });
      const v = be.alloc(48);
      be.matmul(a.subarray(0, 300), b, v, { batch: 1, M: 1, K: 300, N: 48, transA: false, transB: false, aBatchStride: 0, bBatchStride: 0 });
      const e = be.alloc(a.length);
      be.unary('gelu_erf', a, e);
      const s = be.alloc(300);
      be.reduce('sum', a, { outer: 1, n: 3 * 64, inner: 300 }, s);
      const p = be.alloc(a.length);
      be.permute(a, [3, 64, 6, 50], [0, 2, 1, 3], p);
      const sm = be.alloc(a.length);
      be.fused.softmax(a, 3 * 64, 300, sm);
      const w = be.alloc(a.length);
      be.binary('mul', a, [3, 64, 300], s, [1, 1, 300], w, [3, 64, 300]);
      return [c, v, e, s, p, sm, w];
    };
    const r1 = run(one);
    const r2 = run(two);
    r1.forEach((x, i) => assert.deepEqual(Array.from(r2[i]), Array.from(x), `result ${i}`));
    // NOTE: on a busy machine the main thread may claim every chunk of a few calls before the worker is scheduled;
    // the worker must take some within a few dozen calls.
    for (let i = 0; i < 50 && two.chunksRun()[1] <= before; i++) {
      run(two).forEach((x, j) => assert.deepEqual(Array.from(x), Array.from(r1[j]), `result ${j}, call ${i + 2}`));
    }
    assert.ok(two.chunksRun()[1] > before, `the worker ran no chunks: ${two.chunksRun()}`);
  });

  test('a process using worker threads exits promptly when its work is done', () => {
    const entry = fileURLToPath(new URL('../../src/backends/wasm/index.js', import.meta.url));
    const script = `import(${JSON.stringify(entry)}).then((m) => {
      const be = m.createWasmBackend({ threads: 2, parallelScale: 0 });
      be.waitForWorkers();
      const a = be.alloc(512 * 512); a.fill(1);
      const c = be.alloc(512 * 512);
      for (let i = 0; i < 20 && be.chunksRun()[1] === 0; i++) {
        be.matmul(a, a, c, { batch: 1, M: 512, K: 512, N: 512, transA: false, transB: false, aBatchStride: 0, bBatchStride: 0 });
      }
      console.log(c[0], be.chunksRun()[1] > 0);
    });`;
    const t0 = Date.now();
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), '512 true');
    assert.ok(Date.now() - t0 < 15_000, 'took too long to exit');
  });
});

describe('wasm kernel builds', { skip }, () => {
  const entry = fileURLToPath(new URL('../../src/backends/wasm/index.js', import.meta.url));
  const jsEntry = fileURLToPath(new URL('../../src/backends/js/index.js', import.meta.url));
  /** In a child process with the given flags: the variant loaded and the worst matmul error against js. */
  const probe = (flags: string[], env: Record<string, string> = {}): { variant: string; err: number } => {
    const script = `Promise.all([import(${JSON.stringify(entry)}), import(${JSON.stringify(jsEntry)})]).then(([m, j]) => {
      const be = m.createWasmBackend({ threads: 2, parallelScale: 0 });
      be.waitForWorkers();
      let err = 0;
      for (const [M, K, N] of [[1, 300, 70], [37, 300, 70]]) {
        const a = be.alloc(M * K), b = be.alloc(K * N), c = be.alloc(M * N), d = new Float32Array(M * N);
        for (let i = 0; i < a.length; i++) a[i] = Math.sin(i);
        for (let i = 0; i < b.length; i++) b[i] = Math.cos(i);
        const args = { batch: 1, M, K, N, transA: false, transB: false, aBatchStride: 0, bBatchStride: 0 };
        be.matmul(a, b, c, args);
        j.jsBackend.matmul(a, b, d, args);
        for (let i = 0; i < d.length; i++) err = Math.max(err, Math.abs(c[i] - d[i]));
      }
      console.log(JSON.stringify({ variant: be.variant, err }));
    });`;
    const r = spawnSync(process.execPath, [...flags, '--input-type=module', '-e', script], {
      encoding: 'utf8', timeout: 30_000, env: { ...process.env, ...env },
    });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout) as { variant: string; err: number };
  };

  test('plain SIMD is the default in Node 20', () => {
    const r = probe([]);
    assert.equal(r.variant, process.versions.node.startsWith('20.') ? 'simd' : r.variant);
    assert.ok(r.err < 1e-4, `error ${r.err}`);
  });

  test('the relaxed-SIMD (fused multiply-add) build loads when the runtime has it, and agrees with js', () => {
    const r = probe(['--experimental-wasm-relaxed-simd']);
    assert.equal(r.variant, 'relaxed-simd');
    assert.ok(r.err < 1e-4, `error ${r.err}`);
  });

  test('AJAR_WASM_VARIANT picks a build', () => {
    assert.equal(probe(['--experimental-wasm-relaxed-simd'], { AJAR_WASM_VARIANT: 'simd' }).variant, 'simd');
  });
});

/** A full garbage collection (exposing gc at runtime, the idiom heap.ts also uses). */
function gc(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

describe('wasm memory', { skip }, () => {
  test('size classes are 64-byte aligned and waste at most 1/8 above 4 KiB', () => {
    let prev = -1;
    for (let bytes = 1; bytes < 1 << 22; bytes = Math.ceil(bytes * 1.07) + 1) {
      const [cls, size] = sizeClass(bytes);
      assert.ok(size >= bytes && size % 64 === 0, `${bytes} -> ${size}`);
      if (bytes > 4096) assert.ok(size <= bytes * 1.125 + 64, `${bytes} -> ${size}`);
      assert.ok(cls >= prev, 'classes grow with size');
      prev = cls;
      assert.equal(sizeClass(size)[0], cls, `the class size ${size} maps back to its class`);
    }
  });

  test('merging dimensions', () => {
    assert.deepEqual(mergeBroadcast([4, 5, 6], [[4, 5, 6], [1, 1, 6]]), { shape: [20, 6], strides: [[6, 1], [0, 1]] });
    assert.deepEqual(mergeBroadcast([4, 5, 6], [[4, 5, 6], [4, 5, 6]]), { shape: [120], strides: [[1], [1]] });
    assert.deepEqual(mergeBroadcast([], [[], []]), { shape: [1], strides: [[0], [0]] });
    assert.deepEqual(mergePermute([2, 3, 4, 5], [0, 2, 1, 3]), { shape: [2, 4, 3, 5], strides: [[60, 5, 20, 1]] });
    assert.deepEqual(mergePermute([2, 3, 4], [0, 1, 2]).shape, [24]);
    assert.deepEqual(stridesOf([2, 3]), [3, 1]);
  });

  test('alloc gives zeroed views into the wasm memory, and stats count them', () => {
    const be = createWasmBackend({ threads: 1 });
    const before = be.memoryStats();
    const a = be.alloc(1000);
    assert.ok(be.owns(a));
    assert.ok(a.every((v) => v === 0));
    assert.equal(a.byteOffset % 64, 0);
    assert.ok(!be.owns(new Float32Array(4)));
    const s = be.memoryStats();
    assert.equal(s.allocations, before.allocations + 1);
    assert.ok(s.bytesInUse >= before.bytesInUse + 4000);
    assert.ok(s.peakBytesInUse >= s.bytesInUse);
    assert.equal(be.alloc(0).length, 0);
    be.close();
  });

  test('collected buffers return to the free lists and are reused, zeroed', async () => {
    const be = createWasmBackend({ threads: 1 });
    const n = 10_000;
    (() => {
      for (let i = 0; i < 100; i++) be.alloc(n).fill(3);
    })();
    const inUse = be.memoryStats().bytesInUse;
    for (let i = 0; i < 20 && be.memoryStats().finalized < 100; i++) {
      gc();
      await turns(2);
    }
    const s = be.memoryStats();
    assert.ok(s.finalized >= 100, `finalized ${s.finalized}`);
    assert.ok(s.bytesInUse <= inUse - 100 * n * 4, `bytes in use ${s.bytesInUse} after ${inUse}`);
    const fresh = Array.from({ length: 10 }, () => be.alloc(n));
    for (const f of fresh) assert.ok(f.every((v) => v === 0), 'memory used before comes back zeroed');
    assert.equal(be.memoryStats().memoryBytes, s.memoryBytes, 'reuse did not grow the memory');
    be.close();
  });

  test('the allocator splits, merges and gives back to the top', () => {
    const heap = new WasmHeap(65536, { maxBytes: 64 * 1024 * 1024 });
    const a = heap.allocBlock(4096);
    const b = heap.allocBlock(4096);
    const c = heap.allocBlock(4096);
    const guard = heap.allocBlock(64);
    assert.deepEqual([b - a, c - b], [4096, 4096]);
    heap.freeBlock(a);
    heap.freeBlock(b); // merges with a
    assert.equal(heap.stats().bytesFree, 8192);
    assert.equal(heap.allocBlock(8000), a, 'the merged block serves a larger request');
    heap.freeBlock(a);
    assert.equal(heap.allocBlock(100), a, 'a larger free block is split for a small request');
    assert.equal(heap.allocBlock(4096), a + 128, 'the rest of the split block serves the next');
    heap.freeBlock(guard);
    heap.freeBlock(c); // merges with the free rest of the split block; all of it was the top
    assert.equal(heap.stats().bytesFree, 0, 'the free run at the top went back to the bump pointer');
    const d = heap.allocBlock(4096 + 64);
    assert.equal(d, a + 128 + 4096, 'the top was lowered to the start of the free run');
    // Tensor buffers on memory used before are zeroed.
    new Uint8Array(heap.memory.buffer, d, 4096).fill(255);
    heap.freeBlock(d);
    const view = heap.alloc(1024);
    assert.equal(view.byteOffset, d);
    assert.ok(view.every((v) => v === 0));
  });

  test('a sweep gives back the blocks of buffers that died in an earlier turn, synchronously', async () => {
    const be = createWasmBackend({ threads: 1 });
    (() => {
      for (let i = 0; i < 50; i++) be.alloc(10_000).fill(1);
    })();
    const kept = be.alloc(10_000);
    await turns(1);
    const before = be.memoryStats();
    const freed = be.sweepMemory();
    const after = be.memoryStats();
    assert.ok(freed >= 50 * 40_000, `freed ${freed}`);
    assert.equal(after.bytesInUse, before.bytesInUse - freed);
    assert.equal(after.sweeps, before.sweeps + 1);
    assert.ok(be.owns(kept));
    // Blocks the sweep gave back are not given back again by their finalizers.
    for (let i = 0; i < 5; i++) {
      gc();
      await turns(2);
    }
    assert.equal(be.memoryStats().finalized, after.finalized);
    be.close();
  });

  test('allocating much in each turn sweeps by itself, so memory stops growing', async () => {
    const be = createWasmBackend({ threads: 1 });
    const n = 8 * 1024 * 1024; // 32 MiB per buffer, 256 MiB per turn
    let peak = 0;
    for (let turn = 0; turn < 6; turn++) {
      (() => {
        for (let i = 0; i < 8; i++) be.alloc(n)[0] = 1;
      })();
      peak = Math.max(peak, be.memoryStats().memoryBytes);
      await turns(1);
    }
    const s = be.memoryStats();
    assert.ok(s.sweeps >= 2, `sweeps ${s.sweeps}`);
    assert.ok(s.memoryBytes < 5 * 8 * n * 4, `memory ${s.memoryBytes} for 6 turns of ${8 * n * 4} bytes`);
    be.close();
  });

  test('a subarray keeps its parent block alive', async () => {
    const be = createWasmBackend({ threads: 1 });
    let child: Float32Array | undefined;
    (() => {
      const parent = be.alloc(1000);
      parent.fill(7);
      child = parent.subarray(10, 20).subarray(2, 5);
    })();
    for (let i = 0; i < 5; i++) {
      gc();
      await turns(2);
    }
    const others = Array.from({ length: 50 }, () => be.alloc(1000));
    assert.ok(others.every((o) => o.every((v) => v === 0)));
    assert.deepEqual(Array.from(child!), [7, 7, 7]);
    be.close();
  });

  test('growing the memory keeps earlier views valid', () => {
    const be = createWasmBackend({ threads: 1 });
    const early = be.alloc(1000);
    early.fill(2);
    const startBytes = be.memoryStats().memoryBytes;
    const big = be.alloc(16 * 1024 * 1024); // 64 MiB: forces growth
    assert.ok(be.memoryStats().memoryBytes > startBytes);
    assert.ok(be.owns(early) && be.owns(big));
    assert.ok(early.every((v) => v === 2));
    early[0] = 5;
    const out = be.alloc(1000);
    be.binary('add', early, [1000], big.subarray(0, 1000), [1000], out, [1000]);
    assert.equal(out[0], 5);
    assert.equal(out[999], 2);
    be.close();
  });

  test('when the memory is full, alloc falls back to ordinary arrays and kernels still work', () => {
    const be = createWasmBackend({ threads: 1, maxMemoryBytes: 32 * 1024 * 1024, reserveBytes: 8 * 1024 * 1024 });
    const held: Float32Array[] = [];
    for (let i = 0; i < 10; i++) held.push(be.alloc(1024 * 1024));
    const s = be.memoryStats();
    assert.ok(s.fallbacks > 0, 'some allocations fell back');
    assert.ok(s.memoryBytes <= 32 * 1024 * 1024);
    const outside = held[held.length - 1];
    assert.ok(!be.owns(outside));
    const rng = new Rng(13);
    outside.set(randoms(rng, outside.length));
    const a = outside.subarray(0, 64 * 64);
    const c = be.alloc(64 * 64);
    const want = new Float32Array(64 * 64);
    const args: MatmulArgs = { batch: 1, M: 64, K: 64, N: 64, transA: false, transB: true, aBatchStride: 0, bBatchStride: 0 };
    be.matmul(a, a, c, args);
    jsBackend.matmul(a, a, want, args);
    assertClose(c, want, 1e-5, 'matmul on a fallback buffer');
  });

  test('when not even scratch space is left, kernels run the js reference instead', () => {
    const be = createWasmBackend({ threads: 1, maxMemoryBytes: 16 * 1024 * 1024, reserveBytes: 0 });
    const held: Float32Array[] = [];
    while (be.memoryStats().fallbacks === 0) held.push(be.alloc(256 * 1024));
    const n = 2 * 1024 * 1024; // 8 MiB, larger than anything left
    const x = randoms(new Rng(14), n);
    const out = new Float32Array(n);
    be.unary('tanh', x, out);
    const want = new Float32Array(n);
    jsBackend.unary('tanh', x, want);
    assertClose(out, want, 0, 'tanh through the fallback');
    // The fused kernels' fallbacks: float32 steps in JavaScript.
    const rows = 1024;
    const cols = n / rows;
    be.fused.softmax(x, rows, cols, out);
    assertClose(out, compositeSoftmax(x, rows, cols), 1e-6, 'softmax through the fallback');
    be.fused.logSoftmax(x, rows, cols, out);
    assertClose(out, composite(() => ops.logSoftmax(ops.tensor(x, [rows, cols]), -1)), 1e-6, 'logSoftmax through the fallback');
    const w = randoms(new Rng(16), cols);
    be.fused.layerNorm(x, rows, cols, w, w, 1e-5, out);
    assertClose(out, composite(() => ops.layerNorm(ops.tensor(x, [rows, cols]), ops.tensor(w), ops.tensor(w), 1e-5)),
      1e-5, 'layerNorm through the fallback');
    // The Llama kernels' fallbacks, on 1 MiB buffers (still more than is left to stage them).
    const m = 1 << 18;
    const [r2, c2] = [256, m / 256];
    const [x2, up, o2] = [x.subarray(0, m), randoms(new Rng(17), m), new Float32Array(m)];
    const w2 = w.subarray(0, c2);
    const rstd = new Float32Array(r2);
    be.fused.rmsNorm(x2, r2, c2, w2, 1e-5, o2, rstd);
    const rms = compositeGrads((xt, wt) => ops.rmsNormComposite(xt, wt, 1e-5), [[x2, [r2, c2]], [w2, [c2]]], up);
    assertClose(o2, rms[0], 1e-5, 'rmsNorm through the fallback');
    const [dx, gx] = [new Float32Array(m), new Float32Array(m)];
    be.fused.rmsNormBackward(x2, up, w2, rstd, r2, c2, dx, gx);
    assertClose(dx, rms[1], 1e-4, 'rmsNorm backward through the fallback');
    assertClose(composite(() => ops.sum(ops.tensor(gx, [r2, c2]), 0)), rms[2], 1e-4, 'rmsNorm dw through the fallback');
    const [H, hs] = [c2 / 64, 64];
    const [c, sn] = [randoms(new Rng(18), r2 * hs / 2), randoms(new Rng(19), r2 * hs / 2)];
    be.fused.rope(x2, 1, r2, H, hs, c, sn, o2, false);
    const rot = compositeGrads((xt, ct, st) => ops.ropeComposite(xt, H, ct, st),
      [[x2, [1, r2, c2]], [c, [r2, hs / 2]], [sn, [r2, hs / 2]]], up);
    assertClose(o2, rot[0], 0, 'rope through the fallback');
    be.fused.rope(up, 1, r2, H, hs, c, sn, dx, true);
    assertClose(dx, rot[1], 1e-5, 'rope inverse through the fallback');
    const gate = x2.map((v) => 4 * v);
    const sig = new Float32Array(m);
    be.fused.siluMul(gate, x2, o2, sig);
    be.fused.siluMulBackward(up, gate, x2, sig, dx, gx);
    const swi = compositeGrads((g, u) => ops.siluMulComposite(g, u), [[gate, [m]], [x2, [m]]], up);
    assertClose(o2, swi[0], 1e-6, 'siluMul through the fallback');
    assertClose(dx, swi[1], 1e-5, 'siluMul dgate through the fallback');
    assertClose(gx, swi[2], 1e-6, 'siluMul dup through the fallback');
    // Grouped attention with heads too wide to stage: q (1, 16, 4 * 4096), k and v (1, 16, 2 * 4096).
    const [T, Hq, Hkv, D] = [16, 4, 2, 4096];
    const q = x.subarray(0, T * Hq * D);
    const [k, v] = [x.subarray(0, T * Hkv * D), x.subarray(T * Hkv * D, 2 * T * Hkv * D)];
    const [y, p, dyq] = [new Float32Array(q.length), new Float32Array(Hq * T * T), up.subarray(0, q.length)];
    be.fused.groupedAttention(q, k, v, 1, T, T, Hq, Hkv, D, 0.01, 5, y, p);
    const [dq, dk, dv] = [new Float32Array(q.length), new Float32Array(k.length), new Float32Array(v.length)];
    be.fused.groupedAttentionBackward(dyq, q, k, v, p, 1, T, T, Hq, Hkv, D, 0.01, dq, dk, dv);
    const att = compositeGrads((qt, kt, vt) => ops.groupedCausalAttentionComposite(qt, kt, vt,
      { nHead: Hq, nKvHead: Hkv, scale: 0.01, window: 5 }), [[q, [1, T, Hq * D]], [k, [1, T, Hkv * D]], [v, [1, T, Hkv * D]]], dyq);
    assertClose(y, att[0], 1e-5, 'grouped attention through the fallback');
    [dq, dk, dv].forEach((d, i) => assertClose(d, att[i + 1], 1e-4, `grouped attention gradient ${i} through the fallback`));
    assert.ok(held.length > 0);
  });
});
