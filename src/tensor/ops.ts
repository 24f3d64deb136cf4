// The primitive ops (each a backend kernel plus one gradient rule in `gradRules`) and the composite ops
// built from them. Composites get autograd and every backend for free; see STYLE.md "Add an op".
import { emptyBuf, getBackend, type BinaryOp, type UnaryOp } from './backend.js';
import { normalFill, Rng, uniformFill } from './random.js';
import {
  broadcastShapes, fmtShape, normAxis, numel, resolveReshape, shapeEq, ShapeError, splitAt, type Shape,
} from './shape.js';
import { installGradRules, isGradEnabled, noGrad, Tensor, type GradNode, type GradRule } from './tensor.js';

// ---------------------------------------------------------------------------------------------
// Construction

export function tensor(values: ArrayLike<number>, shape?: Shape): Tensor {
  const data = getBackend().alloc(values.length);
  data.set(values);
  return new Tensor(data, shape ?? [values.length]);
}

export function full(shape: Shape, value: number): Tensor {
  const data = getBackend().alloc(numel(shape));
  if (value !== 0) data.fill(value);
  return new Tensor(data, shape);
}

export function zeros(shape: Shape): Tensor {
  return full(shape, 0);
}

export function ones(shape: Shape): Tensor {
  return full(shape, 1);
}

export function scalar(value: number): Tensor {
  return full([], value);
}

/** Normal(mean, std) samples from a seeded generator, as torch's normal_ on a float32 tensor draws them. */
export function randn(shape: Shape, rng: Rng, std = 1, mean = 0): Tensor {
  const t = zeros(shape);
  normalFill(t.data, rng, std, mean);
  return t;
}

/** Uniform [0, 1) samples from a seeded generator, as torch.rand draws them (24 bits each). */
export function rand(shape: Shape, rng: Rng): Tensor {
  const t = zeros(shape);
  uniformFill(t.data, rng);
  return t;
}

type Operand = Tensor | number;

function asTensor(x: Operand): Tensor {
  return typeof x === 'number' ? scalar(x) : x;
}

/** Create the result of a primitive and record it in the graph when gradients are wanted. */
function record(op: string, data: Float32Array, shape: Shape, inputs: Tensor[],
  attrs: Record<string, unknown> = {}): Tensor {
  const out = new Tensor(data, shape);
  if (isGradEnabled() && inputs.some((t) => t.requiresGrad)) {
    out.requiresGrad = true;
    out.node = { op, inputs, attrs };
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Primitives

function unaryOp(op: UnaryOp, x: Tensor): Tensor {
  const be = getBackend();
  const out = emptyBuf(x.size);
  be.unary(op, x.data, out);
  return record(op, out, x.shape, [x]);
}

/** Pad a shape with leading ones to a rank. */
function padRank(shape: Shape, rank: number): number[] {
  return [...new Array<number>(rank - shape.length).fill(1), ...shape];
}

function binaryOp(op: BinaryOp, a: Operand, b: Operand): Tensor {
  const ta = asTensor(a);
  const tb = asTensor(b);
  const shape = broadcastShapes(ta.shape, tb.shape, op);
  const be = getBackend();
  const out = emptyBuf(numel(shape));
  be.binary(op, ta.data, padRank(ta.shape, shape.length), tb.data, padRank(tb.shape, shape.length), out, shape);
  return record(op, out, shape, [ta, tb]);
}

export const neg = (x: Tensor): Tensor => unaryOp('neg', x);
export const exp = (x: Tensor): Tensor => unaryOp('exp', x);
export const log = (x: Tensor): Tensor => unaryOp('log', x);
export const sqrt = (x: Tensor): Tensor => unaryOp('sqrt', x);
export const rsqrt = (x: Tensor): Tensor => unaryOp('rsqrt', x);
export const tanh = (x: Tensor): Tensor => unaryOp('tanh', x);
export const sigmoid = (x: Tensor): Tensor => unaryOp('sigmoid', x);
export const relu = (x: Tensor): Tensor => unaryOp('relu', x);
export const abs = (x: Tensor): Tensor => unaryOp('abs', x);

/** GELU: 'tanh' is GPT-2's gelu_new (PyTorch approximate='tanh'); 'erf' is the exact form. */
export function gelu(x: Tensor, approximate: 'tanh' | 'erf' = 'erf'): Tensor {
  return unaryOp(approximate === 'tanh' ? 'gelu_tanh' : 'gelu_erf', x);
}

export const add = (a: Operand, b: Operand): Tensor => binaryOp('add', a, b);
export const sub = (a: Operand, b: Operand): Tensor => binaryOp('sub', a, b);
export const mul = (a: Operand, b: Operand): Tensor => binaryOp('mul', a, b);
export const div = (a: Operand, b: Operand): Tensor => binaryOp('div', a, b);
export const pow = (a: Operand, b: Operand): Tensor => binaryOp('pow', a, b);
export const maximum = (a: Operand, b: Operand): Tensor => binaryOp('maximum', a, b);
/** Comparisons give 1 or 0 and carry no gradient. */
export const gt = (a: Operand, b: Operand): Tensor => binaryOp('gt', a, b).detach();
export const lt = (a: Operand, b: Operand): Tensor => binaryOp('lt', a, b).detach();
export const eq = (a: Operand, b: Operand): Tensor => binaryOp('eq', a, b).detach();

/** cond != 0 ? a : b, broadcast together. */
export function where(cond: Tensor, a: Operand, b: Operand): Tensor {
  const ta = asTensor(a);
  const tb = asTensor(b);
  const shape = broadcastShapes(broadcastShapes(cond.shape, ta.shape, 'where'), tb.shape, 'where');
  const r = shape.length;
  const be = getBackend();
  const out = emptyBuf(numel(shape));
  be.where(cond.data, padRank(cond.shape, r), ta.data, padRank(ta.shape, r), tb.data, padRank(tb.shape, r), out, shape);
  return record('where', out, shape, [cond.detach(), ta, tb], { cond });
}

/** Broadcast x to a larger shape (a copy). */
export function expand(x: Tensor, shape: Shape): Tensor {
  const target = broadcastShapes(x.shape, shape, 'expand');
  if (!shapeEq(target, shape)) throw new ShapeError(`expand: ${fmtShape(x.shape)} cannot expand to ${fmtShape(shape)}`);
  if (shapeEq(x.shape, shape)) return x;
  const be = getBackend();
  const out = emptyBuf(numel(shape));
  const zero = be.alloc(1);
  be.binary('add', x.data, padRank(x.shape, shape.length), zero, padRank([], shape.length), out, shape);
  return record('expand', out, shape, [x]);
}

function reduceOp(op: 'sum' | 'max', x: Tensor, axis: number, keepdim: boolean): Tensor {
  const ax = normAxis(axis, x.rank, op);
  const layout = splitAt(x.shape, ax);
  const shape = keepdim ? x.shape.map((d, i) => (i === ax ? 1 : d)) : x.shape.filter((_, i) => i !== ax);
  const be = getBackend();
  const out = layout.n > 0 ? emptyBuf(layout.outer * layout.inner) : be.alloc(layout.outer * layout.inner);
  be.reduce(op, x.data, layout, out);
  if (op === 'sum') return record('sum', out, shape, [x], { axis: ax });
  const idx = new Int32Array(layout.outer * layout.inner);
  be.argmax(x.data, layout, idx);
  return record('max', out, shape, [x], { axis: ax, idx });
}

/** Sum over one axis, all axes (axis undefined) or a list of axes. */
export function sum(x: Tensor, axis?: number | number[], keepdim = false): Tensor {
  if (axis === undefined) {
    const flat = reshape(x, [x.size]);
    const s = reduceOp('sum', flat, 0, false);
    return keepdim ? reshape(s, x.shape.map(() => 1)) : s;
  }
  const axes = (Array.isArray(axis) ? axis : [axis]).map((a) => normAxis(a, x.rank, 'sum'));
  let out = x;
  for (const a of [...axes].sort((p, q) => q - p)) out = reduceOp('sum', out, a, keepdim);
  return out;
}

/** Maximum over one axis (the gradient flows to the first maximal element, as torch.max(dim)). */
export function max(x: Tensor, axis: number, keepdim = false): Tensor {
  return reduceOp('max', x, axis, keepdim);
}

export interface MatmulOptions {
  transA?: boolean;
  transB?: boolean;
}

/**
 * Batched matrix product. a is (..., M, K) or (..., K, M) with transA; b is (..., K, N) or (..., N, K) with
 * transB. Batch dims must match, or one operand is a plain matrix shared across the batch.
 */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  const transA = opts.transA ?? false;
  const transB = opts.transB ?? false;
  if (a.rank < 2 || b.rank < 2) {
    throw new ShapeError(`matmul: operands must have rank >= 2, got ${fmtShape(a.shape)} and ${fmtShape(b.shape)}`);
  }
  // NOTE: a batched A times a shared 2-D B folds the batch into M: one large product, and the gradient
  // of B is a single product instead of a per-batch sum.
  if (b.rank === 2 && a.rank > 2 && !transA) {
    const lead = a.shape.slice(0, -1);
    const flat = reshape(a, [numel(lead), a.shape[a.rank - 1]]);
    const out2 = matmul(flat, b, opts);
    return reshape(out2, [...lead, out2.shape[1]]);
  }
  const [aR, aC] = a.shape.slice(-2);
  const [bR, bC] = b.shape.slice(-2);
  const M = transA ? aC : aR;
  const K = transA ? aR : aC;
  const Kb = transB ? bC : bR;
  const N = transB ? bR : bC;
  if (K !== Kb) {
    throw new ShapeError(`matmul: inner dimensions differ: ${fmtShape(a.shape)}${transA ? 'ᵀ' : ''} @ ${fmtShape(b.shape)}${transB ? 'ᵀ' : ''}`);
  }
  const aBatch = a.shape.slice(0, -2);
  const bBatch = b.shape.slice(0, -2);
  let batchShape: number[];
  if (aBatch.length === 0) batchShape = [...bBatch];
  else if (bBatch.length === 0 || shapeEq(aBatch, bBatch)) batchShape = [...aBatch];
  else throw new ShapeError(`matmul: batch dimensions differ: ${fmtShape(a.shape)} and ${fmtShape(b.shape)}`);
  const batch = numel(batchShape);
  const be = getBackend();
  const out = emptyBuf(batch * M * N);
  be.matmul(a.data, b.data, out, {
    batch, M, K, N, transA, transB,
    aBatchStride: aBatch.length === 0 ? 0 : M * K,
    bBatchStride: bBatch.length === 0 ? 0 : K * N,
  });
  return record('matmul', out, [...batchShape, M, N], [a, b], { transA, transB });
}

/**
 * x (..., K) @ W + b: W is (K, N), or (N, K) with transW (nn.Linear's layout); b is (N) or null. One primitive
 * (PyTorch's addmm): the bias is added in place into the product, so the layer saves one activation, not two.
 */
export function linear(x: Tensor, w: Tensor, b: Tensor | null, opts: { transW?: boolean } = {}): Tensor {
  const transW = opts.transW ?? false;
  if (w.rank !== 2 || x.rank < 1) {
    throw new ShapeError(`linear: needs x (..., K) and a 2-D weight, got ${fmtShape(x.shape)} and ${fmtShape(w.shape)}`);
  }
  const K = x.shape[x.rank - 1];
  const [wR, wC] = w.shape;
  const N = transW ? wR : wC;
  if ((transW ? wC : wR) !== K) {
    throw new ShapeError(`linear: inner dimensions differ: ${fmtShape(x.shape)} @ ${fmtShape(w.shape)}${transW ? 'ᵀ' : ''}`);
  }
  if (b && (b.rank !== 1 || b.size !== N)) throw new ShapeError(`linear: bias ${fmtShape(b.shape)} does not match ${N} outputs`);
  const M = numel(x.shape.slice(0, -1));
  const be = getBackend();
  const out = emptyBuf(M * N);
  be.matmul(x.data, w.data, out, { batch: 1, M, K, N, transA: false, transB: transW, aBatchStride: 0, bBatchStride: 0 });
  if (b) be.binary('add', out, [M, N], b.data, [1, N], out, [M, N]);
  const inputs = b ? [x, w, b] : [x, w];
  return record('linear', out, [...x.shape.slice(0, -1), N], inputs, { transW });
}

/** Same values, new shape (a view sharing storage). One dimension may be -1. */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const target = resolveReshape(shape, x.size);
  if (shapeEq(target, x.shape)) return x;
  return record('reshape', x.data, target, [x]);
}

/** Reorder dimensions: output dim i is input dim perm[i]. */
export function permute(x: Tensor, perm: readonly number[]): Tensor {
  if (perm.length !== x.rank || [...perm].sort((p, q) => p - q).some((p, i) => p !== i)) {
    throw new ShapeError(`permute: ${JSON.stringify(perm)} is not a permutation of ${x.rank} dimensions`);
  }
  if (perm.every((p, i) => p === i)) return x;
  const be = getBackend();
  const out = emptyBuf(x.size);
  be.permute(x.data, x.shape, perm, out);
  return record('permute', out, perm.map((p) => x.shape[p]), [x], { perm });
}

export function transpose(x: Tensor, d0 = -2, d1 = -1): Tensor {
  const a = normAxis(d0, x.rank, 'transpose');
  const b = normAxis(d1, x.rank, 'transpose');
  const perm = x.shape.map((_, i) => i);
  perm[a] = b;
  perm[b] = a;
  return permute(x, perm);
}

/** x[..., start:end, ...] along one axis (a copy). */
export function slice(x: Tensor, axis: number, start: number, end: number): Tensor {
  const ax = normAxis(axis, x.rank, 'slice');
  const n = x.shape[ax];
  if (!(Number.isInteger(start) && Number.isInteger(end) && start >= 0 && start <= end && end <= n)) {
    throw new ShapeError(`slice: [${start}, ${end}) is outside axis ${ax} of length ${n}`);
  }
  const { outer, inner } = splitAt(x.shape, ax);
  const shape = x.shape.map((d, i) => (i === ax ? end - start : d));
  const be = getBackend();
  const out = emptyBuf(numel(shape));
  be.copyAxis(x.data, n, start, out, end - start, 0, outer, end - start, inner);
  return record('slice', out, shape, [x], { axis: ax, start, n });
}

/** Place x at [start, start + len) of a zero tensor whose axis has length n (slice's adjoint). */
export function pad(x: Tensor, axis: number, start: number, n: number): Tensor {
  const ax = normAxis(axis, x.rank, 'pad');
  const len = x.shape[ax];
  if (start < 0 || start + len > n) throw new ShapeError(`pad: [${start}, ${start + len}) does not fit length ${n}`);
  const { outer, inner } = splitAt(x.shape, ax);
  const shape = x.shape.map((d, i) => (i === ax ? n : d));
  const be = getBackend();
  const out = be.alloc(numel(shape));
  be.copyAxis(x.data, len, 0, out, n, start, outer, len, inner);
  return record('pad', out, shape, [x], { axis: ax, start });
}

/** Join tensors along an axis; all other dims must match. */
export function concat(xs: Tensor[], axis: number): Tensor {
  if (xs.length === 0) throw new ShapeError('concat: no tensors');
  const first = xs[0];
  const ax = normAxis(axis, first.rank, 'concat');
  let n = 0;
  for (const x of xs) {
    if (x.rank !== first.rank || x.shape.some((d, i) => i !== ax && d !== first.shape[i])) {
      throw new ShapeError(`concat: shapes ${fmtShape(first.shape)} and ${fmtShape(x.shape)} differ off axis ${ax}`);
    }
    n += x.shape[ax];
  }
  const { outer, inner } = splitAt(first.shape, ax);
  const shape = first.shape.map((d, i) => (i === ax ? n : d));
  const be = getBackend();
  const out = emptyBuf(numel(shape));
  const starts: number[] = [];
  let at = 0;
  for (const x of xs) {
    starts.push(at);
    be.copyAxis(x.data, x.shape[ax], 0, out, n, at, outer, x.shape[ax], inner);
    at += x.shape[ax];
  }
  return record('concat', out, shape, xs, { axis: ax, starts });
}

/** out[..., i] = x[..., idx[...], i] along one axis; the axis is removed. Indices < 0 give 0 and no gradient. */
export function gatherAxis(x: Tensor, axis: number, idx: Int32Array): Tensor {
  const ax = normAxis(axis, x.rank, 'gatherAxis');
  const layout = splitAt(x.shape, ax);
  if (idx.length !== layout.outer * layout.inner) {
    throw new ShapeError(`gatherAxis: ${idx.length} indices for ${layout.outer * layout.inner} positions of ${fmtShape(x.shape)}`);
  }
  for (let i = 0; i < idx.length; i++) {
    if (idx[i] >= layout.n) throw new ShapeError(`gatherAxis: index ${idx[i]} out of range for axis of length ${layout.n}`);
  }
  const be = getBackend();
  const out = emptyBuf(idx.length);
  be.gather(x.data, layout, idx, out);
  return record('gatherAxis', out, x.shape.filter((_, i) => i !== ax), [x], { axis: ax, idx });
}

/** Rows of an embedding table (V, D) for ids of any shape: result (...ids, D). */
export function embedding(table: Tensor, ids: Int32Array, idsShape: Shape = [ids.length]): Tensor {
  if (table.rank !== 2) throw new ShapeError(`embedding: table must be (V, D), got ${fmtShape(table.shape)}`);
  const [V, D] = table.shape;
  for (let i = 0; i < ids.length; i++) {
    if (ids[i] < 0 || ids[i] >= V || !Number.isInteger(ids[i])) {
      throw new ShapeError(`embedding: id ${ids[i]} at position ${i} is outside the table of ${V} rows`);
    }
  }
  if (numel(idsShape) !== ids.length) throw new ShapeError(`embedding: ${ids.length} ids do not fill ${fmtShape(idsShape)}`);
  const be = getBackend();
  const out = emptyBuf(ids.length * D);
  be.gatherRows(table.data, D, ids, out);
  return record('embedding', out, [...idsShape, D], [table], { ids });
}

// ---------------------------------------------------------------------------------------------
// Gradient rules: one per primitive (STYLE.md rule 2). They run under noGrad.

/** Sum a broadcast gradient back to the shape of the input it came from. */
export function sumTo(g: Tensor, shape: Shape): Tensor {
  if (shapeEq(g.shape, shape)) return g;
  const lead = g.rank - shape.length;
  let out = g;
  if (lead > 0) out = sum(out, Array.from({ length: lead }, (_, i) => i));
  const axes: number[] = [];
  shape.forEach((d, i) => {
    if (d === 1 && out.shape[i] !== 1) axes.push(i);
  });
  if (axes.length > 0) out = sum(out, axes, true);
  return reshape(out, shape);
}

/**
 * acc (rows, dim) += the rows of g (ids.length, dim) summed per id, rounding as `acc + scatterAddRows(g, ids)
 * into zeros` does: the rows of each id are summed first, in order, in a table of the ids that occur (as small as
 * the batch), and each sum is then added to acc once. ids < 0 are skipped.
 */
function scatterAddRowsInto(g: Float32Array, dim: number, ids: Int32Array, acc: Float32Array): void {
  const be = getBackend();
  const slot = new Map<number, number>();
  const local = new Int32Array(ids.length);
  for (let r = 0; r < ids.length; r++) {
    const id = ids[r];
    if (id < 0) {
      local[r] = -1;
      continue;
    }
    let j = slot.get(id);
    if (j === undefined) {
      j = slot.size;
      slot.set(id, j);
    }
    local[r] = j;
  }
  const sums = be.alloc(slot.size * dim); // (distinct ids, dim)
  be.scatterAddRows(g, dim, local, sums);
  be.scatterAddRows(sums, dim, Int32Array.from(slot.keys()), acc);
  be.free?.(sums);
}

const elementwise = (f: (g: Tensor, x: Tensor, out: Tensor) => Tensor): GradRule =>
  (g, out, node) => [f(g, node.inputs[0], out)];

const noGradient: GradRule = (_g, _out, node) => node.inputs.map(() => null);

const rules: Record<string, GradRule> = {
  // unary
  neg: elementwise((g) => neg(g)),
  exp: elementwise((g, _x, y) => mul(g, y)),
  log: elementwise((g, x) => div(g, x)),
  sqrt: elementwise((g, _x, y) => div(g, mul(y, 2))),
  rsqrt: elementwise((g, _x, y) => mul(g, mul(pow(y, 3), -0.5))),
  tanh: elementwise((g, _x, y) => mul(g, sub(1, mul(y, y)))),
  sigmoid: elementwise((g, _x, y) => mul(g, mul(y, sub(1, y)))),
  relu: elementwise((g, x) => mul(g, unaryOp('step', x))),
  abs: elementwise((g, x) => mul(g, unaryOp('sign', x))),
  gelu_tanh: elementwise((g, x) => {
    const kernel = getBackend().fused?.geluTanhBackward;
    if (!kernel || g.size !== x.size) return mul(g, unaryOp('gelu_tanh_grad', x));
    const dx = emptyBuf(x.size);
    kernel(x.data, g.data, dx);
    return new Tensor(dx, x.shape);
  }),
  gelu_erf: elementwise((g, x) => mul(g, unaryOp('gelu_erf_grad', x))),
  step: noGradient,
  sign: noGradient,
  gelu_tanh_grad: noGradient,
  gelu_erf_grad: noGradient,
  // binary
  add: (g, _o, { inputs: [a, b] }) => [sumTo(g, a.shape), sumTo(g, b.shape)],
  sub: (g, _o, { inputs: [a, b] }) => [sumTo(g, a.shape), sumTo(neg(g), b.shape)],
  mul: (g, _o, { inputs: [a, b] }) => [
    a.requiresGrad ? sumTo(mul(g, b), a.shape) : null,
    b.requiresGrad ? sumTo(mul(g, a), b.shape) : null,
  ],
  div: (g, out, { inputs: [a, b] }) => [
    a.requiresGrad ? sumTo(div(g, b), a.shape) : null,
    b.requiresGrad ? sumTo(neg(div(mul(g, out), b)), b.shape) : null,
  ],
  pow: (g, out, { inputs: [a, b] }) => [
    a.requiresGrad ? sumTo(mul(g, mul(b, pow(a, sub(b, 1)))), a.shape) : null,
    b.requiresGrad ? sumTo(mul(g, mul(out, log(a))), b.shape) : null,
  ],
  maximum: (g, _o, { inputs: [a, b] }) => {
    // NOTE: ties split the gradient in half, as PyTorch does for maximum().
    const half = mul(eq(a, b), 0.5);
    const toA = add(gt(a, b), half);
    const toB = add(lt(a, b), half);
    return [sumTo(mul(g, toA), a.shape), sumTo(mul(g, toB), b.shape)];
  },
  gt: noGradient,
  lt: noGradient,
  eq: noGradient,
  where: (g, _o, node) => {
    const [, a, b] = node.inputs;
    const cond = node.attrs.cond as Tensor;
    return [
      null,
      a.requiresGrad ? sumTo(where(cond, g, 0), a.shape) : null,
      b.requiresGrad ? sumTo(where(cond, 0, g), b.shape) : null,
    ];
  },
  expand: (g, _o, { inputs: [x] }) => [sumTo(g, x.shape)],
  sum: (g, _o, node) => {
    const x = node.inputs[0];
    const axis = node.attrs.axis as number;
    const kept = x.shape.map((d, i) => (i === axis ? 1 : d));
    return [expand(reshape(g, kept), x.shape)];
  },
  max: (g, _o, node) => {
    const x = node.inputs[0];
    const layout = splitAt(x.shape, node.attrs.axis as number);
    const be = getBackend();
    const out = be.alloc(x.size);
    be.scatterAdd(g.data, layout, node.attrs.idx as Int32Array, out);
    return [new Tensor(out, x.shape)];
  },
  matmul: (g, _o, node) => {
    const [a, b] = node.inputs;
    const { transA, transB } = node.attrs as { transA: boolean; transB: boolean };
    let da: Tensor | null = null;
    let db: Tensor | null = null;
    if (a.requiresGrad) {
      if (!transA) da = matmul(g, b, { transB: !transB });
      else da = matmul(b, g, { transA: transB, transB: true });
      da = sumTo(da, a.shape);
    }
    if (b.requiresGrad) {
      if (!transB) db = matmul(a, g, { transA: !transA });
      else db = matmul(g, a, { transA: true, transB: transA });
      db = sumTo(db, b.shape);
    }
    return [da, db];
  },
  linear: (g, _o, node) => {
    const [x, w, b] = node.inputs;
    const transW = node.attrs.transW as boolean;
    const K = x.shape[x.rank - 1];
    const N = g.shape[g.rank - 1];
    const M = numel(x.shape.slice(0, -1));
    const g2 = reshape(g, [M, N]);
    const x2 = reshape(x, [M, K]);
    const dx = x.requiresGrad ? reshape(matmul(g2, w, { transB: !transW }), x.shape) : null;
    const dw = w.requiresGrad ? (transW ? matmul(g2, x2, { transA: true }) : matmul(x2, g2, { transA: true })) : null;
    const db = b && b.requiresGrad ? sum(g2, 0) : null;
    return b ? [dx, dw, db] : [dx, dw];
  },
  reshape: (g, _o, { inputs: [x] }) => [reshape(g, x.shape)],
  permute: (g, _o, node) => {
    const perm = node.attrs.perm as number[];
    const inv = new Array<number>(perm.length);
    perm.forEach((p, i) => {
      inv[p] = i;
    });
    return [permute(g, inv)];
  },
  slice: (g, _o, node) => [pad(g, node.attrs.axis as number, node.attrs.start as number, node.attrs.n as number)],
  pad: (g, _o, node) => {
    const x = node.inputs[0];
    const axis = node.attrs.axis as number;
    const start = node.attrs.start as number;
    return [slice(g, axis, start, start + x.shape[axis])];
  },
  concat: (g, _o, node) => {
    const axis = node.attrs.axis as number;
    const starts = node.attrs.starts as number[];
    return node.inputs.map((x, i) => (x.requiresGrad ? slice(g, axis, starts[i], starts[i] + x.shape[axis]) : null));
  },
  gatherAxis: (g, _o, node) => {
    const x = node.inputs[0];
    const layout = splitAt(x.shape, node.attrs.axis as number);
    const be = getBackend();
    const out = be.alloc(x.size);
    be.scatterAdd(g.data, layout, node.attrs.idx as Int32Array, out);
    return [new Tensor(out, x.shape)];
  },
  embedding: (g, _o, node, into) => {
    const table = node.inputs[0];
    const ids = node.attrs.ids as Int32Array;
    const acc = into?.[0];
    if (acc) {
      // A tied table (GPT-2's wte is also the LM head) has its head's gradient pending: add the rows into it
      // rather than into a second table-sized buffer.
      scatterAddRowsInto(g.data, table.shape[1], ids, acc.data);
      return [acc];
    }
    const be = getBackend();
    const out = be.alloc(table.size);
    be.scatterAddRows(g.data, table.shape[1], ids, out);
    return [new Tensor(out, table.shape)];
  },
  cross_entropy: (g, _o, node) => {
    // d loss_i / d logits_i = softmax(logits_i) - onehot(target_i), times row i's weight in the reduction.
    const x = node.inputs[0];
    const { idx, count, reduction } = node.attrs as { idx: Int32Array; count: number; reduction: string };
    const [N, C] = x.shape;
    const p = softmax(x.detach(), -1);
    const w = emptyBuf(N);
    for (let i = 0; i < N; i++) {
      if (idx[i] < 0) {
        w[i] = 0;
        continue;
      }
      p.data[i * C + idx[i]] -= 1;
      w[i] = reduction === 'none' ? g.data[i] : reduction === 'mean' ? g.data[0] / count : g.data[0];
    }
    getBackend().binary('mul', p.data, [N, C], w, [N, 1], p.data, [N, C]);
    return [p];
  },
  // Fused ops (backend speed kernels, see FusedKernels): one rule each, written with composite ops.
  fused_attention: (g, _o, node) => {
    const qkv = node.inputs[0];
    const [B, T, C3] = qkv.shape;
    const { p, nHead, scale } = node.attrs as { p: Float32Array; nHead: number; scale: number };
    const dqkv = emptyBuf(qkv.size);
    getBackend().fused!.attentionBackward!(g.data, qkv.data, p, B, T, C3 / 3, nHead, scale, dqkv);
    return [new Tensor(dqkv, qkv.shape)];
  },
  fused_grouped_attention: (g, _o, node) => {
    const [q, k, v] = node.inputs;
    const { p, nHead, nKvHead, scale } = node.attrs as { p: Float32Array; nHead: number; nKvHead: number; scale: number };
    const [B, Tq, C] = q.shape;
    const Tk = k.shape[1];
    const [dq, dk, dv] = [emptyBuf(q.size), emptyBuf(k.size), emptyBuf(v.size)];
    getBackend().fused!.groupedAttentionBackward!(g.data, q.data, k.data, v.data, p, B, Tq, Tk, nHead, nKvHead, C / nHead,
      scale, dq, dk, dv);
    return [
      q.requiresGrad ? new Tensor(dq, q.shape) : null,
      k.requiresGrad ? new Tensor(dk, k.shape) : null,
      v.requiresGrad ? new Tensor(dv, v.shape) : null,
    ];
  },
  fused_rope: (g, _o, node) => {
    const [x, cos, sin] = node.inputs;
    const nHead = node.attrs.nHead as number;
    const [B, T, C] = x.shape;
    const hs = C / nHead;
    let dx: Tensor | null = null;
    if (x.requiresGrad) {
      // The rotation is orthogonal: its gradient is the rotation backwards.
      dx = new Tensor(emptyBuf(x.size), x.shape);
      getBackend().fused!.rope!(g.data, B, T, nHead, hs, cos.data, sin.data, dx.data, true);
    }
    if (!cos.requiresGrad && !sin.requiresGrad) return [dx, null, null]; // Llama's tables are constants
    // d cos = sum over batch and heads of g1 x1 + g2 x2; d sin of g2 x1 - g1 x2 (each (T, hs/2)).
    const g4 = reshape(g, [B, T, nHead, hs]);
    const x4 = reshape(x.detach(), [B, T, nHead, hs]);
    const [g1, g2] = [slice(g4, 3, 0, hs / 2), slice(g4, 3, hs / 2, hs)];
    const [x1, x2] = [slice(x4, 3, 0, hs / 2), slice(x4, 3, hs / 2, hs)];
    const dcos = cos.requiresGrad ? sum(add(mul(g1, x1), mul(g2, x2)), [0, 2]) : null;
    const dsin = sin.requiresGrad ? sum(sub(mul(g2, x1), mul(g1, x2)), [0, 2]) : null;
    return [dx, dcos, dsin];
  },
  fused_silu_mul: (g, _o, node) => {
    const [gate, up] = node.inputs;
    const dgate = gate.requiresGrad ? emptyBuf(gate.size) : null;
    const dup = up.requiresGrad ? emptyBuf(up.size) : null;
    getBackend().fused!.siluMulBackward!(g.data, gate.data, up.data, node.attrs.sig as Float32Array, dgate, dup);
    return [dgate && new Tensor(dgate, gate.shape), dup && new Tensor(dup, up.shape)];
  },
  fused_rms_norm: (g, _y, node) => {
    const [x, w] = node.inputs as [Tensor, Tensor | undefined];
    const n = x.shape[x.rank - 1];
    const rows = x.size / n;
    const be = getBackend();
    const dx = emptyBuf(x.size);
    const gx = w && w.requiresGrad ? emptyBuf(x.size) : null;
    be.fused!.rmsNormBackward!(x.data, g.data, w ? w.data : null, node.attrs.rstd as Float32Array, rows, n, dx, gx);
    const dw = gx ? sum(new Tensor(gx, [rows, n]), 0) : null;
    if (gx) be.free?.(gx);
    if (!x.requiresGrad) be.free?.(dx);
    const dxt = x.requiresGrad ? new Tensor(dx, x.shape) : null;
    return w ? [dxt, dw] : [dxt];
  },

  fused_softmax: (g, y) => {
    // dx = y * (g - sum(g * y))
    return [mul(y, sub(g, sum(mul(g, y), -1, true)))];
  },
  fused_log_softmax: (g, y) => {
    // dx = g - softmax(x) * sum(g)
    return [sub(g, mul(exp(y), sum(g, -1, true)))];
  },
  fused_layer_norm: (g, _y, node) => {
    const [x, wIn, bIn] = node.inputs;
    const w = node.attrs.hasWeight ? wIn : null;
    const b = node.attrs.hasBias ? bIn : null;
    const n = x.shape[x.rank - 1];
    const rows = x.size / n;
    const kernel = getBackend().fused?.layerNormBackward;
    if (kernel) {
      const dx = emptyBuf(x.size);
      const gx = w && w.requiresGrad ? emptyBuf(x.size) : null;
      kernel(x.data, g.data, w ? w.data : null, node.attrs.mean as Float32Array, node.attrs.rstd as Float32Array,
        rows, n, dx, gx);
      const dw = gx ? sum(new Tensor(gx, [rows, n]), 0) : null;
      if (gx) getBackend().free?.(gx);
      return [x.requiresGrad ? new Tensor(dx, x.shape) : null, dw, b && b.requiresGrad ? sum(reshape(g, [rows, n]), 0) : null];
    }
    const mean = new Tensor(node.attrs.mean as Float32Array, [...x.shape.slice(0, -1), 1]);
    const rstd = new Tensor(node.attrs.rstd as Float32Array, [...x.shape.slice(0, -1), 1]);
    const xhat = mul(sub(x.detach(), mean), rstd); // (..., n)
    const dxhat = w ? mul(g, w.detach()) : g;
    // dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
    const dx = x.requiresGrad
      ? mul(rstd, sub(sub(dxhat, mean2(dxhat)), mul(xhat, mean2(mul(dxhat, xhat)))))
      : null;
    const flat = (t: Tensor): Tensor => reshape(t, [rows, n]);
    const dw = w && w.requiresGrad ? sum(flat(mul(g, xhat)), 0) : null;
    const db = b && b.requiresGrad ? sum(flat(g), 0) : null;
    return [dx, dw, db];
  },
} satisfies Record<UnaryOp | BinaryOp | string, GradRule>;

function mean2(t: Tensor): Tensor {
  return div(sum(t, -1, true), t.shape[t.rank - 1]);
}

installGradRules(rules);

/** The names of all primitives with a gradient rule (the conformance suite checks each is tested). */
export const PRIMITIVES = Object.keys(rules);

// ---------------------------------------------------------------------------------------------
// Composite ops

export function mean(x: Tensor, axis?: number | number[], keepdim = false): Tensor {
  const axes = axis === undefined ? x.shape.map((_, i) => i) : (Array.isArray(axis) ? axis : [axis]);
  const count = axes.reduce((p, a) => p * x.shape[normAxis(a, x.rank, 'mean')], 1);
  return div(sum(x, axis, keepdim), count);
}

/** SiLU (swish): x * sigmoid(x). */
export function silu(x: Tensor): Tensor {
  return mul(x, sigmoid(x));
}

/**
 * A row-wise fused kernel over the last axis (softmax, logSoftmax) when the backend has it and the axis is the
 * last; null otherwise, so the caller falls back to the composite.
 */
function fusedRows(kernel: 'softmax' | 'logSoftmax', op: string, x: Tensor, axis: number): Tensor | null {
  const be = getBackend();
  const fused = be.fused?.[kernel];
  if (!fused || normAxis(axis, x.rank, kernel) !== x.rank - 1 || x.size === 0) return null;
  const n = x.shape[x.rank - 1];
  const out = emptyBuf(x.size);
  fused(x.data, x.size / n, n, out);
  return record(op, out, x.shape, [x]);
}

/** Softmax along an axis, stabilised by the (constant) maximum. */
export function softmax(x: Tensor, axis = -1): Tensor {
  return fusedRows('softmax', 'fused_softmax', x, axis) ?? softmaxComposite(x, axis);
}

/** The composite softmax (the reference the fused kernel is checked against). */
export function softmaxComposite(x: Tensor, axis = -1): Tensor {
  const m = max(x, axis, true).detach();
  const e = exp(sub(x, m));
  return div(e, sum(e, axis, true));
}

export function logSoftmax(x: Tensor, axis = -1): Tensor {
  return fusedRows('logSoftmax', 'fused_log_softmax', x, axis) ?? logSoftmaxComposite(x, axis);
}

/** The composite logSoftmax (the reference the fused kernel is checked against). */
export function logSoftmaxComposite(x: Tensor, axis = -1): Tensor {
  const m = max(x, axis, true).detach();
  const shifted = sub(x, m);
  return sub(shifted, log(sum(exp(shifted), axis, true)));
}

/** Layer norm over the last axis (biased variance, as PyTorch). weight/bias are (D) or null. */
export function layerNorm(x: Tensor, weight: Tensor | null, bias: Tensor | null, eps = 1e-5): Tensor {
  const be = getBackend();
  const fused = be.fused?.layerNorm;
  const n = x.shape[x.rank - 1];
  if (fused && x.size > 0 && (!weight || weight.size === n) && (!bias || bias.size === n)) {
    const rows = x.size / n;
    const out = emptyBuf(x.size);
    const mean = emptyBuf(rows);
    const rstd = emptyBuf(rows);
    fused(x.data, rows, n, weight ? weight.data : null, bias ? bias.data : null, eps, out, mean, rstd);
    // Absent weight/bias are stood in for by constants that take no gradient.
    const inputs = [x, weight ?? scalar(1), bias ?? scalar(0)];
    return record('fused_layer_norm', out, x.shape, inputs, { mean, rstd, hasWeight: weight !== null, hasBias: bias !== null });
  }
  return layerNormComposite(x, weight, bias, eps);
}

/** The composite layer norm (the reference the fused kernel is checked against). */
export function layerNormComposite(x: Tensor, weight: Tensor | null, bias: Tensor | null, eps = 1e-5): Tensor {
  const mu = mean(x, -1, true);
  const xc = sub(x, mu);
  const v = mean(mul(xc, xc), -1, true);
  let y = mul(xc, rsqrt(add(v, eps)));
  if (weight) y = mul(y, weight);
  if (bias) y = add(y, bias);
  return y;
}

/**
 * RMS norm over the last axis (Llama): x / sqrt(mean(x^2) + eps) * weight, weight (D) or null. One primitive on
 * backends with a fused kernel (it keeps only the per-row rstd for backward); the composite otherwise.
 */
export function rmsNorm(x: Tensor, weight: Tensor | null, eps = 1e-6): Tensor {
  const fused = getBackend().fused;
  const n = x.rank > 0 ? x.shape[x.rank - 1] : 0;
  if (fused?.rmsNorm && fused.rmsNormBackward && x.size > 0 && (!weight || (weight.rank === 1 && weight.size === n))) {
    const rows = x.size / n;
    const out = emptyBuf(x.size);
    const rstd = emptyBuf(rows);
    fused.rmsNorm(x.data, rows, n, weight ? weight.data : null, eps, out, rstd);
    return record('fused_rms_norm', out, x.shape, weight ? [x, weight] : [x], { rstd });
  }
  return rmsNormComposite(x, weight, eps);
}

/** The composite RMS norm (the reference the fused kernel is checked against). */
export function rmsNormComposite(x: Tensor, weight: Tensor | null, eps = 1e-6): Tensor {
  const ms = mean(mul(x, x), -1, true);
  const y = mul(x, rsqrt(add(ms, eps)));
  return weight ? mul(y, weight) : y;
}

/**
 * Causal self-attention over packed projections qkv (B, T, 3C) (q, k, v side by side, GPT-2's c_attn layout)
 * with nHead heads and the given score scale: (B, T, C), heads merged. One primitive on backends with a fused
 * kernel (no per-head copies; only the (B, H, T, T) probabilities are kept for backward); the composite
 * otherwise, which is also the reference the kernel is checked against.
 */
export function causalSelfAttention(qkv: Tensor, nHead: number, scale: number): Tensor {
  if (qkv.rank !== 3 || qkv.shape[2] % 3 !== 0 || (qkv.shape[2] / 3) % nHead !== 0) {
    throw new ShapeError(`causalSelfAttention: qkv must be (B, T, 3C) with C divisible by ${nHead} heads, got ${fmtShape(qkv.shape)}`);
  }
  const [B, T, C3] = qkv.shape;
  const C = C3 / 3;
  const kernel = getBackend().fused?.attention;
  if (!kernel || qkv.size === 0) return causalSelfAttentionComposite(qkv, nHead, scale);
  const y = emptyBuf(B * T * C);
  const p = emptyBuf(B * nHead * T * T);
  kernel(qkv.data, B, T, C, nHead, scale, y, p);
  return record('fused_attention', y, [B, T, C], [qkv], { p, nHead, scale });
}

/** causalSelfAttention from primitives: head slices, permutes, scaled scores, the causal mask, softmax. */
export function causalSelfAttentionComposite(qkv: Tensor, nHead: number, scale: number): Tensor {
  const [B, T, C3] = qkv.shape;
  const C = C3 / 3;
  const hs = C / nHead;
  const heads = (i: number): Tensor => permute(reshape(slice(qkv, 2, i * C, (i + 1) * C), [B, T, nHead, hs]), [0, 2, 1, 3]);
  const att = softmax(maskedFill(mul(matmul(heads(0), heads(1), { transB: true }), scale), causalMask(T, T), -Infinity), -1);
  return reshape(permute(matmul(att, heads(2)), [0, 2, 1, 3]), [B, T, C]);
}

/**
 * SwiGLU's gated unit (Llama's MLP before down_proj): silu(gate) * up, both (..., I). One primitive on backends
 * with a fused kernel (one pass; only sigmoid(gate) is kept for backward, and only when a gradient is wanted); the
 * composite otherwise.
 */
export function siluMul(gate: Tensor, up: Tensor): Tensor {
  const fused = getBackend().fused;
  if (fused?.siluMul && fused.siluMulBackward && shapeEq(gate.shape, up.shape) && gate.size > 0) {
    const out = emptyBuf(gate.size);
    const sig = isGradEnabled() && (gate.requiresGrad || up.requiresGrad) ? emptyBuf(gate.size) : undefined;
    fused.siluMul(gate.data, up.data, out, sig);
    return record('fused_silu_mul', out, gate.shape, [gate, up], { sig });
  }
  return siluMulComposite(gate, up);
}

/** siluMul from primitives (the reference the fused kernel is checked against). */
export function siluMulComposite(gate: Tensor, up: Tensor): Tensor {
  return mul(silu(gate), up);
}

/**
 * Rotary position embedding, rotate-half form (Hugging Face's apply_rotary_pos_emb, GPT-NeoX layout) over
 * x (B, T, H * hs) holding H heads per position: each head's halves (x1, x2) become
 * (x1 cos - x2 sin, x2 cos + x1 sin). cos and sin are (T, hs / 2), one row per position of x. One primitive on
 * backends with a fused kernel (it saves nothing for backward: the gradient is the inverse rotation).
 */
export function rope(x: Tensor, nHead: number, cos: Tensor, sin: Tensor): Tensor {
  checkRope(x, nHead, cos, sin);
  const kernel = getBackend().fused?.rope;
  if (!kernel || x.size === 0) return ropeComposite(x, nHead, cos, sin);
  const [B, T, C] = x.shape;
  const out = emptyBuf(x.size);
  kernel(x.data, B, T, nHead, C / nHead, cos.data, sin.data, out, false);
  return record('fused_rope', out, x.shape, [x, cos, sin], { nHead });
}

function checkRope(x: Tensor, nHead: number, cos: Tensor, sin: Tensor): void {
  const ok = x.rank === 3 && x.shape[2] % nHead === 0 && (x.shape[2] / nHead) % 2 === 0;
  const half = ok ? x.shape[2] / nHead / 2 : -1;
  if (!ok || !shapeEq(cos.shape, [x.shape[1], half]) || !shapeEq(sin.shape, cos.shape)) {
    throw new ShapeError(`rope: x must be (B, T, H*hs) with an even hs for ${nHead} heads and cos, sin (T, hs/2); ` +
      `got x ${fmtShape(x.shape)}, cos ${fmtShape(cos.shape)}, sin ${fmtShape(sin.shape)}`);
  }
}

/** rope from primitives (the reference a fused kernel is checked against). */
export function ropeComposite(x: Tensor, nHead: number, cos: Tensor, sin: Tensor): Tensor {
  checkRope(x, nHead, cos, sin);
  const [B, T, C] = x.shape;
  const hs = C / nHead;
  const h2 = hs / 2;
  const x4 = reshape(x, [B, T, nHead, hs]); // (B, T, H, hs)
  const x1 = slice(x4, 3, 0, h2);
  const x2 = slice(x4, 3, h2, hs);
  const c = reshape(cos, [T, 1, h2]);
  const s = reshape(sin, [T, 1, h2]);
  const out = concat([sub(mul(x1, c), mul(x2, s)), add(mul(x2, c), mul(x1, s))], 3); // (B, T, H, hs)
  return reshape(out, [B, T, C]);
}

export interface GroupedAttentionOptions {
  nHead: number; // query heads
  nKvHead: number; // key/value heads; nHead must be a multiple (grouped-query attention, Llama 2 70B / 3)
  scale: number; // score scale, usually 1 / sqrt(hs)
  /** Sliding window (Mistral): query at position p sees keys at p - window + 1 .. p; null for all. */
  window?: number | null;
  /** Applied to the attention probabilities when training (attention dropout). */
  dropout?: (p: Tensor) => Tensor;
}

function checkGrouped(q: Tensor, k: Tensor, v: Tensor, o: GroupedAttentionOptions): void {
  const { nHead, nKvHead } = o;
  const ok = q.rank === 3 && k.rank === 3 && shapeEq(k.shape, v.shape) && nKvHead >= 1 && nHead % nKvHead === 0 &&
    q.shape[0] === k.shape[0] && k.shape[1] >= q.shape[1] && q.shape[2] % nHead === 0 &&
    k.shape[2] === (q.shape[2] / nHead) * nKvHead;
  const w = o.window ?? null;
  if (w !== null && !(Number.isInteger(w) && w >= 1)) {
    throw new ShapeError(`groupedCausalAttention: window must be a positive integer or null, got ${w}`);
  }
  if (!ok) {
    throw new ShapeError(`groupedCausalAttention: q must be (B, Tq, ${nHead}*hs) and k, v (B, Tk >= Tq, ${nKvHead}*hs); ` +
      `got q ${fmtShape(q.shape)}, k ${fmtShape(k.shape)}, v ${fmtShape(v.shape)}`);
  }
}

/**
 * Causal attention with grouped key/value heads: q (B, Tq, Hq*hs), k and v (B, Tk, Hkv*hs), the last Tq keys
 * aligned with the queries (earlier ones come from a KV cache). Query head h reads key/value head
 * h / (Hq / Hkv), as transformers' repeat_kv. Returns (B, Tq, Hq*hs), heads merged. One primitive on backends
 * with a fused kernel (no repeated heads or per-head copies; the (B, Hq, Tq, Tk) probabilities are kept for
 * backward, and dropped at once when no gradient is wanted); the composite otherwise and with attention dropout.
 */
export function groupedCausalAttention(q: Tensor, k: Tensor, v: Tensor, opts: GroupedAttentionOptions): Tensor {
  checkGrouped(q, k, v, opts);
  const be = getBackend();
  const kernel = be.fused?.groupedAttention;
  // NOTE: attention dropout needs the probabilities as a tensor, so it stays on the composite path.
  if (!kernel || !be.fused?.groupedAttentionBackward || opts.dropout || q.size === 0) {
    return groupedCausalAttentionComposite(q, k, v, opts);
  }
  const { nHead, nKvHead, scale } = opts;
  const [B, Tq, C] = q.shape;
  const Tk = k.shape[1];
  const y = emptyBuf(B * Tq * C); // (B, Tq, Hq*hs)
  const p = emptyBuf(B * nHead * Tq * Tk); // (B, Hq, Tq, Tk)
  kernel(q.data, k.data, v.data, B, Tq, Tk, nHead, nKvHead, C / nHead, scale, opts.window ?? 0, y, p);
  const out = record('fused_grouped_attention', y, [B, Tq, C], [q, k, v], { p, nHead, nKvHead, scale });
  if (!out.node) be.free?.(p); // no backward will read the probabilities (generation)
  return out;
}

/** groupedCausalAttention from primitives: heads repeated (repeat_kv), scores, mask, softmax, weighted sum. */
export function groupedCausalAttentionComposite(q: Tensor, k: Tensor, v: Tensor, opts: GroupedAttentionOptions): Tensor {
  checkGrouped(q, k, v, opts);
  const { nHead, nKvHead, scale } = opts;
  const [B, Tq, C] = q.shape;
  const Tk = k.shape[1];
  const hs = C / nHead;
  const group = nHead / nKvHead;
  const heads = (x: Tensor, h: number, t: number): Tensor => permute(reshape(x, [B, t, h, hs]), [0, 2, 1, 3]);
  const repeat = (x: Tensor): Tensor => { // (B, Hkv, Tk, hs) -> (B, Hq, Tk, hs)
    if (group === 1) return x;
    return reshape(expand(reshape(x, [B, nKvHead, 1, Tk, hs]), [B, nKvHead, group, Tk, hs]), [B, nHead, Tk, hs]);
  };
  const qh = heads(q, nHead, Tq); // (B, Hq, Tq, hs)
  const kh = repeat(heads(k, nKvHead, Tk)); // (B, Hq, Tk, hs)
  const vh = repeat(heads(v, nKvHead, Tk));
  let att = mul(matmul(qh, kh, { transB: true }), scale); // (B, Hq, Tq, Tk)
  att = softmax(maskedFill(att, causalMask(Tq, Tk, opts.window ?? null), -Infinity), -1);
  if (opts.dropout) att = opts.dropout(att);
  return reshape(permute(matmul(att, vh), [0, 2, 1, 3]), [B, Tq, C]); // (B, Tq, Hq*hs)
}

const maskCache = new Map<string, Tensor>();

/**
 * 1 where query i (at absolute position past + i) may NOT see key j, i.e. j > past + i, or, with a sliding
 * `window` (Mistral), past + i - j >= window. (Tq, Tk), cached.
 */
export function causalMask(tq: number, tk: number, window: number | null = null): Tensor {
  const key = `${tq}x${tk}x${window}`;
  let m = maskCache.get(key);
  if (!m) {
    const past = tk - tq;
    m = full([tq, tk], 0);
    for (let i = 0; i < tq; i++) {
      for (let j = past + i + 1; j < tk; j++) m.data[i * tk + j] = 1;
      if (window !== null) for (let j = 0; j <= past + i - window; j++) m.data[i * tk + j] = 1;
    }
    if (maskCache.size > 64) maskCache.clear();
    maskCache.set(key, m);
  }
  return m;
}

/** x where mask == 0, value where mask != 0. */
export function maskedFill(x: Tensor, mask: Tensor, value: number): Tensor {
  return where(mask, value, x);
}

export interface CrossEntropyOptions {
  ignoreIndex?: number; // targets equal to this contribute nothing (PyTorch's default -100)
  reduction?: 'mean' | 'sum' | 'none';
}

/** Validated targets: row indices (-1 where ignored) and the number of rows that count. */
function ceTargets(logits: Tensor, targets: Int32Array, ignore: number): { idx: Int32Array; count: number } {
  if (logits.rank !== 2) throw new ShapeError(`crossEntropy: logits must be (N, C), got ${fmtShape(logits.shape)}`);
  const [N, C] = logits.shape;
  if (targets.length !== N) throw new ShapeError(`crossEntropy: ${targets.length} targets for ${N} rows`);
  const idx = new Int32Array(N);
  let count = 0;
  for (let i = 0; i < N; i++) {
    const t = targets[i];
    if (t === ignore) {
      idx[i] = -1;
      continue;
    }
    if (t < 0 || t >= C) throw new ShapeError(`crossEntropy: target ${t} at row ${i} is outside [0, ${C})`);
    idx[i] = t;
    count++;
  }
  return { idx, count };
}

/**
 * Cross-entropy between logits (N, C) and integer targets (N), as F.cross_entropy:
 * 'mean' divides by the number of targets that are not ignored.
 *
 * One primitive: the forward pass keeps no (N, C) log-probabilities (the gradient, softmax minus one-hot, is
 * rebuilt from the logits), which over a 50257-word vocabulary saves several logits-sized buffers a step.
 * crossEntropyComposite is the reference it is checked against.
 */
export function crossEntropy(logits: Tensor, targets: Int32Array, opts: CrossEntropyOptions = {}): Tensor {
  const ignore = opts.ignoreIndex ?? -100;
  const reduction = opts.reduction ?? 'mean';
  const { idx, count } = ceTargets(logits, targets, ignore);
  const [N, C] = logits.shape;
  const be = getBackend();
  const lsm = noGrad(() => logSoftmax(logits.detach(), -1));
  const losses = emptyBuf(N);
  for (let i = 0; i < N; i++) losses[i] = idx[i] < 0 ? 0 : -lsm.data[i * C + idx[i]];
  be.free?.(lsm.data);
  let out: Float32Array;
  if (reduction === 'none') {
    out = losses;
  } else {
    const total = emptyBuf(1);
    be.reduce('sum', losses, { outer: 1, n: N, inner: 1 }, total);
    be.free?.(losses);
    if (reduction === 'mean') total[0] = total[0] / count;
    out = total;
  }
  return record('cross_entropy', out, reduction === 'none' ? [N] : [], [logits], { idx, count, reduction });
}

/** The composite cross-entropy (log-softmax, gather, sum): the reference crossEntropy is checked against. */
export function crossEntropyComposite(logits: Tensor, targets: Int32Array, opts: CrossEntropyOptions = {}): Tensor {
  const reduction = opts.reduction ?? 'mean';
  const { idx, count } = ceTargets(logits, targets, opts.ignoreIndex ?? -100);
  const losses = neg(gatherAxis(logSoftmax(logits, -1), -1, idx)); // (N)
  if (reduction === 'none') return losses;
  const total = sum(losses);
  return reduction === 'sum' ? total : div(total, count);
}

/** Mean squared error, as F.mse_loss. */
export function mseLoss(a: Tensor, b: Tensor): Tensor {
  const d = sub(a, b);
  return mean(mul(d, d));
}

/**
 * Inverted dropout: zero each element with probability p and scale the rest by 1/(1-p), drawn as torch's CPU
 * dropout draws it: noise.bernoulli_(1 - p) (one double uniform per element, kept when below 1 - p), then
 * noise.div_(1 - p) in float32, so the same generator state gives torch's mask.
 */
export function dropout(x: Tensor, p: number, rng: Rng, training = true): Tensor {
  if (!training || p === 0) return x;
  if (!(p > 0 && p < 1)) throw new RangeError(`dropout: p must be in [0, 1), got ${p}`);
  const mask = zeros(x.shape);
  const keep = 1 - p;
  const scale = Math.fround(1 / Math.fround(keep));
  for (let i = 0; i < mask.size; i++) mask.data[i] = rng.next() < keep ? scale : 0;
  return mul(x, mask);
}

export type { GradNode };
