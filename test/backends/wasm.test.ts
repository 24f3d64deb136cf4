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
import type { MatmulArgs } from '../../src/tensor/backend.js';
import * as ops from '../../src/tensor/ops.js';
import { Rng } from '../../src/tensor/random.js';
import {
  assertClose, composite, compositeGrads, compositeSoftmax, kernelTests, randoms,
} from '../helpers/kernel-suite.js';
import { stridesOf } from '../../src/tensor/shape.js';

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

/** The kernel comparisons, run against one backend configuration. */
function kernelSuite(label: string, opts: WasmBackendOptions): void {
  describe(`wasm kernels vs js (${label})`, { skip }, () => {
    let be: WasmBackend;
    before(() => {
      be = createWasmBackend(opts);
      if ((opts.threads ?? 1) > 1) assert.equal(be.waitForWorkers(), (opts.threads ?? 1) - 1, 'workers started');
    });
    after(() => be.close());

    kernelTests(() => be, (n, where) => (where === 'heap' ? be.alloc(n) : new Float32Array(n)), ['heap', 'foreign']);
  });
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
