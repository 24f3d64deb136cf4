// The wasm backend: the Backend contract on WebAssembly SIMD kernels (asm/, built by scripts/build-wasm.mjs),
// over buffers that live in one shared WebAssembly memory, with large kernels split across worker threads.
// Buffers from elsewhere (a plain Float32Array) still work: they are copied into scratch blocks and back.
import { availableParallelism, totalmem } from 'node:os';
import { jsBackend } from '../js/index.js';
import { matmulQ8 } from '../js/q8.js';
import {
  BINARY_OPS, UNARY_OPS, type AxisLayout, type Backend, type BinaryOp, type FusedKernels, type MatmulArgs,
  type ReduceOp, type UnaryOp, type AdamWScalars,
} from '../../tensor/backend.js';
import { adamwUpdate, sumSquares } from '../../tensor/optim-math.js';
import { AjarError } from '../../tensor/errors.js';
import { RANGE_KERNELS, readConstants, type KernelConstants, type KernelExports, type RangeKernel } from './abi.js';
import { WasmHeap, type HeapStats } from './heap.js';
import { mergeBroadcast, mergePermute, type Merged } from './layout.js';
import { loadKernels, whyUnavailable, type KernelVariant } from './module.js';
import {
  attentionBackwardReference, attentionReference, groupedAttentionBackwardReference, groupedAttentionReference,
  layerNormBackwardReference, layerNormReference, rmsNormBackwardReference, rmsNormReference, ropeReference,
  siluMulBackwardReference, siluMulReference, softmaxReference, type GroupedShape,
} from './fused-reference.js';
import { MAX_THREADS, WorkerPool } from './pool.js';
import { Staging } from './staging.js';

export type { HeapStats } from './heap.js';
export type { KernelVariant } from './module.js';

export interface WasmBackendOptions {
  /** Threads per kernel, the calling thread included (default AJAR_THREADS, else the cores, at most 8). */
  threads?: number;
  /** Cap on the wasm memory in bytes (default AJAR_WASM_MEMORY_MB, else min(4 GiB, 3/4 of RAM)). */
  maxMemoryBytes?: number;
  /** Bytes of that cap kept for kernels' scratch blocks rather than tensors (default 1/16). */
  reserveBytes?: number;
  /** Net bytes allocated between sweeps of dead buffers (default 128 MiB). */
  sweepBytes?: number;
  /**
   * Scales the least work a thread takes (default 1). 0 splits every job with more than one unit, which lets
   * tests run the threaded paths on small inputs.
   */
  parallelScale?: number;
}

/** The wasm backend's fused kernels: every FusedKernels entry. */
export type WasmFusedKernels = FusedKernels;

export interface WasmBackend extends Backend {
  readonly threads: number;
  readonly variant: KernelVariant;
  readonly fused: WasmFusedKernels;
  /** Allocator statistics (bytes in use, peak, free, memory size...). */
  memoryStats(): HeapStats;
  /**
   * Run a full GC and give back, now, the blocks of buffers that died before the current synchronous job;
   * returns the bytes given back. alloc() does this by itself when much was allocated since the last sweep.
   */
  sweepMemory(): number;
  /** Whether a buffer lives in this backend's memory (kernels use it without copying). */
  owns(a: ArrayBufferView): boolean;
  /** Start the worker threads now and wait (up to timeoutMs) until they serve; returns how many do. */
  waitForWorkers(timeoutMs?: number): number;
  /** Chunks of work each thread has run, by thread (0 is the calling thread). */
  chunksRun(): number[];
  /** Stop the worker threads; the backend keeps working on the calling thread alone. */
  close(): void;
}

const MAX_DEFAULT_THREADS = 8;
const PARAM_BYTES = 4096;

/** Default thread count: AJAR_THREADS, else the machine's parallelism capped at 8. */
export function defaultThreads(): number {
  const env = process.env.AJAR_THREADS;
  if (env !== undefined && env !== '') {
    const n = Number(env);
    if (!Number.isInteger(n) || n < 1) throw new AjarError('bad_flag', `AJAR_THREADS must be a positive integer, got '${env}'`);
    return n;
  }
  return Math.min(availableParallelism(), MAX_DEFAULT_THREADS);
}

function defaultMaxBytes(): number {
  const env = process.env.AJAR_WASM_MEMORY_MB;
  if (env !== undefined && env !== '') {
    const mb = Number(env);
    if (!(mb >= 16)) throw new AjarError('bad_flag', `AJAR_WASM_MEMORY_MB must be a number of MiB >= 16, got '${env}'`);
    return mb * 1024 * 1024;
  }
  return Math.min(2 ** 32, Math.floor(0.75 * totalmem()));
}

/** Whether this runtime can run the wasm backend (SIMD, shared memory, kernel files present). */
export function wasmAvailable(): boolean {
  return loadKernels() !== null;
}

/** Why wasmAvailable() is false ('' when it is true). */
export function wasmUnavailableReason(): string {
  return whyUnavailable();
}

let shared: WasmBackend | undefined;

/** The process-wide wasm backend with default options (created on first use). */
export function getWasmBackend(): WasmBackend {
  shared ??= createWasmBackend();
  return shared;
}

const K = Object.fromEntries(RANGE_KERNELS.map((name, i) => [name, i])) as Record<(typeof RANGE_KERNELS)[number], number>;

/** Smallest amounts of work worth a thread: element-wise units, and flops for products. */
const GRAIN_CHEAP = 1 << 16;
const GRAIN_TRANSCENDENTAL = 1 << 12;
const PARALLEL_FLOPS = 1 << 21;

const SIMD_UNARY = new Set<UnaryOp>(['neg', 'abs', 'sqrt', 'rsqrt', 'relu', 'step', 'sign']);

class WasmBackendImpl implements WasmBackend {
  readonly name = 'wasm';
  readonly threads: number;
  readonly variant: KernelVariant;
  readonly fused: WasmFusedKernels;
  private readonly heap: WasmHeap;
  private readonly ex: KernelExports;
  private readonly c: KernelConstants;
  private readonly pool: WorkerPool;
  private readonly stage: Staging;
  private readonly pb: number; // parameter block offset
  private readonly params: Int32Array;
  private readonly paramsF32: Float32Array;
  private readonly scratch: number; // matmul packing scratch, one slice per thread
  private readonly scale: number;

  constructor(opts: WasmBackendOptions) {
    const loaded = loadKernels();
    if (!loaded) throw new Error(`wasm backend unavailable: ${whyUnavailable()}`);
    this.variant = loaded.variant;
    this.threads = Math.min(MAX_THREADS, Math.max(1, Math.floor(opts.threads ?? defaultThreads())));
    this.scale = opts.parallelScale ?? 1;
    // The module's static data ends below heapBase; read it from a throwaway instance on a small memory.
    const probe = new WebAssembly.Instance(loaded.module, {
      env: { memory: new WebAssembly.Memory({ initial: 1, maximum: 65536, shared: true }) },
    });
    const base = (probe.exports as unknown as KernelExports).heapBase();
    this.heap = new WasmHeap(base, {
      maxBytes: opts.maxMemoryBytes ?? defaultMaxBytes(), reserveBytes: opts.reserveBytes, sweepBytes: opts.sweepBytes,
    });
    const instance = new WebAssembly.Instance(loaded.module, { env: { memory: this.heap.memory } });
    this.ex = instance.exports as unknown as KernelExports;
    this.c = readConstants(instance.exports, UNARY_OPS, BINARY_OPS);
    this.pb = this.heap.allocBlock(PARAM_BYTES);
    this.scratch = this.heap.allocBlock(this.threads * this.c.MM_SCRATCH_BYTES);
    if (this.pb < 0 || this.scratch < 0) throw new Error('wasm backend: the memory cap is too small for its scratch space');
    this.params = new Int32Array(this.heap.memory.buffer, this.pb, PARAM_BYTES / 4);
    this.paramsF32 = new Float32Array(this.heap.memory.buffer, this.pb, PARAM_BYTES / 4);
    const kernels = RANGE_KERNELS.map((n) => this.ex[n] as RangeKernel);
    this.pool = new WorkerPool(loaded.module, this.heap.memory, kernels, this.threads);
    this.stage = new Staging(this.heap);
    this.fused = {
      softmax: (x, rows, n, out) => this.softmax(x, rows, n, out),
      logSoftmax: (x, rows, n, out) => this.logSoftmax(x, rows, n, out),
      layerNorm: (x, rows, n, weight, bias, eps, out, mean, rstd) => this.layerNorm(x, rows, n, weight, bias, eps, out, mean, rstd),
      attention: (qkv, B, T, C, H, scale, y, p) => this.attention(qkv, B, T, C, H, scale, y, p),
      attentionBackward: (dy, qkv, p, B, T, C, H, scale, dqkv) => this.attentionBackward(dy, qkv, p, B, T, C, H, scale, dqkv),
      layerNormBackward: (x, g, w, mean, rstd, rows, n, dx, gx) => this.layerNormBackward(x, g, w, mean, rstd, rows, n, dx, gx),
      rmsNorm: (x, rows, n, weight, eps, out, rstd) => this.rmsNorm(x, rows, n, weight, eps, out, rstd),
      rmsNormBackward: (x, g, w, rstd, rows, n, dx, gx) => this.rmsNormBackward(x, g, w, rstd, rows, n, dx, gx),
      rope: (x, B, T, H, hs, cos, sin, out, inverse) => this.rope(x, B, T, H, hs, cos, sin, out, inverse),
      siluMul: (gate, up, out, sig) => this.siluMul(gate, up, out, sig),
      siluMulBackward: (g, gate, up, sig, dgate, dup) => this.siluMulBackward(g, gate, up, sig, dgate, dup),
      groupedAttention: (q, k, v, B, Tq, Tk, Hq, Hkv, hs, scale, window, y, p) =>
        this.groupedAttention(q, k, v, { B, Tq, Tk, Hq, Hkv, hs }, scale, window, y, p),
      groupedAttentionBackward: (dy, q, k, v, p, B, Tq, Tk, Hq, Hkv, hs, scale, dq, dk, dv) =>
        this.groupedAttentionBackward(dy, q, k, v, p, { B, Tq, Tk, Hq, Hkv, hs }, scale, dq, dk, dv),
      // The composite's two kernels, into dx (no buffer for the derivative).
      geluTanhBackward: (x, g, dx) => {
        this.unary('gelu_tanh_grad', x, dx);
        this.binary('mul', g, [x.length], dx, [x.length], dx, [x.length]);
      },
      adamw: (w, g, m, v, h) => this.adamw(w, g, m, v, h),
      sumSquares: (x) => this.sumSquares(x),
      // NOTE: int8 weights have no wasm kernel yet; the js reference runs them (the native backend has its own).
      matmulQ8,
    };
  }

  alloc = (n: number): Float32Array => this.heap.alloc(n);

  empty = (n: number): Float32Array => this.heap.alloc(n, false);

  free = (buf: Float32Array): void => this.heap.free(buf);

  memoryStats(): HeapStats {
    return this.heap.stats();
  }

  sweepMemory(): number {
    return this.heap.sweep();
  }

  owns(a: ArrayBufferView): boolean {
    return this.heap.offsetOf(a) >= 0;
  }

  close(): void {
    this.pool.close();
  }

  waitForWorkers(timeoutMs?: number): number {
    return this.pool.waitForWorkers(timeoutMs);
  }

  chunksRun(): number[] {
    return this.pool.chunksRun();
  }

  /** Chunk size for `units` of work: at least `min` (scaled), aiming at a few chunks per thread. */
  private grain(units: number, min: number): number {
    return Math.max(1, Math.ceil(min * this.scale), Math.ceil(units / (this.threads * 4)));
  }

  /** Whether a product of this many flops is worth splitting. */
  private parallelFlops(flops: number): boolean {
    return this.threads > 1 && flops >= PARALLEL_FLOPS * this.scale;
  }

  /**
   * Every kernel call's frame: stage its buffers (`stage` returns their offsets; buffers from elsewhere are
   * copied into scratch blocks), run it and copy staged outputs back; when staging fails (the memory is full)
   * or the kernel cannot take this call (`usable` false), undo the staging and run `fallback` instead.
   */
  private staged<P extends number[]>(stage: (s: Staging) => P, run: (p: P) => void, fallback: () => void,
    usable = true): void {
    const s = this.stage;
    const p = stage(s);
    if (s.failed || !usable) {
      s.release();
      fallback();
      return;
    }
    run(p);
    s.finish();
  }

  unary = (op: UnaryOp, x: Float32Array, out: Float32Array): void => {
    const n = x.length;
    if (n === 0) return;
    this.staged((s) => [s.input(x), s.output(out)], ([px, po]) => {
      this.params.set([this.c.unary[op], px, po]);
      this.pool.run(K.unaryRun, this.pb, n, this.grain(n, SIMD_UNARY.has(op) ? GRAIN_CHEAP : GRAIN_TRANSCENDENTAL));
    }, () => jsBackend.unary(op, x, out));
  };

  binary = (op: BinaryOp, a: Float32Array, aShape: readonly number[], b: Float32Array, bShape: readonly number[],
    out: Float32Array, outShape: readonly number[]): void => {
    const n = out.length;
    if (n === 0) return;
    let m: Merged;
    if (a.length === n && b.length === n) m = { shape: [n], strides: [[1], [1]] };
    else if (b.length === 1 && a.length === n) m = { shape: [n], strides: [[1], [0]] };
    else if (a.length === 1 && b.length === n) m = { shape: [n], strides: [[0], [1]] };
    else m = mergeBroadcast(outShape, [aShape, bShape]);
    this.staged((s) => [s.input(a), s.input(b), s.output(out)], ([pa, pb, po]) => {
      this.writeLayout([this.c.binary[op], pa, pb, po], m);
      this.pool.run(K.binaryRun, this.pb, n, this.grain(n, op === 'pow' ? GRAIN_TRANSCENDENTAL : GRAIN_CHEAP));
    }, () => jsBackend.binary(op, a, aShape, b, bShape, out, outShape), m.shape.length <= this.c.MAX_RANK);
  };

  where = (cond: Float32Array, cShape: readonly number[], a: Float32Array, aShape: readonly number[],
    b: Float32Array, bShape: readonly number[], out: Float32Array, outShape: readonly number[]): void => {
    const n = out.length;
    if (n === 0) return;
    const m = mergeBroadcast(outShape, [cShape, aShape, bShape]);
    this.staged((s) => [s.input(cond), s.input(a), s.input(b), s.output(out)], ([pc, pa, pb, po]) => {
      this.writeLayout([po, pc, pa, pb], m);
      this.pool.run(K.whereRun, this.pb, n, this.grain(n, GRAIN_CHEAP));
    }, () => jsBackend.where(cond, cShape, a, aShape, b, bShape, out, outShape), m.shape.length <= this.c.MAX_RANK);
  };

  reduce = (op: ReduceOp, x: Float32Array, layout: AxisLayout, out: Float32Array): void => {
    this.reduceLike(op === 'sum' ? this.c.R_SUM : this.c.R_MAX, x, layout, out, () => jsBackend.reduce(op, x, layout, out));
  };

  argmax = (x: Float32Array, layout: AxisLayout, idx: Int32Array): void => {
    this.reduceLike(this.c.R_ARGMAX, x, layout, idx, () => jsBackend.argmax(x, layout, idx));
  };

  gather = (x: Float32Array, layout: AxisLayout, idx: Int32Array, out: Float32Array): void => {
    const { outer, n, inner } = layout;
    if (outer * inner === 0) return;
    this.staged((s) => [s.input(x), s.input(idx), s.output(out)],
      ([px, pi, po]) => this.ex.gather(px, outer, n, inner, pi, po), () => jsBackend.gather(x, layout, idx, out));
  };

  scatterAdd = (g: Float32Array, layout: AxisLayout, idx: Int32Array, out: Float32Array): void => {
    const { outer, n, inner } = layout;
    if (outer * inner === 0) return;
    this.staged((s) => [s.input(g), s.input(idx), s.output(out, true)],
      ([pg, pi, po]) => this.ex.scatterAdd(pg, outer, n, inner, pi, po), () => jsBackend.scatterAdd(g, layout, idx, out));
  };

  matmul = (a: Float32Array, b: Float32Array, out: Float32Array, args: MatmulArgs): void => {
    const { batch, M, K: depth, N } = args;
    if (batch * M * N === 0) return;
    if (depth === 0) {
      out.fill(0);
      return;
    }
    this.staged((s) => [s.input(a), s.input(b), s.output(out)], ([pa, pb, pc]) => {
      if (M === 1 || N === 1) this.gemv(pa, pb, pc, args);
      else this.tiled(pa, pb, pc, args);
    }, () => jsBackend.matmul(a, b, out, args));
  };

  permute = (x: Float32Array, shape: readonly number[], perm: readonly number[], out: Float32Array): void => {
    const n = x.length;
    if (n === 0) return;
    const m = mergePermute(shape, perm);
    const [str] = m.strides;
    const rank = m.shape.length;
    if (rank === 1) {
      out.set(x); // the permutation only moved size-1 dimensions
      return;
    }
    // (B, R, C) -> (B, C, R): tiled transpose.
    const R = m.shape[rank - 1];
    const C = m.shape[rank - 2];
    const isTranspose = (rank === 2 || (rank === 3 && str[0] === R * C)) && str[rank - 2] === 1 && str[rank - 1] === C;
    this.staged((s) => [s.input(x), s.output(out)], ([px, po]) => {
      if (isTranspose) {
        const B = rank === 3 ? m.shape[0] : 1;
        this.params.set([px, po, B, R, C]);
        const units = B * Math.ceil(R / this.c.T_TILE);
        this.pool.run(K.transposeRun, this.pb, units, this.grain(units, Math.ceil(GRAIN_CHEAP / (this.c.T_TILE * C))));
      } else {
        this.writeLayout([px, po, 0, 0], m);
        this.pool.run(K.permuteRun, this.pb, n, this.grain(n, GRAIN_CHEAP));
      }
    }, () => jsBackend.permute(x, shape, perm, out), rank <= this.c.MAX_RANK);
  };

  copyAxis = (src: Float32Array, srcN: number, srcStart: number, dst: Float32Array, dstN: number, dstStart: number,
    outer: number, len: number, inner: number): void => {
    const ps = this.heap.offsetOf(src);
    const pd = this.heap.offsetOf(dst);
    if (ps < 0 || pd < 0) {
      // Typed-array copies work between any buffers.
      jsBackend.copyAxis(src, srcN, srcStart, dst, dstN, dstStart, outer, len, inner);
      return;
    }
    this.ex.copyAxis(ps, srcN, srcStart, pd, dstN, dstStart, outer, len, inner);
  };

  gatherRows = (table: Float32Array, dim: number, ids: Int32Array, out: Float32Array): void => {
    if (ids.length === 0 || dim === 0) return;
    this.staged((s) => [s.input(table), s.input(ids), s.output(out)],
      ([pt, pi, po]) => this.ex.gatherRows(pt, Math.floor(table.length / dim), dim, pi, ids.length, po),
      () => jsBackend.gatherRows(table, dim, ids, out));
  };

  scatterAddRows = (g: Float32Array, dim: number, ids: Int32Array, out: Float32Array): void => {
    if (ids.length === 0 || dim === 0) return;
    this.staged((s) => [s.input(g), s.input(ids), s.output(out, true)],
      ([pg, pi, po]) => this.ex.scatterAddRows(pg, dim, pi, ids.length, po, Math.floor(out.length / dim)),
      () => jsBackend.scatterAddRows(g, dim, ids, out));
  };

  private softmax(x: Float32Array, rows: number, n: number, out: Float32Array): void {
    this.rowKernel(K.softmaxRun, x, rows, n, out, () => softmaxReference(x, rows, n, out, false));
  }

  private logSoftmax(x: Float32Array, rows: number, n: number, out: Float32Array): void {
    this.rowKernel(K.logSoftmaxRun, x, rows, n, out, () => softmaxReference(x, rows, n, out, true));
  }

  /** A kernel over rows of x (rows, n) into out; block [x, out, rows, n]. */
  private rowKernel(kernel: number, x: Float32Array, rows: number, n: number, out: Float32Array,
    fallback: () => void): void {
    if (rows * n === 0) return;
    this.staged((s) => [s.input(x), s.output(out)], ([px, po]) => {
      this.params.set([px, po, rows, n]);
      this.pool.run(kernel, this.pb, rows, this.grain(rows, Math.ceil(GRAIN_TRANSCENDENTAL / n)));
    }, fallback);
  }

  private layerNorm(x: Float32Array, rows: number, n: number, weight: Float32Array | null, bias: Float32Array | null,
    eps: number, out: Float32Array, mean?: Float32Array, rstd?: Float32Array): void {
    if (rows * n === 0) return;
    this.staged((s) => [s.input(x), s.output(out), weight ? s.input(weight) : 0, bias ? s.input(bias) : 0,
      mean ? s.output(mean) : 0, rstd ? s.output(rstd) : 0], ([px, po, pw, pbias, pm, pr]) => {
      this.params.set([px, po, rows, n, pw, pbias, 0, pm, pr]);
      this.paramsF32[6] = eps;
      this.pool.run(K.layerNormRun, this.pb, rows, this.grain(rows, Math.ceil(GRAIN_CHEAP / n)));
    }, () => layerNormReference(x, rows, n, weight, bias, eps, out, mean, rstd));
  }

  private reduceLike(code: number, x: Float32Array, layout: AxisLayout, out: Float32Array | Int32Array,
    fallback: () => void): void {
    const { outer, n, inner } = layout;
    if (outer * inner === 0) return;
    this.staged((s) => [s.input(x), s.output(out)], ([px, po]) => {
      this.params.set([code, px, po, outer, n, inner]);
      const units = inner === 1 ? outer : outer * Math.ceil(inner / this.c.COL_BLOCK);
      const perUnit = Math.max(1, n * (inner === 1 ? 1 : this.c.COL_BLOCK));
      this.pool.run(K.reduceRun, this.pb, units, this.grain(units, Math.ceil(GRAIN_CHEAP / perUnit)));
    }, fallback);
  }

  /** Parameter block of a broadcast or permutation kernel: four header slots, then rank, shape, strides. */
  private writeLayout(head: number[], m: Merged): void {
    const { P_RANK, P_SHAPE, MAX_RANK } = this.c;
    const p = this.params;
    p.set(head);
    p[P_RANK] = m.shape.length;
    p.set(m.shape, P_SHAPE);
    m.strides.forEach((st, k) => p.set(st, P_SHAPE + (k + 1) * MAX_RANK));
  }

  /** M == 1 or N == 1: stream the matrix once against the vector. */
  private gemv(pa: number, pb: number, pc: number, args: MatmulArgs): void {
    const { batch, M, K: depth, N, transA, transB, aBatchStride, bBatchStride } = args;
    let mode: number;
    let J: number;
    let ldw: number;
    let v: number;
    let w: number;
    let vStride: number;
    let wStride: number;
    if (N === 1) {
      // y (M) = A v with v = B's single column (contiguous either way).
      [v, vStride, w, wStride, J] = [pb, bBatchStride, pa, aBatchStride, M];
      mode = transA ? this.c.MM_GEMV_STREAM : this.c.MM_GEMV_DOT;
      ldw = transA ? M : depth;
    } else {
      // y (N) = v B with v = A's single row.
      [v, vStride, w, wStride, J] = [pa, aBatchStride, pb, bBatchStride, N];
      mode = transB ? this.c.MM_GEMV_DOT : this.c.MM_GEMV_STREAM;
      ldw = transB ? depth : N;
    }
    const parallel = this.parallelFlops(2 * batch * J * depth);
    const jChunksWanted = parallel ? this.threads * 4 : 1;
    const jc = Math.max(32, Math.ceil(J / jChunksWanted / 32) * 32);
    const jChunks = Math.ceil(J / jc);
    this.params.set([mode, v, w, pc, depth, J, ldw, 0, 0, vStride, wStride, batch, 0, jc, 0, jChunks]);
    const units = batch * jChunks;
    this.pool.run(K.matmulRun, this.pb, units, parallel ? 1 : units);
  }

  /** The packed, register-tiled product of plain (contiguous, batch-strided) operands. */
  private tiled(pa: number, pb: number, pc: number, args: MatmulArgs): void {
    const { batch, M, K: depth, N, transA, transB, aBatchStride, bBatchStride } = args;
    this.strided(pa, pb, pc, {
      batch, heads: 1, M, K: depth, N, transA, transB, lda: transA ? M : depth, ldb: transB ? depth : N, ldc: N,
      aBatch: aBatchStride, bBatch: bBatchStride, cBatch: M * N, aHead: 0, bHead: 0, cHead: 0,
    });
  }

  /**
   * The packed, register-tiled product over strided operands, chunked over (item, row block, column block).
   * Items are batch x heads; operand rows are ld elements apart (pointers are byte offsets in the heap).
   */
  private strided(pa: number, pb: number, pc: number, g: StridedMatmul): void {
    const { batch, heads, M, K: depth, N } = g;
    const items = batch * heads;
    const parallel = this.parallelFlops(2 * items * M * N * depth);
    let mc = Math.min(M, 128);
    let nc = Math.min(Math.ceil(N / 16) * 16, 512);
    if (parallel) {
      const want = this.threads * 3;
      while (items * Math.ceil(M / mc) * Math.ceil(N / nc) < want) {
        if (nc > 128) nc = Math.ceil(nc / 32) * 16;
        else if (mc > 32) mc = Math.ceil(mc / 4) * 2;
        else break;
      }
    }
    mc = Math.min(mc, this.c.MM_MC_MAX);
    nc = Math.min(nc, this.c.MM_NC_MAX);
    const mChunks = Math.ceil(M / mc);
    const nChunks = Math.ceil(N / nc);
    this.params.set([this.c.MM_TILED, pa, pb, pc, M, depth, N, g.transA ? 1 : 0, g.transB ? 1 : 0, g.aBatch, g.bBatch,
      items, mc, nc, mChunks, nChunks, this.scratch, this.c.MM_SCRATCH_BYTES, g.lda, g.ldb, g.ldc, heads, g.aHead,
      g.bHead, g.cHead, g.cBatch, g.accumulate ? 1 : 0, g.bHeadDiv ?? 1]);
    const units = items * mChunks * nChunks;
    this.pool.run(K.matmulRun, this.pb, units, parallel ? 1 : units);
  }

  private layerNormBackward(x: Float32Array, g: Float32Array, weight: Float32Array | null, mean: Float32Array,
    rstd: Float32Array, rows: number, n: number, dx: Float32Array, gxhat: Float32Array | null): void {
    if (rows * n === 0) return;
    this.staged((s) => [s.input(x), s.input(g), weight ? s.input(weight) : 0, s.input(mean), s.input(rstd), s.output(dx),
      gxhat ? s.output(gxhat) : 0], ([px, pg, pw, pm, pr, pd, pgx]) => {
      this.params.set([px, pg, rows, n, pw, pm, pr, pd, pgx]);
      this.pool.run(K.layerNormBackRun, this.pb, rows, this.grain(rows, Math.ceil(GRAIN_CHEAP / n)));
    }, () => layerNormBackwardReference(x, g, weight, mean, rstd, rows, n, dx, gxhat));
  }

  private adamw(w: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, h: AdamWScalars): void {
    const n = w.length;
    if (n === 0) return;
    this.staged((s) => [s.input(g), s.output(w, true), s.output(m, true), s.output(v, true)], ([pg, pw, pm, pv]) => {
      this.params.set([pw, pg, pm, pv, n]);
      this.paramsF32.set([h.decay, h.beta1, 1 - h.beta1, h.beta2, 1 - h.beta2, h.bc2Sqrt, h.eps, h.stepSize], 5);
      this.pool.run(K.adamwRun, this.pb, n, this.grain(n, GRAIN_CHEAP));
    }, () => adamwUpdate(w, g, m, v, h), g.length === n && m.length === n && v.length === n);
  }

  private sumSquares(x: Float32Array): number {
    const n = x.length;
    if (n === 0) return 0;
    const chunk = 1 << 14;
    const units = Math.ceil(n / chunk);
    const out = this.heap.allocBlock(units * 8); // per-chunk float64 partial sums
    let total = 0;
    this.staged((s) => [s.input(x)], ([px]) => {
      this.params.set([px, n, chunk, out]);
      this.pool.run(K.sumSqRun, this.pb, units, this.grain(units, 4));
      const partial = new Float64Array(this.heap.memory.buffer, out, units);
      for (let u = 0; u < units; u++) total += partial[u];
    }, () => {
      total = sumSquares(x);
    }, out >= 0);
    if (out >= 0) this.heap.freeBlock(out);
    return total;
  }

  /**
   * Rows of attention scores (rows, Tk) through a causal-softmax kernel; row r is query r % Tq of the last Tq
   * positions, seeing at most `window` keys (0: all); exp32 takes e^x in float32 (the forward kernel only).
   * Block [a, b, rows, Tq, scale, Tk, window, exp32].
   */
  private causalRows(kernel: number, a: number, b: number, rows: number, Tq: number, scale: number, Tk = Tq,
    window = 0, exp32 = false): void {
    this.params.set([a, b, rows, Tq, 0, Tk, window, exp32 ? 1 : 0]);
    this.paramsF32[4] = scale;
    this.pool.run(kernel, this.pb, rows, this.grain(rows, Math.ceil(GRAIN_TRANSCENDENTAL / Tk)));
  }

  private attention(qkv: Float32Array, B: number, T: number, C: number, H: number, scale: number, y: Float32Array,
    p: Float32Array): void {
    if (B * T * C === 0) return;
    const D = C / H;
    const row = 3 * C;
    this.staged((s) => [s.input(qkv), s.output(y), s.output(p)], ([pq, py, pp]) => {
      // S = Q K^T into p, then the causal softmax in place.
      this.strided(pq, pq + 4 * C, pp, { batch: B, heads: H, M: T, K: D, N: T, transA: false, transB: true, lda: row,
        ldb: row, ldc: T, aBatch: T * row, aHead: D, bBatch: T * row, bHead: D, cBatch: H * T * T, cHead: T * T });
      this.causalRows(K.causalSoftmaxRun, pp, pp, B * H * T, T, scale);
      // y = P V, written head by head into the merged (B, T, C) layout.
      this.strided(pp, pq + 8 * C, py, { batch: B, heads: H, M: T, K: T, N: D, transA: false, transB: false, lda: T,
        ldb: row, ldc: C, aBatch: H * T * T, aHead: T * T, bBatch: T * row, bHead: D, cBatch: T * C, cHead: D });
    }, () => attentionReference(qkv, B, T, C, H, scale, y, p));
  }

  private attentionBackward(dy: Float32Array, qkv: Float32Array, p: Float32Array, B: number, T: number, C: number,
    H: number, scale: number, dqkv: Float32Array): void {
    if (B * T * C === 0) return;
    const ds = this.heap.allocBlock(B * H * T * T * 4); // dP, then dS
    this.staged((s) => [s.input(dy), s.input(qkv), s.input(p), s.output(dqkv)], ([pdy, pq, pp, pd]) => {
      this.attentionGradients(pdy, pq, pp, pd, ds, B, T, C, H, scale);
    }, () => attentionBackwardReference(dy, qkv, p, B, T, C, H, scale, dqkv), ds >= 0);
    if (ds >= 0) this.heap.freeBlock(ds);
  }

  private rmsNorm(x: Float32Array, rows: number, n: number, weight: Float32Array | null, eps: number, out: Float32Array,
    rstd?: Float32Array): void {
    if (rows * n === 0) return;
    this.staged((s) => [s.input(x), s.output(out), weight ? s.input(weight) : 0, rstd ? s.output(rstd) : 0],
      ([px, po, pw, pr]) => {
        this.params.set([px, po, rows, n, pw, 0, pr]);
        this.paramsF32[5] = eps;
        this.pool.run(K.rmsNormRun, this.pb, rows, this.grain(rows, Math.ceil(GRAIN_CHEAP / n)));
      }, () => rmsNormReference(x, rows, n, weight, eps, out, rstd));
  }

  private rmsNormBackward(x: Float32Array, g: Float32Array, weight: Float32Array | null, rstd: Float32Array,
    rows: number, n: number, dx: Float32Array, gxhat: Float32Array | null): void {
    if (rows * n === 0) return;
    this.staged((s) => [s.input(x), s.input(g), weight ? s.input(weight) : 0, s.input(rstd), s.output(dx),
      gxhat ? s.output(gxhat) : 0], ([px, pg, pw, pr, pd, pgx]) => {
      this.params.set([px, pg, rows, n, pw, pr, pd, pgx]);
      this.pool.run(K.rmsNormBackRun, this.pb, rows, this.grain(rows, Math.ceil(GRAIN_CHEAP / n)));
    }, () => rmsNormBackwardReference(x, g, weight, rstd, rows, n, dx, gxhat));
  }

  private rope(x: Float32Array, B: number, T: number, H: number, hs: number, cos: Float32Array, sin: Float32Array,
    out: Float32Array, inverse: boolean): void {
    const rows = B * T;
    if (rows * H * hs === 0) return;
    this.staged((s) => [s.input(x), s.input(cos), s.input(sin), s.output(out)], ([px, pc, ps, po]) => {
      this.params.set([px, po, rows, T, H, hs, pc, ps, inverse ? 1 : 0]);
      this.pool.run(K.ropeRun, this.pb, rows, this.grain(rows, Math.ceil(GRAIN_CHEAP / (H * hs))));
    }, () => ropeReference(x, B, T, H, hs, cos, sin, out, inverse));
  }

  private siluMul(gate: Float32Array, up: Float32Array, out: Float32Array, sig?: Float32Array): void {
    const n = out.length;
    if (n === 0) return;
    this.staged((s) => [s.input(gate), s.input(up), s.output(out), sig ? s.output(sig) : 0], ([pg, pu, po, ps]) => {
      this.params.set([pg, pu, po, ps]);
      this.pool.run(K.siluMulRun, this.pb, n, this.grain(n, GRAIN_TRANSCENDENTAL));
    }, () => siluMulReference(gate, up, out, sig), gate.length === n && up.length === n);
  }

  private siluMulBackward(g: Float32Array, gate: Float32Array, up: Float32Array, sig: Float32Array,
    dgate: Float32Array | null, dup: Float32Array | null): void {
    const n = g.length;
    if (n === 0 || (!dgate && !dup)) return;
    this.staged((s) => [s.input(g), s.input(gate), s.input(up), s.input(sig), dgate ? s.output(dgate) : 0,
      dup ? s.output(dup) : 0], ([pg, px, pu, ps, pdg, pdu]) => {
      this.params.set([pg, px, pu, ps, pdg, pdu]);
      this.pool.run(K.siluMulBackRun, this.pb, n, this.grain(n, GRAIN_CHEAP));
    }, () => siluMulBackwardReference(g, gate, up, sig, dgate, dup), gate.length === n && up.length === n);
  }

  /**
   * Grouped attention, in blocks of query rows: block [r0, r1) sees keys [s, e) only (the causal mask's end and
   * the sliding window's start), so the products skip the masked keys (about half of them at Tq = Tk) instead of
   * computing scores the mask then zeroes. Each product runs over (batch, query head) items, query head h reading
   * key/value head h / group in place (bHeadDiv).
   */
  private groupedAttention(q: Float32Array, k: Float32Array, v: Float32Array, d: GroupedShape, scale: number,
    window: number, y: Float32Array, p: Float32Array): void {
    const { B, Tq, Tk, Hq, Hkv, hs } = d;
    if (B * Tq * Hq * hs === 0) return;
    this.staged((s) => [s.input(q), s.input(k), s.input(v), s.output(y), s.output(p)], ([pq, pk, pv, py, pp]) => {
      const group = Hq / Hkv;
      const [Cq, Ck, TT] = [Hq * hs, Hkv * hs, Tq * Tk];
      const blocks = causalBlocks(Tq, Tk, window);
      const kv = { ldb: Ck, bBatch: Tk * Ck, bHead: hs, bHeadDiv: group };
      for (const { r0, r1, s: k0, e: k1 } of blocks) {
        // S[r0:r1, k0:k1] = Q K^T
        this.strided(pq + 4 * r0 * Cq, pk + 4 * k0 * Ck, pp + 4 * (r0 * Tk + k0), { batch: B, heads: Hq, M: r1 - r0, K: hs,
          N: k1 - k0, transA: false, transB: true, lda: Cq, aBatch: Tq * Cq, aHead: hs, ...kv, ldc: Tk, cBatch: Hq * TT,
          cHead: TT });
      }
      // NOTE: e^x in float32 here: a third of this kernel's time went to float64 exponentials.
      this.causalRows(K.causalSoftmaxRun, pp, pp, B * Hq * Tq, Tq, scale, Tk, window, true);
      for (const { r0, r1, s: k0, e: k1 } of blocks) {
        // y[r0:r1] = P[r0:r1, k0:k1] V[k0:k1], written into the merged (B, Tq, Hq*hs) layout
        this.strided(pp + 4 * (r0 * Tk + k0), pv + 4 * k0 * Ck, py + 4 * r0 * Cq, { batch: B, heads: Hq, M: r1 - r0,
          K: k1 - k0, N: hs, transA: false, transB: false, lda: Tk, aBatch: Hq * TT, aHead: TT, ...kv, ldc: Cq,
          cBatch: Tq * Cq, cHead: hs });
      }
    }, () => groupedAttentionReference(q, k, v, B, Tq, Tk, Hq, Hkv, hs, scale, window, y, p));
  }

  private groupedAttentionBackward(dy: Float32Array, q: Float32Array, k: Float32Array, v: Float32Array, p: Float32Array,
    d: GroupedShape, scale: number, dq: Float32Array, dk: Float32Array, dv: Float32Array): void {
    const { B, Tq, Tk, Hq, hs } = d;
    if (B * Tq * Hq * hs === 0) return;
    const ds = this.heap.allocBlock(B * Hq * Tq * Tk * 4); // dP, then dS
    this.staged((s) => [s.input(dy), s.input(q), s.input(k), s.input(v), s.input(p), s.output(dq), s.output(dk),
      s.output(dv)], ([pdy, pq, pk, pv, pp, pdq, pdk, pdv]) => {
      this.groupedGradients({ pdy, pq, pk, pv, pp, pdq, pdk, pdv, ds }, d, scale, dk.length);
    }, () => groupedAttentionBackwardReference(dy, q, k, v, p, B, Tq, Tk, Hq, d.Hkv, hs, scale, dq, dk, dv), ds >= 0);
    if (ds >= 0) this.heap.freeBlock(ds);
  }

  /**
   * groupedAttentionBackward's products on staged buffers (byte offsets), in the forward's blocks of query rows.
   * dk and dv (nk floats each) sum over every block and every query head of a group, so they start at zero and
   * each product adds into them.
   */
  private groupedGradients(o: Record<'pdy' | 'pq' | 'pk' | 'pv' | 'pp' | 'pdq' | 'pdk' | 'pdv' | 'ds', number>,
    d: GroupedShape, scale: number, nk: number): void {
    const { B, Tq, Tk, Hq, Hkv, hs } = d;
    const group = Hq / Hkv;
    const [Cq, Ck, TT] = [Hq * hs, Hkv * hs, Tq * Tk];
    // NOTE: the window does not matter here: P is zero wherever the mask hid a key, and windowless blocks only
    // skip keys no row of theirs sees, so they are correct (if a little wider than needed).
    const blocks = causalBlocks(Tq, Tk, 0);
    const bytes = this.heap.bytes();
    bytes.fill(0, o.pdk, o.pdk + 4 * nk);
    bytes.fill(0, o.pdv, o.pdv + 4 * nk);
    const at = (r0: number, k0: number, g: number): number => 4 * (g * TT + r0 * Tk + k0); // in scores (B, Hq, Tq, Tk)
    const scores = { lda: Tk, aBatch: Hq * TT, aHead: group * TT };
    const qRows = { ldb: Cq, bBatch: Tq * Cq, bHead: group * hs };
    const kv = { ldb: Ck, bBatch: Tk * Ck, bHead: hs, bHeadDiv: group };
    for (const { r0, r1, s: k0, e: k1 } of blocks) {
      // dP = dY V^T, over (batch, query head) items
      this.strided(o.pdy + 4 * r0 * Cq, o.pv + 4 * k0 * Ck, o.ds + at(r0, k0, 0), { batch: B, heads: Hq, M: r1 - r0,
        K: hs, N: k1 - k0, transA: false, transB: true, lda: Cq, aBatch: Tq * Cq, aHead: hs, ...kv, ldc: Tk,
        cBatch: Hq * TT, cHead: TT });
    }
    // dS = scale * P (dP - sum(dP P)), in place over the keys each row sees, zero elsewhere
    this.causalRows(K.causalSoftmaxBackRun, o.pp, o.ds, B * Hq * Tq, Tq, scale, Tk);
    for (const { r0, r1, s: k0, e: k1 } of blocks) {
      // dQ = dS K, over (batch, query head) items
      this.strided(o.ds + at(r0, k0, 0), o.pk + 4 * k0 * Ck, o.pdq + 4 * r0 * Cq, { batch: B, heads: Hq, M: r1 - r0,
        K: k1 - k0, N: hs, transA: false, transB: false, ...scores, aHead: TT, ...kv, ldc: Cq, cBatch: Tq * Cq,
        cHead: hs });
      // dK += dS^T Q and dV += P^T dY, over (batch, key/value head) items, one position g in the group at a time
      // (the items of one product must not add into the same rows).
      const toKv = { M: k1 - k0, K: r1 - r0, N: hs, ldc: Ck, cBatch: Tk * Ck, cHead: hs, accumulate: true };
      for (let g = 0; g < group; g++) {
        this.strided(o.ds + at(r0, k0, g), o.pq + 4 * (r0 * Cq + g * hs), o.pdk + 4 * k0 * Ck, { batch: B, heads: Hkv,
          transA: true, transB: false, ...scores, ...qRows, ...toKv });
        this.strided(o.pp + at(r0, k0, g), o.pdy + 4 * (r0 * Cq + g * hs), o.pdv + 4 * k0 * Ck, { batch: B, heads: Hkv,
          transA: true, transB: false, ...scores, ...qRows, ...toKv });
      }
    }
  }

  /** attentionBackward's products on staged buffers; ds is scratch for (B, H, T, T) scores. */
  private attentionGradients(pdy: number, pq: number, pp: number, pd: number, ds: number, B: number, T: number,
    C: number, H: number, scale: number): void {
    const D = C / H;
    const row = 3 * C;
    const scores = { aBatch: H * T * T, aHead: T * T };
    const toQkv = { ldc: row, cBatch: T * row, cHead: D };
    // dP = dY V^T
    this.strided(pdy, pq + 8 * C, ds, { batch: B, heads: H, M: T, K: D, N: T, transA: false, transB: true, lda: C,
      ldb: row, ldc: T, aBatch: T * C, aHead: D, bBatch: T * row, bHead: D, cBatch: H * T * T, cHead: T * T });
    // dV = P^T dY
    this.strided(pp, pdy, pd + 8 * C, { batch: B, heads: H, M: T, K: T, N: D, transA: true, transB: false, lda: T,
      ldb: C, ...scores, bBatch: T * C, bHead: D, ...toQkv });
    // dS = scale * P (dP - sum(dP P)), in place
    this.causalRows(K.causalSoftmaxBackRun, pp, ds, B * H * T, T, scale);
    // dQ = dS K, dK = dS^T Q
    this.strided(ds, pq + 4 * C, pd, { batch: B, heads: H, M: T, K: T, N: D, transA: false, transB: false, lda: T,
      ldb: row, ...scores, bBatch: T * row, bHead: D, ...toQkv });
    this.strided(ds, pq, pd + 4 * C, { batch: B, heads: H, M: T, K: T, N: D, transA: true, transB: false, lda: T,
      ldb: row, ...scores, bBatch: T * row, bHead: D, ...toQkv });
  }
}

/** Query rows per block of the grouped attention kernels (fewer rows skip more masked keys, in more calls). */
const CAUSAL_BLOCK = 64;

/**
 * Blocks of query rows [r0, r1) of Tq queries over Tk keys (the last Tq at the queries' positions) and the keys
 * [s, e) some row of each sees: up to the last row's position, from the first row's window start (window 0: none).
 */
function causalBlocks(Tq: number, Tk: number, window: number): { r0: number; r1: number; s: number; e: number }[] {
  const past = Tk - Tq;
  const n = Math.ceil(Tq / CAUSAL_BLOCK);
  const rows = Math.ceil(Tq / n);
  const out = [];
  for (let r0 = 0; r0 < Tq; r0 += rows) {
    const r1 = Math.min(Tq, r0 + rows);
    out.push({ r0, r1, s: window > 0 ? Math.max(0, past + r0 + 1 - window) : 0, e: past + r1 });
  }
  return out;
}

/** A strided product's geometry: items are batch x heads; strides and leading dimensions in elements. */
interface StridedMatmul {
  batch: number;
  heads: number;
  M: number;
  K: number;
  N: number;
  transA: boolean;
  transB: boolean;
  lda: number;
  ldb: number;
  ldc: number;
  aBatch: number;
  bBatch: number;
  cBatch: number;
  aHead: number;
  bHead: number;
  cHead: number;
  accumulate?: boolean; // C += op(A) op(B) instead of C = (default false)
  bHeadDiv?: number; // head h reads B's head floor(h / bHeadDiv) (default 1; grouped-query attention's group)
}

/** A new wasm backend with its own memory and worker threads. */
export function createWasmBackend(opts: WasmBackendOptions = {}): WasmBackend {
  return new WasmBackendImpl(opts);
}
