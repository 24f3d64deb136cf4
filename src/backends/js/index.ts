// The reference backend: plain TypeScript kernels over Float32Array, accumulating in float64.
// It is the oracle every faster backend is tested against, so clarity comes before speed here.
import type { AxisLayout, Backend, BinaryOp, MatmulArgs, ReduceOp, UnaryOp } from '../../tensor/backend.js';
import { broadcastStrides, stridesOf } from '../../tensor/shape.js';
import { geluErf, geluErfGrad, geluTanh, geluTanhGrad } from './math.js';
import { matmulQ8 } from './q8.js';

type Fn1 = (x: number) => number;
type Fn2 = (x: number, y: number) => number;

const unaryFns = {
  neg: (x) => -x,
  exp: Math.exp,
  log: Math.log,
  sqrt: Math.sqrt,
  rsqrt: (x) => 1 / Math.sqrt(x),
  tanh: Math.tanh,
  sigmoid: (x) => 1 / (1 + Math.exp(-x)),
  relu: (x) => (x > 0 || Number.isNaN(x) ? x : 0), // NOTE: NaN propagates, as torch.relu
  step: (x) => (x > 0 ? 1 : 0),
  abs: Math.abs,
  sign: Math.sign,
  gelu_tanh: geluTanh,
  gelu_erf: geluErf,
  gelu_tanh_grad: geluTanhGrad,
  gelu_erf_grad: geluErfGrad,
} satisfies Record<UnaryOp, Fn1>;

const binaryFns = {
  add: (x, y) => x + y,
  sub: (x, y) => x - y,
  mul: (x, y) => x * y,
  div: (x, y) => x / y,
  pow: Math.pow,
  maximum: (x, y) => (x >= y || Number.isNaN(x) ? x : y), // NaN from either side, as torch.maximum
  gt: (x, y) => (x > y ? 1 : 0),
  lt: (x, y) => (x < y ? 1 : 0),
  eq: (x, y) => (x === y ? 1 : 0),
} satisfies Record<BinaryOp, Fn2>;

/** Visit every output index of outShape, calling body(outIndex, offsetA, offsetB, offsetC). */
function forEachBroadcast(outShape: readonly number[], strideSets: number[][],
  body: (o: number, offs: number[]) => void): void {
  const rank = outShape.length;
  const n = outShape.reduce((p, d) => p * d, 1);
  if (n === 0) return;
  const idx = new Array<number>(rank).fill(0);
  const offs = strideSets.map(() => 0);
  for (let o = 0; o < n; o++) {
    body(o, offs);
    for (let d = rank - 1; d >= 0; d--) {
      idx[d]++;
      for (let s = 0; s < strideSets.length; s++) offs[s] += strideSets[s][d];
      if (idx[d] < outShape[d]) break;
      for (let s = 0; s < strideSets.length; s++) offs[s] -= strideSets[s][d] * outShape[d];
      idx[d] = 0;
    }
  }
}

function binary(op: BinaryOp, a: Float32Array, aShape: readonly number[], b: Float32Array,
  bShape: readonly number[], out: Float32Array, outShape: readonly number[]): void {
  const f = binaryFns[op];
  const n = out.length;
  if (a.length === n && b.length === n) {
    for (let i = 0; i < n; i++) out[i] = f(a[i], b[i]);
    return;
  }
  if (b.length === 1 && a.length === n) {
    const y = b[0];
    for (let i = 0; i < n; i++) out[i] = f(a[i], y);
    return;
  }
  if (a.length === 1 && b.length === n) {
    const x = a[0];
    for (let i = 0; i < n; i++) out[i] = f(x, b[i]);
    return;
  }
  const as = broadcastStrides(aShape, outShape);
  const bs = broadcastStrides(bShape, outShape);
  forEachBroadcast(outShape, [as, bs], (o, offs) => {
    out[o] = f(a[offs[0]], b[offs[1]]);
  });
}

function where(cond: Float32Array, cShape: readonly number[], a: Float32Array, aShape: readonly number[],
  b: Float32Array, bShape: readonly number[], out: Float32Array, outShape: readonly number[]): void {
  const cs = broadcastStrides(cShape, outShape);
  const as = broadcastStrides(aShape, outShape);
  const bs = broadcastStrides(bShape, outShape);
  forEachBroadcast(outShape, [cs, as, bs], (o, offs) => {
    out[o] = cond[offs[0]] !== 0 ? a[offs[1]] : b[offs[2]];
  });
}

function reduce(op: ReduceOp, x: Float32Array, { outer, n, inner }: AxisLayout, out: Float32Array): void {
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const base = o * n * inner + i;
      if (op === 'sum') {
        let s = 0;
        for (let j = 0; j < n; j++) s += x[base + j * inner];
        out[o * inner + i] = s;
      } else {
        let m = -Infinity;
        for (let j = 0; j < n; j++) {
          const v = x[base + j * inner];
          if (v > m || Number.isNaN(v)) m = v;
          if (Number.isNaN(m)) break;
        }
        out[o * inner + i] = m;
      }
    }
  }
}

function argmax(x: Float32Array, { outer, n, inner }: AxisLayout, idx: Int32Array): void {
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const base = o * n * inner + i;
      let m = -Infinity;
      let at = 0;
      for (let j = 0; j < n; j++) {
        const v = x[base + j * inner];
        if (v > m) {
          m = v;
          at = j;
        }
      }
      idx[o * inner + i] = at;
    }
  }
}

function gather(x: Float32Array, { outer, n, inner }: AxisLayout, idx: Int32Array, out: Float32Array): void {
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const j = idx[o * inner + i];
      out[o * inner + i] = j >= 0 && j < n ? x[(o * n + j) * inner + i] : 0;
    }
  }
}

function scatterAdd(g: Float32Array, { outer, n, inner }: AxisLayout, idx: Int32Array, out: Float32Array): void {
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const j = idx[o * inner + i];
      if (j >= 0 && j < n) out[(o * n + j) * inner + i] += g[o * inner + i];
    }
  }
}

function matmul(a: Float32Array, b: Float32Array, out: Float32Array, args: MatmulArgs): void {
  const { batch, M, K, N, transA, transB, aBatchStride, bBatchStride } = args;
  // Element (m, k) of A is a[aOff + m * amS + k * akS]; element (k, n) of B is b[bOff + k * bkS + n * bnS].
  const amS = transA ? 1 : K;
  const akS = transA ? M : 1;
  const bkS = transB ? 1 : N;
  const bnS = transB ? K : 1;
  const acc = new Float64Array(N);
  for (let p = 0; p < batch; p++) {
    const aOff = p * aBatchStride;
    const bOff = p * bBatchStride;
    const cOff = p * M * N;
    for (let m = 0; m < M; m++) {
      if (transB) {
        // Rows of B are contiguous in k: dot products.
        for (let n = 0; n < N; n++) {
          let s = 0;
          const bRow = bOff + n * bnS;
          const aRow = aOff + m * amS;
          for (let k = 0; k < K; k++) s += a[aRow + k * akS] * b[bRow + k];
          out[cOff + m * N + n] = s;
        }
      } else {
        acc.fill(0);
        for (let k = 0; k < K; k++) {
          const av = a[aOff + m * amS + k * akS];
          if (av === 0) continue;
          const bRow = bOff + k * bkS;
          for (let n = 0; n < N; n++) acc[n] += av * b[bRow + n];
        }
        for (let n = 0; n < N; n++) out[cOff + m * N + n] = acc[n];
      }
    }
  }
}

function permute(x: Float32Array, shape: readonly number[], perm: readonly number[], out: Float32Array): void {
  const inStrides = stridesOf(shape);
  const outShape = perm.map((p) => shape[p]);
  const src = perm.map((p) => inStrides[p]);
  forEachBroadcast(outShape, [src], (o, offs) => {
    out[o] = x[offs[0]];
  });
}

function copyAxis(src: Float32Array, srcN: number, srcStart: number, dst: Float32Array, dstN: number,
  dstStart: number, outer: number, len: number, inner: number): void {
  const block = len * inner;
  for (let o = 0; o < outer; o++) {
    const s = (o * srcN + srcStart) * inner;
    const d = (o * dstN + dstStart) * inner;
    dst.set(src.subarray(s, s + block), d);
  }
}

function gatherRows(table: Float32Array, dim: number, ids: Int32Array, out: Float32Array): void {
  for (let r = 0; r < ids.length; r++) {
    const id = ids[r];
    out.set(table.subarray(id * dim, id * dim + dim), r * dim);
  }
}

function scatterAddRows(g: Float32Array, dim: number, ids: Int32Array, out: Float32Array): void {
  for (let r = 0; r < ids.length; r++) {
    const id = ids[r];
    if (id < 0) continue;
    for (let j = 0; j < dim; j++) out[id * dim + j] += g[r * dim + j];
  }
}

export const jsBackend: Backend = {
  name: 'js',
  alloc: (n) => new Float32Array(n),
  unary(op, x, out) {
    const f = unaryFns[op];
    for (let i = 0; i < x.length; i++) out[i] = f(x[i]);
  },
  binary,
  where,
  reduce,
  argmax,
  gather,
  scatterAdd,
  matmul,
  permute,
  copyAxis,
  gatherRows,
  scatterAddRows,
  fused: { matmulQ8 },
};
