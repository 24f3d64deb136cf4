// The native backend: C kernels (native/, built by node-gyp at install into build/Release/ajar_native.node) for
// the products, GELU, causal self-attention, the training step's element-wise, reduction, norm, softmax and
// optimizer kernels (./train.ts) and the Llama family's fused kernels (./llama.ts), over a base backend (wasm where it loads, else js) that keeps every other kernel and the buffers.
// The addon is loaded lazily; when it is missing or fails to load, nativeAvailable() is false and says why.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { jsBackend } from '../js/index.js';
import { defaultThreads, getWasmBackend, wasmAvailable } from '../wasm/index.js';
import type { Backend, FusedKernels, MatmulArgs, UnaryOp } from '../../tensor/backend.js';
import { llamaKernels, type LlamaAddon } from './llama.js';
import { trainKernels, type TrainAddon } from './train.js';

/** The addon's exports (native/binding.c, and native/train_binding.c's and llama_binding.c's through TrainAddon, LlamaAddon). */
interface Addon extends TrainAddon, LlamaAddon {
  init(threads: number, isa?: string): { isa: string; threads: number };
  matmul(a: Float32Array, b: Float32Array, out: Float32Array, batch: number, M: number, K: number, N: number,
    transA: boolean, transB: boolean, aBatchStride: number, bBatchStride: number): void;
  unary(op: number, x: Float32Array, out: Float32Array): void;
  attention: FusedKernels['attention'];
  attentionBackward: FusedKernels['attentionBackward'];
  /** native/attention.c's direct loops for a few query rows (decoding steps). */
  groupedAttentionDecode: FusedKernels['groupedAttention'];
  matmulQ8: FusedKernels['matmulQ8'];
  adviseHugePages(view: Float32Array): number;
}

/** Query rows up to which groupedAttention runs attention.c's decoding kernel instead of llama.c's blocked one. */
const DECODE_ROWS = 4;

/** The unary ops the addon has, by its code (native/elementwise.h). */
const NATIVE_UNARY: Partial<Record<UnaryOp, number>> = { gelu_tanh: 0, gelu_tanh_grad: 1 };

export interface NativeBackend extends Backend {
  /** The instruction set the kernels picked for this CPU: avx512, avx2 or generic. */
  readonly isa: string;
  /** Threads a native kernel runs on, the calling thread included. */
  readonly threads: number;
  /** The backend whose kernels run every op the addon lacks (wasm or js). */
  readonly base: Backend;
}

export interface NativeBackendOptions {
  /** Threads per kernel, the calling thread included (default AJAR_THREADS, else the cores, at most 8). */
  threads?: number;
  /** The backend for the ops the addon lacks (default: wasm where it loads, else js). */
  base?: Backend;
  /** Force an instruction set below the CPU's best ('avx2', 'generic'); tests use it. Default AJAR_NATIVE_ISA. */
  isa?: string;
}

/** Where the addon is: AJAR_NATIVE_PATH, else build/Release/ at the package root (seen from dist/src/backends/native/). */
export function nativeAddonPath(): string {
  const env = process.env.AJAR_NATIVE_PATH;
  if (env !== undefined && env !== '') return env;
  return fileURLToPath(new URL('../../../../build/Release/ajar_native.node', import.meta.url));
}

let addon: Addon | null | undefined;
let reason = '';

function loadAddon(): Addon | null {
  if (addon !== undefined) return addon;
  const path = nativeAddonPath();
  addon = null;
  if (!existsSync(path)) {
    reason = `the addon ${path} is not built (npm ci builds it with node-gyp and a C compiler)`;
    return null;
  }
  try {
    addon = createRequire(import.meta.url)(path) as Addon;
  } catch (e) {
    reason = `the addon ${path} did not load: ${(e as Error).message.split('\n')[0]}`;
  }
  return addon;
}

/** Whether the native addon loads here. */
export function nativeAvailable(): boolean {
  return loadAddon() !== null;
}

/** Why nativeAvailable() is false ('' when it is true). */
export function nativeUnavailableReason(): string {
  loadAddon();
  return reason;
}

/** The memories already advised (a wasm base's buffers all lie in one WebAssembly.Memory). */
const advised = new WeakSet<ArrayBufferLike>();

/**
 * Ask for transparent huge pages over the memory the base allocates from (Linux; AJAR_HUGE_PAGES=0 turns it off).
 * NOTE: decoding is bound by reading the weights, and every step's new buffers fault in fresh pages until the
 * heap first reuses freed blocks: with 4 KiB pages GPT-2's steps took some 300 page faults each (costly in a
 * virtual machine) and missed the TLB once a page of weights. Huge pages cut both by 512.
 */
function adviseHugePages(lib: Addon, base: Backend): void {
  if (process.env.AJAR_HUGE_PAGES === '0' || process.platform !== 'linux') return;
  const probe = base.alloc(1);
  if (!advised.has(probe.buffer)) {
    advised.add(probe.buffer);
    lib.adviseHugePages(probe);
  }
  base.free?.(probe);
}

let shared: NativeBackend | undefined;

/** The process-wide native backend with default options (created on first use). */
export function getNativeBackend(): NativeBackend {
  shared ??= createNativeBackend();
  return shared;
}

/**
 * A native backend over `base`. The addon's pool is process-wide, so the last backend created sets its threads
 * and instruction set.
 */
export function createNativeBackend(opts: NativeBackendOptions = {}): NativeBackend {
  const lib = loadAddon();
  if (!lib) throw new Error(`native backend unavailable: ${reason}`);
  const base = opts.base ?? (wasmAvailable() ? getWasmBackend() : jsBackend);
  const isaEnv = process.env.AJAR_NATIVE_ISA;
  const { isa, threads } = lib.init(opts.threads ?? defaultThreads(), opts.isa ?? (isaEnv !== '' ? isaEnv : undefined));

  const matmul = (a: Float32Array, b: Float32Array, out: Float32Array, args: MatmulArgs): void => {
    const { batch, M, K, N, transA, transB, aBatchStride, bBatchStride } = args;
    lib.matmul(a, b, out, batch, M, K, N, transA, transB, aBatchStride, bBatchStride);
  };

  // NOTE: the portable C build of the GELU kernels is slower than wasm's SIMD, so only AVX2 and AVX-512 take them.
  const vectorUnary = isa !== 'generic';
  const unary = (op: UnaryOp, x: Float32Array, out: Float32Array): void => {
    const code = NATIVE_UNARY[op];
    if (code !== undefined && vectorUnary) lib.unary(code, x, out);
    else base.unary(op, x, out);
  };

  const train = trainKernels(lib, base);
  const llama = llamaKernels(lib);
  adviseHugePages(lib, base);

  // NOTE: the native grouped attention is direct loops, written for decoding steps over a KV cache (a few query
  // rows); there the wasm kernel's three pool rounds (scores, softmax, weighted sums) cost more than the work.
  // Longer query blocks (prefill, training) go to llama.c's kernel.
  const blockedGrouped = llama.groupedAttention;
  const groupedAttention: FusedKernels['groupedAttention'] = (q, k, v, B, Tq, Tk, Hq, Hkv, hs, scale, window, y, p) => {
    if (Tq <= DECODE_ROWS) lib.groupedAttentionDecode(q, k, v, B, Tq, Tk, Hq, Hkv, hs, scale, window, y, p);
    else blockedGrouped(q, k, v, B, Tq, Tk, Hq, Hkv, hs, scale, window, y, p);
  };

  // NOTE: every other kernel is the base's own function (the wasm ones are bound arrow functions), so buffers
  // from base.alloc stay where its kernels expect them; the addon reads any Float32Array in place.
  return {
    name: 'native',
    isa,
    threads,
    base,
    alloc: base.alloc,
    empty: base.empty,
    free: base.free,
    unary,
    binary: train.binary,
    where: base.where,
    reduce: train.reduce,
    argmax: base.argmax,
    gather: base.gather,
    scatterAdd: base.scatterAdd,
    matmul,
    permute: base.permute,
    copyAxis: base.copyAxis,
    gatherRows: base.gatherRows,
    scatterAddRows: base.scatterAddRows,
    fused: { ...base.fused, ...train.fused, ...llama, attention: lib.attention, attentionBackward: lib.attentionBackward, groupedAttention, matmulQ8: lib.matmulQ8 },
  };
}
