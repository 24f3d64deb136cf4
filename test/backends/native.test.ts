// The native backend's kernels against the js reference (the oracle): every transpose, batch and stride form of
// matmul and GELU on each instruction set this CPU has, on one thread and two, over plain and wasm-memory buffers; NaN and
// infinity propagation; the whole kernel suite (test/helpers/kernel-suite.ts) on one thread and two; argument checks;
// and the fallback to wasm when the addon is missing.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { jsBackend } from '../../src/backends/js/index.js';
import {
  createNativeBackend, nativeAvailable, nativeUnavailableReason, type NativeBackend,
} from '../../src/backends/native/index.js';
import { getWasmBackend, wasmAvailable } from '../../src/backends/wasm/index.js';
import type { Backend, MatmulArgs } from '../../src/tensor/backend.js';
import { Rng } from '../../src/tensor/random.js';
import { adamwUpdate } from '../../src/tensor/optim-math.js';
import { kernelTests, type FullBackend } from '../helpers/kernel-suite.js';
import { assertMatmulForms, MATMUL_DIMS } from '../helpers/matmul.js';

const EPS32 = 2 ** -24;
const root = fileURLToPath(new URL('../../../', import.meta.url));
const skip = nativeAvailable() ? false : `native backend unavailable: ${nativeUnavailableReason()}`;

function randoms(rng: Rng, n: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = 2 * rng.next() - 1;
  return a;
}

/** values copied into a buffer of `owner` (wasm memory for the wasm backend) or a plain array. */
function placed(owner: Backend | null, values: Float32Array): Float32Array {
  const a = owner ? owner.alloc(values.length) : new Float32Array(values.length);
  a.set(values);
  return a;
}

// The shared sizes cross the packing blocks (K > 256, M > 192, N > 256), leave partial register tiles on every
// instruction set, take the GEMV path (M or N = 1) and the empty-depth path (K = 0); one more crosses all three.
const DIMS = [...MATMUL_DIMS, [200, 520, 300] as const];

/** The ISAs to force: every one this CPU runs (a forced ISA above the CPU's falls back, so check what loaded). */
const ISAS = ['avx512', 'avx2', 'generic'];

for (const isa of ISAS) {
  for (const threads of [1, 2]) {
    describe(`native matmul vs js (${isa}, ${threads} thread${threads > 1 ? 's' : ''})`, { skip }, () => {
      let be: NativeBackend;
      before(() => {
        be = createNativeBackend({ threads, isa, base: jsBackend });
      });

      test('every transpose form, batch strides and sizes', (t) => {
        if (be.isa !== isa) {
          t.skip(`this CPU runs ${be.isa}, not ${isa}`);
          return;
        }
        assert.equal(be.threads, threads);
        const owners: (Backend | null)[] = [null, ...(wasmAvailable() ? [getWasmBackend()] : [])];
        assertMatmulForms(be, new Rng(16), DIMS, (values, M, N) => placed(owners[(M + N) % owners.length], values));
      });

      test('GELU and its derivative match the reference, specials included', (t) => {
        if (isa === 'generic') {
          t.skip('the portable build leaves GELU to the base backend');
          return;
        }
        const rng = new Rng(19);
        const SPECIALS = [0, -0, NaN, Infinity, -Infinity, 1e-30, -1e-30, 80, -80, 20, -20, 0.5, -0.5, 1e20, -1e20, 88, -88];
        for (const n of [1, 3, 17, 33, 100, 257, 40000]) {
          const x = randoms(rng, n).map((v, i) => v * (i % 3 === 0 ? 12 : 4));
          for (let i = 0; i < Math.min(n, SPECIALS.length); i++) x[(i * 7) % n] = SPECIALS[i];
          for (const op of ['gelu_tanh', 'gelu_tanh_grad'] as const) {
            const out = new Float32Array(n);
            const want = new Float32Array(n);
            be.unary(op, x, out);
            jsBackend.unary(op, x, want);
            for (let i = 0; i < n; i++) {
              if (Number.isNaN(want[i]) || Number.isNaN(out[i])) {
                assert.ok(Number.isNaN(out[i]) && Number.isNaN(want[i]), `${op}(${x[i]}) = ${out[i]}, expected ${want[i]}`);
              } else {
                // The wasm column's bound for transcendental kernels.
                assert.ok(out[i] === want[i] || Math.abs(out[i] - want[i]) <= 1e-6 * Math.max(1, Math.abs(want[i])), `${op}(${x[i]}) = ${out[i]}, expected ${want[i]}`);
              }
            }
          }
        }
      });

      test('NaN and infinity propagate as in the reference', () => {
        const rng = new Rng(17);
        for (const [M, Kd, N] of [[1, 40, 70], [30, 300, 40], [40, 30, 1]]) {
          for (const transB of [false, true]) {
            const a = randoms(rng, M * Kd).map((x) => x + (x >= 0 ? 0.5 : -0.5)); // no zeros: js skips a[i] = 0
            const b = randoms(rng, Kd * N);
            a[Kd + 3 < a.length ? Kd + 3 : 0] = NaN;
            b[5] = Infinity;
            b[b.length - 1] = -Infinity;
            const args: MatmulArgs = { batch: 1, M, K: Kd, N, transA: false, transB, aBatchStride: 0, bBatchStride: 0 };
            const out = new Float32Array(M * N);
            const want = new Float32Array(M * N);
            be.matmul(a, b, out, args);
            jsBackend.matmul(a, b, want, args);
            for (let i = 0; i < want.length; i++) {
              if (Number.isFinite(want[i])) {
                assert.ok(Math.abs(out[i] - want[i]) <= Kd * Kd * EPS32 * 4, `[${i}] ${out[i]} vs ${want[i]}`);
              } else {
                assert.ok(Object.is(out[i], want[i]), `[${i}] ${out[i]} vs ${want[i]} (${M}x${Kd}x${N}, transB ${transB})`);
              }
            }
          }
        }
      });
    });
  }
}

for (const threads of [1, 2]) {
  describe(`native kernels vs js (${threads} thread${threads > 1 ? 's' : ''})`, { skip }, () => {
    let be: NativeBackend;
    before(() => {
      be = createNativeBackend({ threads });
    });
    const wasm = wasmAvailable() ? getWasmBackend() : null;
    const place = (n: number, where: string): Float32Array => (where === 'wasm memory' ? wasm!.alloc(n) : new Float32Array(n));
    kernelTests(() => be as FullBackend, place, wasm ? ['plain', 'wasm memory'] : ['plain']);

    test('AdamW gives the reference\'s bits, and a split sum of squares stays within double rounding', () => {
      const rng = new Rng(22);
      const n = 100_003;
      const [w, g, m, v] = [randoms(rng, n), randoms(rng, n).map((x) => x * 0.1), randoms(rng, n).map((x) => x * 0.01),
        randoms(rng, n).map((x) => x * x * 1e-4)];
      const h = { decay: Math.fround(1 - 6e-4 * 0.1), beta1: 0.9, beta2: 0.99, eps: 1e-8, bc2Sqrt: Math.sqrt(1 - 0.99 ** 7),
        stepSize: 6e-4 / (1 - 0.9 ** 7) };
      const mine = [w, m, v].map((a) => Float32Array.from(a));
      const ref = [w, m, v].map((a) => Float32Array.from(a));
      be.fused!.adamw!(mine[0], g, mine[1], mine[2], h);
      adamwUpdate(ref[0], g, ref[1], ref[2], h);
      mine.forEach((a, k) => assert.ok(a.every((x, i) => Object.is(x, ref[k][i])), `buffer ${k} differs`));
    });
  });
}

describe('native backend plumbing', { skip }, () => {
  test('the split across threads does not change any sum: one and two threads agree bit for bit', () => {
    const rng = new Rng(18);
    const a = randoms(rng, 2 * 300 * 700);
    const b = randoms(rng, 700 * 520);
    const v = randoms(rng, 700);
    const run = (threads: number): Float32Array[] => {
      const be = createNativeBackend({ threads, base: jsBackend });
      const c = new Float32Array(2 * 300 * 520);
      be.matmul(a, b, c, { batch: 2, M: 300, K: 700, N: 520, transA: false, transB: false, aBatchStride: 300 * 700, bBatchStride: 0 });
      const y = new Float32Array(520);
      be.matmul(v, b, y, { batch: 1, M: 1, K: 700, N: 520, transA: false, transB: false, aBatchStride: 0, bBatchStride: 0 });
      return [c, y];
    };
    const one = run(1);
    const two = run(2);
    one.forEach((x, i) => assert.ok(x.every((e, j) => Object.is(e, two[i][j])), `result ${i} differs`));
  });

  test('the training kernels split across threads give the bits of one thread', () => {
    const rng = new Rng(23);
    const [R, C] = [768, 512];
    const x = randoms(rng, R * C);
    const y = randoms(rng, R * C);
    const bias = randoms(rng, C);
    const w = randoms(rng, C);
    const qkv = randoms(rng, 4 * 64 * 3 * 128);
    const run = (threads: number): Float32Array[] => {
      const be = createNativeBackend({ threads, base: jsBackend });
      const f = be.fused!;
      const out = (n: number): Float32Array => new Float32Array(n);
      const [sum, row, col, soft, ln, mean, rstd, dx, gx, gelu, att, p, datt] = [out(R * C), out(R * C), out(C), out(R * C),
        out(R * C), out(R), out(R), out(R * C), out(R * C), out(R * C), out(4 * 64 * 128), out(4 * 4 * 64 * 64), out(qkv.length)];
      be.binary('add', x, [R, C], y, [R, C], sum, [R, C]);
      be.binary('mul', x, [R, C], bias, [1, C], row, [R, C]);
      be.reduce('sum', x, { outer: 1, n: R, inner: C }, col);
      f.logSoftmax!(x, R, C, soft);
      f.layerNorm!(x, R, C, w, bias, 1e-5, ln, mean, rstd);
      f.layerNormBackward!(x, y, w, mean, rstd, R, C, dx, gx);
      f.geluTanhBackward!(x, y, gelu);
      f.attention!(qkv, 4, 64, 128, 4, 0.17, att, p);
      f.attentionBackward!(att, qkv, p, 4, 64, 128, 4, 0.17, datt);
      return [sum, row, col, soft, ln, mean, rstd, dx, gx, gelu, att, p, datt, Float32Array.of(f.sumSquares!(x))];
    };
    const one = run(1);
    const two = run(2);
    one.forEach((a, i) => assert.ok(a.every((e, j) => Object.is(e, two[i][j])), `result ${i} differs`));
  });

  test('a short operand or a wrong array type throws instead of reading out of bounds', () => {
    const be = createNativeBackend({ threads: 2, base: jsBackend });
    const args: MatmulArgs = { batch: 2, M: 4, K: 5, N: 6, transA: false, transB: false, aBatchStride: 20, bBatchStride: 30 };
    assert.throws(() => be.matmul(new Float32Array(39), new Float32Array(60), new Float32Array(48), args), /shorter than its shape/);
    assert.throws(() => be.matmul(new Float32Array(40), new Float32Array(60), new Float32Array(47), args), /shorter than its shape/);
    assert.throws(() => be.matmul(new Float64Array(40) as unknown as Float32Array, new Float32Array(60),
      new Float32Array(48), args), /Float32Arrays/);
  });

  test('the training kernels are native, the buffers and the rest the base backend\'s own', () => {
    const base = wasmAvailable() ? getWasmBackend() : jsBackend;
    const be = createNativeBackend({ base });
    assert.equal(be.name, 'native');
    assert.equal(be.base, base);
    assert.notEqual(be.binary, base.binary);
    assert.notEqual(be.fused?.layerNorm, base.fused?.layerNorm);
    assert.equal(be.alloc, base.alloc);
    assert.equal(be.permute, base.permute);
  });

  test('a binary or norm call with a short operand throws instead of reading out of bounds', () => {
    const be = createNativeBackend({ threads: 2, base: jsBackend });
    assert.throws(() => be.binary('add', new Float32Array(5), [2, 3], new Float32Array(3), [1, 3], new Float32Array(6), [2, 3]),
      /shorter than its shape/);
    assert.throws(() => be.binary('add', new Float32Array(6), [2, 3], new Float32Array(2), [1, 3], new Float32Array(6), [2, 3]),
      /shorter than its shape/);
    assert.throws(() => be.fused!.layerNorm!(new Float32Array(6), 2, 3, new Float32Array(2), null, 1e-5, new Float32Array(6)),
      /shorter than its shape/);
    assert.throws(() => be.reduce('sum', new Float32Array(5), { outer: 2, n: 3, inner: 1 }, new Float32Array(2)), /shorter/);
  });
});

/** Run the CLI with `env` added; returns its exit status, stdout and stderr. */
function ajar(args: string[], env: Record<string, string>): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [`${root}bin/ajar.js`, ...args], {
    cwd: root, encoding: 'utf8', env: { ...process.env, AJAR_BACKEND: '', ...env }, timeout: 120_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('without the addon', () => {
  const missing = { AJAR_NATIVE_PATH: `${root}no-such-dir/ajar_native.node` };

  test('ajar bench falls back to wasm and says why', { skip: wasmAvailable() ? false : 'wasm unavailable here' }, () => {
    const r = ajar(['bench', 'train-baby', '--steps', '1', '--json'], missing);
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { backend: string; backend_why: string };
    assert.equal(out.backend, 'wasm');
    assert.match(out.backend_why, /native kernels unavailable: the addon .*no-such-dir\/ajar_native\.node is not built/);
  });

  test('--backend native is a one-line error with exit code 2', () => {
    const r = ajar(['bench', 'train-baby', '--steps', '1', '--backend', 'native'], missing);
    assert.equal(r.status, 2);
    assert.match(r.stderr.trim(), /^[^\n]*backend 'native' is unavailable here: the addon .* is not built[^\n]*$/);
  });

  test('with the addon, the default is native and says so', { skip }, () => {
    const r = ajar(['bench', 'train-baby', '--steps', '1', '--json'], {});
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { backend: string; backend_why: string };
    assert.deepEqual([out.backend, out.backend_why], ['native', 'default: the native kernels loaded']);
  });
});
