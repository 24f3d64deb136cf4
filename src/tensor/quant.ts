// Weight-only int8 quantisation in the shape of llama.cpp's Q8_0: a weight W (rows, cols) stored as int8 values q
// and one float32 scale per group of `group` consecutive values along a row, W[r, c] ~ q[r, c] * scale[r, c / group].
// Rows are the layer's outputs, so a matrix-vector product reads each row once, front to back.
import { emptyBuf, getBackend } from './backend.js';
import { AjarError } from './errors.js';
import { linear } from './ops.js';
import { fmtShape, numel, ShapeError, type Shape } from './shape.js';
import { isGradEnabled, Tensor } from './tensor.js';

/** An int8 matrix with group-wise scales: q (rows, cols) int8, scales (rows, cols / group) float32. */
export interface Q8Matrix {
  readonly rows: number; // outputs
  readonly cols: number; // inputs; a multiple of group
  readonly group: number; // Q8_0's block size: 32
  readonly q: Int8Array;
  readonly scales: Float32Array;
}

/** llama.cpp's QK8_0: values per scale. */
export const Q8_GROUP = 32;

/** Whether a (rows, cols) weight can be stored in groups of `group` (every row whole groups). */
export function q8Fits(cols: number, group = Q8_GROUP): boolean {
  return cols > 0 && cols % group === 0;
}

/**
 * Quantise w (rows, cols) row-major as llama.cpp's quantize_row_q8_0_ref does: per group, d = max|w| / 127,
 * q = round(w / d) (halves away from zero), stored d in float32 (Q8_0 stores float16).
 */
export function quantizeQ8(w: Float32Array, rows: number, cols: number, group = Q8_GROUP): Q8Matrix {
  if (!q8Fits(cols, group) || w.length !== rows * cols) {
    throw new Error(`quantizeQ8: a (${rows}, ${cols}) matrix of ${w.length} values does not split into groups of ${group}`);
  }
  const q = new Int8Array(rows * cols);
  const scales = new Float32Array((rows * cols) / group);
  for (let g = 0; g < scales.length; g++) {
    const o = g * group;
    let amax = 0;
    for (let i = 0; i < group; i++) amax = Math.max(amax, Math.abs(w[o + i]));
    const d = Math.fround(amax / 127);
    const id = d !== 0 ? 1 / d : 0;
    scales[g] = d;
    for (let i = 0; i < group; i++) {
      const v = Math.fround(w[o + i] * id);
      // NOTE: C's roundf (halves away from zero); Math.round sends -2.5 to -2.
      q[o + i] = Math.sign(v) * Math.round(Math.abs(v));
    }
  }
  return { rows, cols, group, q, scales };
}

/** The float32 matrix (rows, cols) a Q8Matrix stands for. */
export function dequantizeQ8(m: Q8Matrix, out = new Float32Array(m.rows * m.cols)): Float32Array {
  for (let i = 0; i < out.length; i++) out[i] = m.q[i] * m.scales[Math.floor(i / m.group)];
  return out;
}

/** Rows `ids` of m dequantised into out (ids.length, cols): an embedding lookup in a quantised table. */
export function dequantizeRowsQ8(m: Q8Matrix, ids: Int32Array, out: Float32Array): void {
  const { cols, group } = m;
  for (let r = 0; r < ids.length; r++) {
    const src = ids[r] * cols;
    for (let c = 0; c < cols; c++) out[r * cols + c] = m.q[src + c] * m.scales[(src + c) / group | 0];
  }
}

/** Check that q and scales fit (rows, cols) in groups of `group`; the message names what is wrong, or null. */
export function q8ShapeProblem(m: Q8Matrix): string | null {
  if (!Number.isInteger(m.rows) || !Number.isInteger(m.cols) || m.rows < 1 || !q8Fits(m.cols, m.group)) {
    return `a (${m.rows}, ${m.cols}) matrix does not split into groups of ${m.group}`;
  }
  if (m.q.length !== m.rows * m.cols) return `${m.q.length} int8 values for a (${m.rows}, ${m.cols}) matrix`;
  if (m.scales.length !== (m.rows * m.cols) / m.group) {
    return `${m.scales.length} scales for a (${m.rows}, ${m.cols}) matrix in groups of ${m.group}`;
  }
  return null;
}

/**
 * x (..., K) W^T + b for an int8 weight W (N, K): (..., N). Inference only: no gradient flows through it, so with
 * grad mode on and an input that wants one it refuses (a quantised model is for generate, serve and eval).
 */
export function linearQ8(x: Tensor, w: Q8Matrix, b: Tensor | null): Tensor {
  const K = x.shape[x.rank - 1];
  if (x.rank < 1 || K !== w.cols) {
    throw new ShapeError(`linearQ8: x ${fmtShape(x.shape)} does not end in the weight's ${w.cols} inputs`);
  }
  if (b && b.size !== w.rows) throw new ShapeError(`linearQ8: bias ${fmtShape(b.shape)} does not match ${w.rows} outputs`);
  if (isGradEnabled() && (x.requiresGrad || b?.requiresGrad === true)) {
    throw new AjarError('quantized_inference_only',
      'int8 weights are for inference (generate, serve, eval); train from the float32 model instead');
  }
  const M = x.size / K;
  const be = getBackend();
  const out = emptyBuf(M * w.rows);
  const kernel = be.fused?.matmulQ8;
  if (kernel) {
    kernel(x.data, w.q, w.scales, b ? b.data : null, M, K, w.rows, w.group, out);
  } else {
    // No kernel: the product with the dequantised matrix (the composite), one matrix at a time.
    const full = dequantizeQ8(w);
    be.matmul(x.data, full, out, { batch: 1, M, K, N: w.rows, transA: false, transB: true, aBatchStride: 0, bBatchStride: 0 });
    if (b) be.binary('add', out, [M, w.rows], b.data, [1, w.rows], out, [M, w.rows]);
  }
  return new Tensor(out, [...x.shape.slice(0, -1), w.rows]);
}

/** linearQ8 from primitives: the dequantised weight (N, K) through linear (the fused kernels' oracle). */
export function linearQ8Composite(x: Tensor, w: Q8Matrix, b: Tensor | null): Tensor {
  return linear(x, new Tensor(dequantizeQ8(w), [w.rows, w.cols]), b, { transW: true });
}

/** Rows of a quantised embedding table (V, D) for ids of any shape: (...ids, D), dequantised. No gradient. */
export function embeddingQ8(table: Q8Matrix, ids: Int32Array, idsShape: Shape = [ids.length]): Tensor {
  for (let i = 0; i < ids.length; i++) {
    if (ids[i] < 0 || ids[i] >= table.rows || !Number.isInteger(ids[i])) {
      throw new ShapeError(`embedding: id ${ids[i]} at position ${i} is outside the table of ${table.rows} rows`);
    }
  }
  if (numel(idsShape) !== ids.length) throw new ShapeError(`embedding: ${ids.length} ids do not fill ${fmtShape(idsShape)}`);
  const out = emptyBuf(ids.length * table.cols);
  dequantizeRowsQ8(table, ids, out);
  return new Tensor(out, [...idsShape, table.cols]);
}
