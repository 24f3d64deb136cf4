// Matrix-product throughput of the js, wasm and native backends, 1 and 2 threads, on GPT-2-small shapes: a prefill
// / training product (256 x 768 x 3072) and a decode GEMV (1 x 768 x 3072), each with B stored (K, N) as
// GPT-2's Conv1D and (N, K) as a Linear layer. Prints GFLOP/s (best of the timed runs) and the ratio to js.
// Usage: node dist/bench/matmul.js [--reps N] [--json]
import { jsBackend } from '../src/backends/js/index.js';
import { createNativeBackend, nativeAvailable, nativeUnavailableReason } from '../src/backends/native/index.js';
import { createWasmBackend, wasmAvailable, wasmUnavailableReason } from '../src/backends/wasm/index.js';
import type { Backend, MatmulArgs } from '../src/tensor/backend.js';
import { Rng } from '../src/tensor/random.js';

interface Shape {
  label: string;
  M: number;
  K: number;
  N: number;
  transB: boolean;
}

const SHAPES: Shape[] = [
  { label: '256x768x3072', M: 256, K: 768, N: 3072, transB: false },
  { label: '256x768x3072 Bt', M: 256, K: 768, N: 3072, transB: true },
  { label: '1x768x3072', M: 1, K: 768, N: 3072, transB: false },
  { label: '1x768x3072 Bt', M: 1, K: 768, N: 3072, transB: true },
];

const argv = process.argv.slice(2);
const repsAt = argv.indexOf('--reps');
const reps = repsAt >= 0 ? Number(argv[repsAt + 1]) : 20;
const json = argv.includes('--json');

/** Best GFLOP/s over timed runs of one product (a warm-up first); the budget keeps slow backends short. */
function measure(be: Backend, s: Shape, runs: number): number {
  const rng = new Rng(1);
  const a = be.alloc(s.M * s.K);
  const b = be.alloc(s.K * s.N);
  for (let i = 0; i < a.length; i++) a[i] = rng.next() - 0.5;
  for (let i = 0; i < b.length; i++) b[i] = rng.next() - 0.5;
  const c = be.alloc(s.M * s.N);
  const args: MatmulArgs = {
    batch: 1, M: s.M, K: s.K, N: s.N, transA: false, transB: s.transB, aBatchStride: 0, bBatchStride: 0,
  };
  const flops = 2 * s.M * s.K * s.N;
  be.matmul(a, b, c, args);
  let best = Infinity;
  const deadline = performance.now() + 5000;
  for (let r = 0; r < runs && performance.now() < deadline; r++) {
    const t0 = performance.now();
    be.matmul(a, b, c, args);
    best = Math.min(best, performance.now() - t0);
  }
  return flops / best / 1e6;
}

interface Row {
  shape: string;
  backend: string;
  threads: number;
  gflops: number;
}

const rows: Row[] = [];
for (const s of SHAPES) {
  rows.push({ shape: s.label, backend: 'js', threads: 1, gflops: measure(jsBackend, s, Math.min(reps, s.M > 1 ? 2 : reps)) });
}
if (wasmAvailable()) {
  for (const threads of [1, 2]) {
    const be = createWasmBackend({ threads });
    be.waitForWorkers();
    for (const s of SHAPES) {
      rows.push({ shape: s.label, backend: `wasm (${be.variant})`, threads, gflops: measure(be, s, s.M > 1 ? reps : reps * 10) });
    }
    be.close();
  }
} else {
  console.error(`wasm backend unavailable: ${wasmUnavailableReason()}`);
}
if (nativeAvailable()) {
  for (const threads of [1, 2]) {
    const be = createNativeBackend({ threads, base: jsBackend });
    for (const s of SHAPES) {
      rows.push({ shape: s.label, backend: `native (${be.isa})`, threads, gflops: measure(be, s, s.M > 1 ? reps : reps * 10) });
    }
  }
} else {
  console.error(`native backend unavailable: ${nativeUnavailableReason()}`);
}

if (json) {
  console.log(JSON.stringify(rows));
} else {
  const js = new Map(rows.filter((r) => r.backend === 'js').map((r) => [r.shape, r.gflops]));
  console.log('shape               backend              threads   GFLOP/s   vs js');
  for (const r of rows) {
    const ratio = r.gflops / js.get(r.shape)!;
    console.log(`${r.shape.padEnd(20)}${r.backend.padEnd(21)}${String(r.threads).padStart(7)}${r.gflops.toFixed(1).padStart(10)}${ratio.toFixed(1).padStart(8)}x`);
  }
}
