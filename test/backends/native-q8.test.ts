// The native int8 weight kernel (native/q8.c) against the js reference (src/backends/js/q8.ts) on every instruction
// set this CPU runs, on one thread and two: the fused dot product (a few rows of x) and the dequantise-then-GEMM
// path (many rows), group sizes 16, 32 and 64, and the binding's argument checks.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { jsBackend } from '../../src/backends/js/index.js';
import { matmulQ8 } from '../../src/backends/js/q8.js';
import { createNativeBackend, nativeAvailable, nativeUnavailableReason, type NativeBackend } from '../../src/backends/native/index.js';
import { quantizeQ8 } from '../../src/tensor/quant.js';
import { Rng } from '../../src/tensor/random.js';

const skip = nativeAvailable() ? false : `native backend unavailable: ${nativeUnavailableReason()}`;

function randoms(rng: Rng, n: number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (2 * rng.next() - 1) * scale;
  return a;
}

// (M, K, N, group): M 1-4 take the dot product, more the GEMM path; N crosses the 64-row GEMM blocks and the
// thread split; K crosses gemm.c's 256-deep packing; one GPT-2 LM-head-like row count.
const CASES: [number, number, number, number][] = [
  [1, 32, 1, 32], [1, 96, 33, 32], [3, 64, 50, 16], [4, 320, 129, 32], [1, 768, 2304, 32], [1, 128, 5003, 64],
  [5, 32, 7, 32], [9, 320, 200, 32], [64, 768, 300, 32], [33, 48, 65, 16],
];

for (const isa of ['avx512', 'avx2', 'generic']) {
  for (const threads of [1, 2]) {
    describe(`native matmulQ8 vs js (${isa}, ${threads} thread${threads > 1 ? 's' : ''})`, { skip }, () => {
      let be: NativeBackend;
      before(() => {
        be = createNativeBackend({ threads, isa, base: jsBackend });
      });

      test('every case, with and without a bias', (t) => {
        if (be.isa !== isa) {
          t.skip(`this CPU runs ${be.isa}, not ${isa}`);
          return;
        }
        const rng = new Rng(31);
        for (const [M, K, N, group] of CASES) {
          const x = randoms(rng, M * K, 2);
          const w = quantizeQ8(randoms(rng, N * K, 0.3), N, K, group);
          for (const bias of [null, randoms(rng, N)]) {
            const got = new Float32Array(M * N);
            const want = new Float32Array(M * N);
            be.fused!.matmulQ8!(x, w.q, w.scales, bias, M, K, N, group, got);
            matmulQ8(x, w.q, w.scales, bias, M, K, N, group, want);
            for (let i = 0; i < got.length; i++) {
              assert.ok(Math.abs(got[i] - want[i]) <= 2e-5 * Math.sqrt(K) * Math.max(1, Math.abs(want[i])),
                `(${M}, ${K}, ${N}, group ${group}) [${i}]: ${got[i]} vs ${want[i]}`);
            }
          }
        }
      });
    });
  }
}

describe('native matmulQ8 argument checks', { skip }, () => {
  test('wrong types, a bad group and short operands throw instead of reading out of bounds', () => {
    const be = createNativeBackend({ base: jsBackend });
    const k = be.fused!.matmulQ8!;
    const x = new Float32Array(64);
    const q = new Int8Array(128);
    const s = new Float32Array(4);
    const out = new Float32Array(2);
    k(x, q, s, null, 1, 64, 2, 32, out); // the well-formed call
    assert.throws(() => k(x, new Uint8Array(128) as unknown as Int8Array, s, null, 1, 64, 2, 32, out), /wrong argument types/);
    assert.throws(() => k(x, q, s, null, 1, 64, 2, 24, out), /multiple of 16/);
    assert.throws(() => k(x, q, s, null, 1, 64, 3, 32, new Float32Array(3)), /shorter than its shape/);
    assert.throws(() => k(x, q, s, new Float32Array(1), 1, 64, 2, 32, out), /shorter than its shape/);
  });
});
