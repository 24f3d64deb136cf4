// One matmul conformance body for the fast backends (wasm, native): every transpose form, batch stride and size
// against the js reference, within float32 accumulation error.
import assert from 'node:assert/strict';
import { jsBackend } from '../../src/backends/js/index.js';
import type { Backend, MatmulArgs } from '../../src/tensor/backend.js';
import type { Rng } from '../../src/tensor/random.js';

const EPS32 = 2 ** -24;

/** Sizes with odd edges, the vector forms (M or N = 1) and the empty depth (K = 0); rows are (M, K, N). */
export const MATMUL_DIMS: readonly (readonly [number, number, number])[] = [
  [1, 1, 1], [1, 17, 33], [1, 300, 100], [3, 1, 5], [17, 33, 1], [100, 257, 1], [33, 100, 17], [2, 257, 3],
  [100, 33, 257], [257, 17, 100], [64, 300, 48], [5, 0, 7], [4, 600, 20],
];

/**
 * Run be.matmul on random operands in every transpose form and batch layout (separate, A shared, B shared) for
 * each (M, K, N), each operand placed by `place` (a backend's own memory or a plain array), and compare with
 * the js reference.
 */
export function assertMatmulForms(be: Backend, rng: Rng, dims: readonly (readonly [number, number, number])[],
  place: (values: Float32Array, M: number, N: number) => Float32Array): void {
  const randoms = (n: number): Float32Array => Float32Array.from({ length: n }, () => 2 * rng.next() - 1);
  for (const [M, Kd, N] of dims) {
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        for (const [batch, shareA, shareB] of [[1, false, false], [3, false, false], [3, true, false], [2, false, true]] as const) {
          const args: MatmulArgs = {
            batch, M, K: Kd, N, transA, transB, aBatchStride: shareA ? 0 : M * Kd, bBatchStride: shareB ? 0 : Kd * N,
          };
          const a = place(randoms((shareA ? 1 : batch) * M * Kd), M, N);
          const b = place(randoms((shareB ? 1 : batch) * Kd * N), M, N);
          const out = place(new Float32Array(batch * M * N).fill(NaN), M, N);
          const want = new Float32Array(batch * M * N);
          be.matmul(a, b, out, args);
          jsBackend.matmul(a, b, want, args);
          // Float32 accumulation: within K roundings of the sum of |a||b| (< K here, as |a|, |b| < 1).
          const tol = Math.max(1, Kd) * EPS32 * Math.max(1, Kd);
          for (let i = 0; i < want.length; i++) {
            assert.ok(Math.abs(out[i] - want[i]) <= tol, `matmul ${JSON.stringify(args)} [${i}] ${out[i]} vs ${want[i]}`);
          }
        }
      }
    }
  }
}
