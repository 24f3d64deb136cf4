// The interface of the compiled kernels (asm/): exported functions, the op codes they read from the module's
// globals, and the parameter-block layouts, which must match asm/abi.ts and the kernel files.
import type { BinaryOp, UnaryOp } from '../../tensor/backend.js';

/** A kernel over units [begin, end) of the job described by the parameter block at byte offset p. */
export type RangeKernel = (p: number, tid: number, begin: number, end: number) => void;

export interface KernelExports {
  heapBase(): number;
  unaryRun: RangeKernel;
  binaryRun: RangeKernel;
  whereRun: RangeKernel;
  reduceRun: RangeKernel;
  softmaxRun: RangeKernel;
  logSoftmaxRun: RangeKernel;
  layerNormRun: RangeKernel;
  causalSoftmaxRun: RangeKernel;
  causalSoftmaxBackRun: RangeKernel;
  adamwRun: RangeKernel;
  layerNormBackRun: RangeKernel;
  sumSqRun: RangeKernel;
  rmsNormRun: RangeKernel;
  rmsNormBackRun: RangeKernel;
  ropeRun: RangeKernel;
  siluMulRun: RangeKernel;
  siluMulBackRun: RangeKernel;
  permuteRun: RangeKernel;
  transposeRun: RangeKernel;
  matmulRun: RangeKernel;
  copyAxis(src: number, srcN: number, srcStart: number, dst: number, dstN: number, dstStart: number,
    outer: number, len: number, inner: number): void;
  gather(x: number, outer: number, n: number, inner: number, idx: number, out: number): void;
  scatterAdd(g: number, outer: number, n: number, inner: number, idx: number, out: number): void;
  gatherRows(table: number, rows: number, dim: number, ids: number, count: number, out: number): void;
  scatterAddRows(g: number, dim: number, ids: number, count: number, out: number, rows: number): void;
}

/** The kernels that can be split across threads, by index: the worker pool names a job by this index. */
export const RANGE_KERNELS = [
  'unaryRun', 'binaryRun', 'whereRun', 'reduceRun', 'softmaxRun', 'permuteRun', 'transposeRun', 'matmulRun',
  'logSoftmaxRun', 'layerNormRun', 'causalSoftmaxRun', 'causalSoftmaxBackRun',
  'adamwRun', 'sumSqRun', 'layerNormBackRun', 'rmsNormRun', 'rmsNormBackRun', 'ropeRun', 'siluMulRun', 'siluMulBackRun',
] as const;
export type RangeKernelName = (typeof RANGE_KERNELS)[number];

/** Constants the module exports as globals. */
export interface KernelConstants {
  unary: Record<UnaryOp, number>;
  binary: Record<BinaryOp, number>;
  R_SUM: number;
  R_MAX: number;
  R_ARGMAX: number;
  MM_TILED: number;
  MM_GEMV_STREAM: number;
  MM_GEMV_DOT: number;
  MAX_RANK: number;
  P_RANK: number;
  P_SHAPE: number;
  COL_BLOCK: number;
  T_TILE: number;
  MM_MC_MAX: number;
  MM_NC_MAX: number;
  MM_SCRATCH_BYTES: number;
}

function globalValue(exports: WebAssembly.Exports, name: string): number {
  const g = exports[name];
  if (!(g instanceof WebAssembly.Global)) throw new Error(`wasm kernels: missing exported global ${name}`);
  return g.value as number;
}

/** Read the op codes and sizes from an instance's exported globals. */
export function readConstants(exports: WebAssembly.Exports, unaryOps: readonly UnaryOp[],
  binaryOps: readonly BinaryOp[]): KernelConstants {
  const g = (name: string): number => globalValue(exports, name);
  const unary = Object.fromEntries(unaryOps.map((op) => [op, g(`U_${op.toUpperCase()}`)])) as Record<UnaryOp, number>;
  const binary = Object.fromEntries(binaryOps.map((op) => [op, g(`B_${op.toUpperCase()}`)])) as Record<BinaryOp, number>;
  return {
    unary,
    binary,
    R_SUM: g('R_SUM'),
    R_MAX: g('R_MAX'),
    R_ARGMAX: g('R_ARGMAX'),
    MM_TILED: g('MM_TILED'),
    MM_GEMV_STREAM: g('MM_GEMV_STREAM'),
    MM_GEMV_DOT: g('MM_GEMV_DOT'),
    MAX_RANK: g('MAX_RANK'),
    P_RANK: g('P_RANK'),
    P_SHAPE: g('P_SHAPE'),
    COL_BLOCK: g('COL_BLOCK'),
    T_TILE: g('T_TILE'),
    MM_MC_MAX: g('MM_MC_MAX'),
    MM_NC_MAX: g('MM_NC_MAX'),
    MM_SCRATCH_BYTES: g('MM_SCRATCH_BYTES'),
  };
}
