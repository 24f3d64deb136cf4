// The ops.json fixture (PyTorch forward values and input gradients, written by test/golden/ops/make_ops.py) and
// the table that maps each fixture op and its params to ajar calls; shared by the golden and finite-difference tests.
import { readFileSync } from 'node:fs';
import type { Backend } from '../../src/tensor/backend.js';
import {
  abs, add, causalSelfAttention, concat, crossEntropy, div, embedding, eq, exp, expand, gatherAxis, gelu,
  groupedCausalAttention, gt, layerNorm, log, logSoftmax, linear, lt, maskedFill, matmul, max, maximum, mean, mseLoss,
  mul, neg, pad, permute, pow, relu, reshape, rmsNorm, rope, rsqrt, sigmoid, silu, siluMul, slice, softmax, sqrt, sub,
  sum, sumTo, tanh, tensor, transpose, where,
} from '../../src/tensor/ops.js';
import type { Tensor } from '../../src/tensor/tensor.js';

/** A float tensor as make_ops.py writes it: decimal values, base64 float32 bytes, or a regenerable hash. */
export interface FixtureTensor {
  shape: number[];
  data?: (number | string)[];
  b64?: string;
  hash?: { seed: number; lo: number; hi: number };
}

export interface FixtureInts {
  shape: number[];
  data: number[];
}

/** Every param any case uses; each op reads its own. */
export interface OpParams {
  scalar?: number; // the number operand of a binary op
  scalarFirst?: boolean; // the number is the left operand
  scalarB?: number; // where(cond, a, number)
  value?: number | string; // maskedFill's value ("-Infinity" as a string)
  approximate?: 'tanh' | 'erf';
  shape?: number[];
  axis?: number | number[] | null;
  keepdim?: boolean;
  eps?: number;
  weight?: boolean;
  bias?: boolean;
  transA?: boolean;
  transB?: boolean;
  transW?: boolean;
  nHead?: number;
  nKvHead?: number;
  scale?: number;
  window?: number | null; // groupedCausalAttention's sliding window
  perm?: number[];
  d0?: number;
  d1?: number;
  start?: number;
  end?: number;
  n?: number;
  reduction?: 'mean' | 'sum' | 'none';
  ignoreIndex?: number;
}

export interface OpCase {
  name: string;
  op: string;
  params: OpParams;
  inputs: FixtureTensor[];
  int_inputs: FixtureInts[];
  upstream: FixtureTensor | null; // null: forward only (comparisons carry no gradient)
  out: FixtureTensor;
  grads: (FixtureTensor | null)[];
  rep?: boolean; // the op's representative case for the finite-difference check
}

export interface OpFixture {
  generator: string;
  torch: string;
  seed: number;
  cases: OpCase[];
}

/** Read ops.json from the source tree (this file compiles to dist/test/tensor/). */
export function loadOpFixture(): OpFixture {
  const url = new URL('../../../test/golden/ops/ops.json', import.meta.url);
  return JSON.parse(readFileSync(url, 'utf8')) as OpFixture;
}

/** A fixture number: JSON has no infinities or NaN, so make_ops.py writes those as strings. */
export function fixtureNumber(v: number | string): number {
  if (typeof v === 'number') return v;
  if (v === 'Infinity') return Infinity;
  if (v === '-Infinity') return -Infinity;
  if (v === 'NaN') return NaN;
  throw new Error(`ops.json: bad number ${JSON.stringify(v)}`);
}

/** make_ops.py's hash_uniform: every step is exact or one IEEE double rounding, so values match bit for bit. */
export function hashUniform(n: number, seed: number, lo: number, hi: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = ((i + seed) * 2654435761) % 4294967296 / 4294967296;
    out[i] = lo + (hi - lo) * u;
  }
  return out;
}

export function decodeValues(t: FixtureTensor): Float32Array {
  const n = t.shape.reduce((p, d) => p * d, 1);
  let out: Float32Array;
  if (t.data) {
    out = Float32Array.from(t.data, fixtureNumber);
  } else if (t.b64 !== undefined) {
    const bytes = Buffer.from(t.b64, 'base64');
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    out = new Float32Array(bytes.byteLength / 4);
    for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(4 * i, true);
  } else if (t.hash) {
    out = hashUniform(n, t.hash.seed, t.hash.lo, t.hash.hi);
  } else {
    throw new Error('ops.json: a tensor has neither data, b64 nor hash');
  }
  if (out.length !== n) throw new Error(`ops.json: ${out.length} values for shape (${t.shape.join(', ')})`);
  return out;
}

export interface IntInput {
  shape: number[];
  data: Int32Array;
}

export type OpFn = (xs: Tensor[], ints: IntInput[], p: OpParams) => Tensor;

function need<T>(v: T | undefined | null, what: string): T {
  if (v === undefined || v === null) throw new Error(`ops.json: param '${what}' is missing`);
  return v;
}

type Binary = (a: Tensor | number, b: Tensor | number) => Tensor;

/** Tensor op tensor, or with `scalar` a plain number on the right (or the left with `scalarFirst`). */
function binary(fn: Binary): OpFn {
  return (xs, _ints, p) => {
    if (p.scalar === undefined) return fn(xs[0], xs[1]);
    return p.scalarFirst ? fn(p.scalar, xs[0]) : fn(xs[0], p.scalar);
  };
}

/** A 0/1 integer fixture input as the float mask where() and maskedFill() take. */
function maskOf(m: IntInput): Tensor {
  return tensor(Float32Array.from(m.data), m.shape);
}

function axisParam(p: OpParams): number | number[] | undefined {
  return p.axis === null ? undefined : p.axis;
}

/** fixture op -> ajar call. Every op of src/tensor/ops.ts that PyTorch can check has an entry. */
export const OPS: Record<string, OpFn> = {
  add: binary(add),
  sub: binary(sub),
  mul: binary(mul),
  div: binary(div),
  pow: binary(pow),
  maximum: binary(maximum),
  gt: binary(gt),
  lt: binary(lt),
  eq: binary(eq),
  neg: ([x]) => neg(x),
  exp: ([x]) => exp(x),
  log: ([x]) => log(x),
  sqrt: ([x]) => sqrt(x),
  rsqrt: ([x]) => rsqrt(x),
  tanh: ([x]) => tanh(x),
  sigmoid: ([x]) => sigmoid(x),
  relu: ([x]) => relu(x),
  abs: ([x]) => abs(x),
  gelu: ([x], _i, p) => gelu(x, need(p.approximate, 'approximate')),
  silu: ([x]) => silu(x),
  where: ([a, b], [cond], p) => where(maskOf(cond), a, p.scalarB ?? b),
  maskedFill: ([x], [mask], p) => maskedFill(x, maskOf(mask), fixtureNumber(need(p.value, 'value'))),
  expand: ([x], _i, p) => expand(x, need(p.shape, 'shape')),
  sumTo: ([x], _i, p) => sumTo(x, need(p.shape, 'shape')),
  sum: ([x], _i, p) => sum(x, axisParam(p), p.keepdim),
  mean: ([x], _i, p) => mean(x, axisParam(p), p.keepdim),
  max: ([x], _i, p) => max(x, need(p.axis, 'axis') as number, p.keepdim),
  softmax: ([x], _i, p) => softmax(x, need(p.axis, 'axis') as number),
  logSoftmax: ([x], _i, p) => logSoftmax(x, need(p.axis, 'axis') as number),
  layerNorm: (xs, _i, p) => {
    const rest = xs.slice(1);
    const w = p.weight ? need(rest.shift(), 'weight input') : null;
    const b = p.bias ? need(rest.shift(), 'bias input') : null;
    return layerNorm(xs[0], w, b, need(p.eps, 'eps'));
  },
  rmsNorm: ([x, w], _i, p) => rmsNorm(x, p.weight ? w : null, need(p.eps, 'eps')),
  embedding: ([table], [ids]) => embedding(table, ids.data, ids.shape),
  matmul: ([a, b], _i, p) => matmul(a, b, { transA: p.transA, transB: p.transB }),
  causalSelfAttention: ([x], _i, p) => causalSelfAttention(x, need(p.nHead, 'nHead'), need(p.scale, 'scale')),
  rope: ([x, cos, sin], _i, p) => rope(x, need(p.nHead, 'nHead'), cos, sin),
  siluMul: ([gate, up]) => siluMul(gate, up),
  groupedCausalAttention: ([q, k, v], _i, p) => groupedCausalAttention(q, k, v, {
    nHead: need(p.nHead, 'nHead'), nKvHead: need(p.nKvHead, 'nKvHead'), scale: need(p.scale, 'scale'), window: p.window ?? null,
  }),
  linear: ([x, w, b], _i, p) => linear(x, w, p.bias ? need(b, 'bias input') : null, { transW: p.transW }),
  reshape: ([x], _i, p) => reshape(x, need(p.shape, 'shape')),
  permute: ([x], _i, p) => permute(x, need(p.perm, 'perm')),
  transpose: ([x], _i, p) => transpose(x, p.d0, p.d1),
  slice: ([x], _i, p) => slice(x, need(p.axis, 'axis') as number, need(p.start, 'start'), need(p.end, 'end')),
  pad: ([x], _i, p) => pad(x, need(p.axis, 'axis') as number, need(p.start, 'start'), need(p.n, 'n')),
  concat: (xs, _i, p) => concat(xs, need(p.axis, 'axis') as number),
  gatherAxis: ([x], [idx], p) => gatherAxis(x, need(p.axis, 'axis') as number, idx.data),
  crossEntropy: ([x], [targets], p) => crossEntropy(x, targets.data, {
    reduction: p.reduction, ignoreIndex: p.ignoreIndex,
  }),
  mseLoss: ([a, b]) => mseLoss(a, b),
};

/** The case's inputs as fresh tensors (those with an expected gradient require grad) and its integer inputs. */
export function caseInputs(c: OpCase): { xs: Tensor[]; ints: IntInput[] } {
  const xs = c.inputs.map((t, i) => {
    const x = tensor(decodeValues(t), t.shape);
    return c.grads[i] ? x.requireGrad() : x;
  });
  const ints = c.int_inputs.map((t) => ({ shape: t.shape, data: Int32Array.from(t.data) }));
  return { xs, ints };
}

export function opFor(c: OpCase): OpFn {
  const fn = OPS[c.op];
  if (!fn) throw new Error(`ops.json case '${c.name}': op '${c.op}' has no entry in OPS (test/tensor/op-table.ts)`);
  return fn;
}

/**
 * The worst element of `actual` outside |a - b| <= tol * max(1, |b|), or null when all are within; NaN must meet
 * NaN and an infinity the same infinity. Also rejects a relative L2 error above tol over the finite entries, so
 * a tensor of tiny values (the 50257-class gradient) cannot pass by being all zeros.
 */
export function closeness(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number): string | null {
  if (actual.length !== expected.length) return `${actual.length} values, expected ${expected.length}`;
  let worst = -1;
  let worstExcess = 0;
  let diff2 = 0;
  let ref2 = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i];
    const b = expected[i];
    if (!Number.isFinite(b)) {
      if (!Object.is(a, b) && !(Number.isNaN(a) && Number.isNaN(b))) return `[${i}] = ${a}, expected ${b}`;
      continue;
    }
    const err = Math.abs(a - b);
    const excess = Number.isNaN(err) ? Infinity : err / (tol * Math.max(1, Math.abs(b)));
    if (excess > 1 && excess > worstExcess) {
      worst = i;
      worstExcess = excess;
    }
    diff2 += err * err;
    ref2 += b * b;
  }
  if (worst >= 0) {
    const a = actual[worst];
    const b = expected[worst];
    return `[${worst}] = ${a}, expected ${b} (|diff| ${Math.abs(a - b).toExponential(2)}, ${worstExcess.toFixed(1)}x the tolerance)`;
  }
  if (ref2 > 0 && Math.sqrt(diff2 / ref2) > tol) {
    return `relative L2 error ${Math.sqrt(diff2 / ref2).toExponential(2)} exceeds ${tol}`;
  }
  return null;
}

/** The ops recorded in the graph that ends at `root` (read before backward releases it). */
export function graphOps(root: Tensor, into: Set<string>): void {
  const stack = [root];
  const seen = new Set<Tensor>();
  while (stack.length > 0) {
    const t = stack.pop()!;
    if (seen.has(t) || !t.node) continue;
    seen.add(t);
    into.add(t.node.op);
    stack.push(...t.node.inputs);
  }
}

/** A backend that delegates to `b` and records each unary and binary kernel name it is asked for. */
export function spyBackend(b: Backend, seen: Set<string>): Backend {
  return {
    name: b.name,
    alloc: (n) => b.alloc(n),
    unary: (op, x, out) => {
      seen.add(op);
      b.unary(op, x, out);
    },
    binary: (op, ...rest) => {
      seen.add(op);
      b.binary(op, ...rest);
    },
    where: (...args) => b.where(...args),
    reduce: (op, ...rest) => {
      seen.add(op);
      b.reduce(op, ...rest);
    },
    argmax: (...args) => b.argmax(...args),
    gather: (...args) => b.gather(...args),
    scatterAdd: (...args) => b.scatterAdd(...args),
    matmul: (...args) => b.matmul(...args),
    permute: (...args) => b.permute(...args),
    copyAxis: (...args) => b.copyAxis(...args),
    gatherRows: (...args) => b.gatherRows(...args),
    scatterAddRows: (...args) => b.scatterAddRows(...args),
    fused: b.fused,
  };
}
