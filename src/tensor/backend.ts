// The Backend contract: the primitive kernels every backend implements over contiguous float32 buffers.
// tensor/ never imports a backend; entry points register one with setBackend().

/** Element-wise unary primitives. The *_grad entries are derivatives used by gradient rules. */
export const UNARY_OPS = [
  'neg', 'exp', 'log', 'sqrt', 'rsqrt', 'tanh', 'sigmoid', 'relu', 'step', 'abs', 'sign',
  'gelu_tanh', 'gelu_erf', 'gelu_tanh_grad', 'gelu_erf_grad',
] as const;
export type UnaryOp = (typeof UNARY_OPS)[number];

/** Element-wise binary primitives with broadcasting. Comparisons return 1 or 0. */
export const BINARY_OPS = ['add', 'sub', 'mul', 'div', 'pow', 'maximum', 'gt', 'lt', 'eq'] as const;
export type BinaryOp = (typeof BINARY_OPS)[number];

export const REDUCE_OPS = ['sum', 'max'] as const;
export type ReduceOp = (typeof REDUCE_OPS)[number];

/** Layout of an axis operation: the tensor seen as (outer, n, inner). */
export interface AxisLayout {
  outer: number;
  n: number;
  inner: number;
}

export interface MatmulArgs {
  batch: number; // number of (M, K) x (K, N) products
  M: number;
  K: number;
  N: number;
  transA: boolean; // A stored (K, M) per batch
  transB: boolean; // B stored (N, K) per batch
  aBatchStride: number; // 0 when A is shared across the batch
  bBatchStride: number;
}

export interface Backend {
  readonly name: string;
  /** A zeroed buffer of n floats that this backend's kernels may read and write. */
  alloc(n: number): Float32Array;
  /**
   * A buffer of n floats whose contents are unspecified, for outputs a kernel overwrites entirely (optional;
   * callers use alloc() when absent). Saves zeroing memory that is about to be written.
   */
  empty?(n: number): Float32Array;
  /**
   * Give back, now, a buffer from alloc()/empty() that nothing will read or write again (optional; without it
   * buffers are reclaimed once collected). The autograd pass uses it for gradients only it can see.
   */
  free?(buf: Float32Array): void;
  unary(op: UnaryOp, x: Float32Array, out: Float32Array): void;
  /** out (outShape) = a op b, with a and b broadcast to outShape (they have outShape's rank). */
  binary(op: BinaryOp, a: Float32Array, aShape: readonly number[], b: Float32Array, bShape: readonly number[],
    out: Float32Array, outShape: readonly number[]): void;
  /** out = cond != 0 ? a : b, all broadcast to outShape (same rank). */
  where(cond: Float32Array, cShape: readonly number[], a: Float32Array, aShape: readonly number[],
    b: Float32Array, bShape: readonly number[], out: Float32Array, outShape: readonly number[]): void;
  /** out (outer, inner) = reduce over n of x (outer, n, inner). */
  reduce(op: ReduceOp, x: Float32Array, layout: AxisLayout, out: Float32Array): void;
  /** idx (outer, inner) = index of the first maximum over n of x (outer, n, inner). */
  argmax(x: Float32Array, layout: AxisLayout, idx: Int32Array): void;
  /** out (outer, inner) = x[o, idx[o, i], i]. */
  gather(x: Float32Array, layout: AxisLayout, idx: Int32Array, out: Float32Array): void;
  /** out (outer, n, inner) += g[o, i] at [o, idx[o, i], i]; indices < 0 are skipped. */
  scatterAdd(g: Float32Array, layout: AxisLayout, idx: Int32Array, out: Float32Array): void;
  /** C = op(A) @ op(B) for each batch; C is (batch, M, N). */
  matmul(a: Float32Array, b: Float32Array, out: Float32Array, args: MatmulArgs): void;
  /** out = x permuted: out dim i is x dim perm[i]. */
  permute(x: Float32Array, shape: readonly number[], perm: readonly number[], out: Float32Array): void;
  /**
   * Copy a block along one axis: dst[o, dstStart + j, i] = src[o, srcStart + j, i] for j < len.
   * Slicing, padding and concatenation are all this one kernel.
   */
  copyAxis(src: Float32Array, srcN: number, srcStart: number, dst: Float32Array, dstN: number, dstStart: number,
    outer: number, len: number, inner: number): void;
  /** out (ids.length, dim) = rows ids of table (rows, dim). */
  gatherRows(table: Float32Array, dim: number, ids: Int32Array, out: Float32Array): void;
  /** out (rows, dim) += g (ids.length, dim) row-wise at ids; ids < 0 are skipped. */
  scatterAddRows(g: Float32Array, dim: number, ids: Int32Array, out: Float32Array): void;
  /** Optional fused kernels; each is checked against its composite by the conformance suite. */
  readonly fused?: Partial<FusedKernels>;
}

/** Speed kernels that are not primitives: each has a composite reference in tensor/ops.ts. */
export interface FusedKernels {
  /** softmax over the last axis of x (rows, n). Composite: ops.softmax's max, sub, exp, sum, div. */
  softmax(x: Float32Array, rows: number, n: number, out: Float32Array): void;
  /** logSoftmax over the last axis of x (rows, n). Composite: max, sub, exp, sum, log, sub. */
  logSoftmax(x: Float32Array, rows: number, n: number, out: Float32Array): void;
  /**
   * layerNorm over the last axis of x (rows, n) with optional weight and bias (n); mean and rstd (rows)
   * receive the statistics. Composite: ops.layerNorm's mean, sub, mul, mean, add, rsqrt, mul, mul, add.
   */
  layerNorm(x: Float32Array, rows: number, n: number, weight: Float32Array | null, bias: Float32Array | null,
    eps: number, out: Float32Array, mean?: Float32Array, rstd?: Float32Array): void;
  /**
   * Causal self-attention over packed projections qkv (B, T, 3C) (q, k, v side by side, as GPT-2's c_attn
   * writes them) with H heads: y (B, T, C), heads merged, and the attention probabilities p (B, H, T, T), zero
   * above the diagonal. Composite: ops.causalSelfAttentionComposite's slices, permutes, matmuls, scale, mask,
   * softmax.
   */
  attention(qkv: Float32Array, B: number, T: number, C: number, H: number, scale: number, y: Float32Array,
    p: Float32Array): void;
  /** attention's gradient: dqkv (B, T, 3C) from dy (B, T, C), qkv and the p it saved. */
  attentionBackward(dy: Float32Array, qkv: Float32Array, p: Float32Array, B: number, T: number, C: number, H: number,
    scale: number, dqkv: Float32Array): void;
  /**
   * layerNorm's gradient over rows of n: dx from x, the upstream g, the weight (or null) and the forward's
   * mean and rstd; gxhat (when given) receives g * xhat, the rows whose column sums are the weight's gradient.
   * Composite: the fused_layer_norm gradient rule in ops.ts.
   */
  layerNormBackward(x: Float32Array, g: Float32Array, weight: Float32Array | null, mean: Float32Array,
    rstd: Float32Array, rows: number, n: number, dx: Float32Array, gxhat: Float32Array | null): void;
  /**
   * rmsNorm over the last axis of x (rows, n) with an optional weight (n); rstd (rows), when given, receives
   * 1 / sqrt(mean(x^2) + eps). Composite: ops.rmsNormComposite's mul, mean, add, rsqrt, mul, mul.
   */
  rmsNorm(x: Float32Array, rows: number, n: number, weight: Float32Array | null, eps: number, out: Float32Array,
    rstd?: Float32Array): void;
  /**
   * rmsNorm's gradient over rows of n: dx from x, the upstream g, the weight (or null) and the forward's rstd;
   * gxhat (when given) receives g * xhat, the rows whose column sums are the weight's gradient.
   * Composite: the fused_rms_norm gradient rule in ops.ts.
   */
  rmsNormBackward(x: Float32Array, g: Float32Array, weight: Float32Array | null, rstd: Float32Array, rows: number,
    n: number, dx: Float32Array, gxhat: Float32Array | null): void;
  /**
   * Rotate-half RoPE over x (B, T, H * hs) with cos, sin (T, hs / 2): out (B, T, H * hs). With inverse the
   * rotation runs backwards (sin negated), which is the forward's gradient with respect to x.
   * Composite: ops.ropeComposite's slices, products, sub, add, concat.
   */
  rope(x: Float32Array, B: number, T: number, H: number, hs: number, cos: Float32Array, sin: Float32Array,
    out: Float32Array, inverse: boolean): void;
  /**
   * SwiGLU's silu(gate) * up, element-wise over equal-sized buffers; sig, when given, receives sigmoid(gate) for
   * the backward pass. Composite: ops.siluMulComposite.
   */
  siluMul(gate: Float32Array, up: Float32Array, out: Float32Array, sig?: Float32Array): void;
  /** siluMul's gradients dgate and dup (either may be null: not wanted) from the upstream g and the forward's sig. */
  siluMulBackward(g: Float32Array, gate: Float32Array, up: Float32Array, sig: Float32Array, dgate: Float32Array | null,
    dup: Float32Array | null): void;
  /**
   * Grouped-query causal attention: q (B, Tq, Hq * hs), k and v (B, Tk, Hkv * hs) with Tk >= Tq (the last Tq keys
   * align with the queries), query head h reading key/value head h / (Hq / Hkv) without copies; window > 0
   * limits each query to its last `window` keys (0: no window). y (B, Tq, Hq * hs), heads merged, and the
   * probabilities p (B, Hq, Tq, Tk), zero where masked. Composite: ops.groupedCausalAttentionComposite.
   */
  groupedAttention(q: Float32Array, k: Float32Array, v: Float32Array, B: number, Tq: number, Tk: number, Hq: number,
    Hkv: number, hs: number, scale: number, window: number, y: Float32Array, p: Float32Array): void;
  /** groupedAttention's gradients dq, dk, dv (shaped as q, k, v) from dy (B, Tq, Hq * hs) and the saved p. */
  groupedAttentionBackward(dy: Float32Array, q: Float32Array, k: Float32Array, v: Float32Array, p: Float32Array,
    B: number, Tq: number, Tk: number, Hq: number, Hkv: number, hs: number, scale: number, dq: Float32Array,
    dk: Float32Array, dv: Float32Array): void;
  /**
   * GELU's (tanh form) gradient: dx = g * gelu_tanh'(x), element-wise over x's length, in one pass.
   * Composite: the gelu_tanh gradient rule's mul(g, gelu_tanh_grad(x)).
   */
  geluTanhBackward(x: Float32Array, g: Float32Array, dx: Float32Array): void;
  /** One AdamW update of w, m, v in place from g. Composite: adamwUpdate in tensor/optim-math.ts. */
  adamw(w: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, h: AdamWScalars): void;
  /** The sum of squares of x, accumulated in float64. Composite: sumSquares in tensor/optim-math.ts. */
  sumSquares(x: Float32Array): number;
  /**
   * A product with a weight-only int8 matrix (tensor/quant.ts, llama.cpp's Q8_0): out (M, N) = x (M, K) W^T + bias,
   * W (N, K) = q (N, K) int8 times scales (N, K / group), one scale per `group` values of a row; bias (N) or null.
   * Composite: quant.ts's linearQ8Composite (dequantise, then linear).
   */
  matmulQ8(x: Float32Array, q: Int8Array, scales: Float32Array, bias: Float32Array | null, M: number, K: number, N: number,
    group: number, out: Float32Array): void;
}

/** The per-step scalars of an AdamW update (see adamwUpdate). */
export interface AdamWScalars {
  decay: number; // 1 - lr * weight_decay, rounded to float32
  beta1: number;
  beta2: number;
  eps: number;
  bc2Sqrt: number; // sqrt(1 - beta2^t)
  stepSize: number; // lr / (1 - beta1^t)
}

let current: Backend | undefined;

export function setBackend(b: Backend): void {
  current = b;
}

export function getBackend(): Backend {
  if (!current) {
    throw new Error('no tensor backend registered: call setBackend() (entry points register the js backend)');
  }
  return current;
}

/** An output buffer a kernel overwrites entirely: unzeroed where the backend offers it (Backend.empty). */
export function emptyBuf(n: number): Float32Array {
  const be = getBackend();
  return be.empty ? be.empty(n) : be.alloc(n);
}

export function hasBackend(): boolean {
  return current !== undefined;
}
