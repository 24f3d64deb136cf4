// The native backend's training kernels (native/train.c): broadcast binary ops, reductions, softmax and
// log-softmax, layer norm and its gradient, GELU's gradient, AdamW and the sum of squares, with the same
// signatures as the reference kernels they replace. Shapes are merged in JavaScript (as the wasm backend does)
// and handed to C in one reused Int32Array, so a call allocates nothing but the merge's small arrays.
import { BINARY_OPS, type AdamWScalars, type AxisLayout, type Backend, type BinaryOp, type FusedKernels,
  type ReduceOp } from '../../tensor/backend.js';
import { numel } from '../../tensor/shape.js';
import { mergeBroadcast } from '../wasm/layout.js';

/** The addon's training exports (native/train_binding.c). */
export interface TrainAddon {
  binary(op: number, a: Float32Array, b: Float32Array, out: Float32Array, dims: Int32Array): void;
  reduce(op: number, x: Float32Array, outer: number, n: number, inner: number, out: Float32Array): void;
  softmax(x: Float32Array, rows: number, n: number, out: Float32Array, log: number): void;
  layerNorm(x: Float32Array, rows: number, n: number, weight: Float32Array | null, bias: Float32Array | null, eps: number,
    out: Float32Array, mean: Float32Array | null, rstd: Float32Array | null): void;
  layerNormBackward(x: Float32Array, g: Float32Array, weight: Float32Array | null, mean: Float32Array, rstd: Float32Array,
    rows: number, n: number, dx: Float32Array, gxhat: Float32Array | null): void;
  geluTanhBackward(x: Float32Array, g: Float32Array, dx: Float32Array): void;
  adamw(w: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, decay: number, beta1: number, beta2: number,
    eps: number, bc2Sqrt: number, stepSize: number): void;
  sumSquares(x: Float32Array): number;
}

/** Most dimensions native/train.h's binary_op takes (BIN_MAX_RANK); deeper merged shapes go to the base. */
const MAX_RANK = 8;
const BINARY_CODE = Object.fromEntries(BINARY_OPS.map((op, i) => [op, i])) as Record<BinaryOp, number>;
const REDUCE_CODE: Record<ReduceOp, number> = { sum: 0, max: 1 };

export type TrainFused = Pick<FusedKernels, 'softmax' | 'logSoftmax' | 'layerNorm' | 'layerNormBackward' |
  'geluTanhBackward' | 'adamw' | 'sumSquares'>;

export interface TrainKernels {
  binary: Backend['binary'];
  reduce: Backend['reduce'];
  fused: TrainFused;
}

export function trainKernels(lib: TrainAddon, base: Backend): TrainKernels {
  // [rank, shape..., a strides..., b strides...], reused by every call.
  const dims = new Int32Array(1 + 3 * MAX_RANK);
  /** A one-dimensional run of n with the given strides. */
  const flat = (n: number, sa: number, sb: number): Int32Array => {
    dims[0] = 1;
    dims[1] = n;
    dims[2] = sa;
    dims[3] = sb;
    return dims;
  };
  /** rows x cols, a read whole and b one row (cols) read again for every row: a linear layer's bias add. */
  const rowBroadcast = (rows: number, cols: number): Int32Array => {
    dims[0] = 2;
    dims[1] = rows;
    dims[2] = cols;
    dims[3] = cols; // a's strides
    dims[4] = 1;
    dims[5] = 0; // b's strides
    dims[6] = 1;
    return dims;
  };
  /** Whether b (shape bShape, of length n) is broadcast along every dimension of outShape but the last. */
  const isLastRow = (bShape: readonly number[], outShape: readonly number[], n: number): boolean => {
    const r = outShape.length;
    if (r < 2 || bShape.length === 0 || bShape[bShape.length - 1] !== outShape[r - 1] || n !== outShape[r - 1]) return false;
    for (let d = 0; d < bShape.length - 1; d++) if (bShape[d] !== 1) return false;
    return true;
  };

  const binary: Backend['binary'] = (op, a, aShape, b, bShape, out, outShape) => {
    const n = numel(outShape);
    if (n === 0) return;
    const code = BINARY_CODE[op];
    if (a.length === n && b.length === n) return lib.binary(code, a, b, out, flat(n, 1, 1));
    if (b.length === 1 && a.length === n) return lib.binary(code, a, b, out, flat(n, 1, 0));
    if (a.length === 1 && b.length === n) return lib.binary(code, a, b, out, flat(n, 0, 1));
    if (a.length === n && isLastRow(bShape, outShape, b.length)) {
      const cols = b.length;
      return lib.binary(code, a, b, out, rowBroadcast(n / cols, cols));
    }
    const m = mergeBroadcast(outShape, [aShape, bShape]);
    const r = m.shape.length;
    if (r > MAX_RANK) return base.binary(op, a, aShape, b, bShape, out, outShape);
    dims[0] = r;
    for (let d = 0; d < r; d++) {
      dims[1 + d] = m.shape[d];
      dims[1 + r + d] = m.strides[0][d];
      dims[1 + 2 * r + d] = m.strides[1][d];
    }
    lib.binary(code, a, b, out, dims);
  };

  const reduce = (op: ReduceOp, x: Float32Array, { outer, n, inner }: AxisLayout, out: Float32Array): void => {
    lib.reduce(REDUCE_CODE[op], x, outer, n, inner, out);
  };

  const fused: TrainFused = {
    softmax: (x, rows, n, out) => lib.softmax(x, rows, n, out, 0),
    logSoftmax: (x, rows, n, out) => lib.softmax(x, rows, n, out, 1),
    layerNorm: (x, rows, n, weight, bias, eps, out, mean, rstd) =>
      lib.layerNorm(x, rows, n, weight, bias, eps, out, mean ?? null, rstd ?? null),
    layerNormBackward: (x, g, weight, mean, rstd, rows, n, dx, gxhat) =>
      lib.layerNormBackward(x, g, weight, mean, rstd, rows, n, dx, gxhat),
    geluTanhBackward: (x, g, dx) => lib.geluTanhBackward(x, g, dx),
    adamw: (w, g, m, v, h: AdamWScalars) => lib.adamw(w, g, m, v, h.decay, h.beta1, h.beta2, h.eps, h.bc2Sqrt, h.stepSize),
    sumSquares: (x) => lib.sumSquares(x),
  };
  return { binary, reduce, fused };
}
