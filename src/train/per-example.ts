// Per-example gradient norms and the clipped sum of per-example gradients, from one backward pass (DP-SGD).
// Each trained parameter's op records what its per-example gradient is made of; after the pass every parameter is
// handled one of two ways, chosen per parameter by size:
// - materialised (Opacus's GradSampleModule): each example's gradient written out, (B, size), its norm read off
//   and the clipped sum taken as f^T G. Biases and normalisation weights (one row of `size` per example) always
//   go this way: their per-example gradient is no larger than the data it is computed from.
// - ghost clipping (Goodfellow 2015; Li et al. 2021, "Large Language Models Can Be Strong Differentially Private
//   Learners", section 4; Opacus's GradSampleModuleFastGradientClipping): a linear layer's gradient for one example
//   is X_e^T G_e, a sum over its T rows of outer products, so its squared norm is sum_{t,s} (x_t . x_s)(g_t . g_s),
//   read from two T x T Gram matrices without forming the d_in x d_out gradient; an embedding's rows are one-hot,
//   so its x-Gram is [id_t == id_s]. A parameter used more than once (GPT-2's tied wte: the token embedding and the
//   output head) adds the cross terms of each pair of uses. The clipped sum is then one reweighted product:
//   X^T diag(f) G, each row of G scaled by its example's clipping factor (the "reweighted sum" in place of a
//   second backward pass).
// Ghost clipping is chosen when the Gram matrices are smaller than the per-example gradient: sum over pairs of
// uses of T_i T_j < d_in d_out (T^2 < d_in d_out for one use), Li et al.'s criterion.
import { emptyBuf } from '../tensor/backend.js';
import { AjarError, getBackend, type BackwardHooks, type Tensor } from '../tensor/index.js';

/**
 * Row factors of a parameter's per-example gradient, shaped (rows, cols): the gradient of one example is
 * sum over its rows t of u_t v_t^T. Dense: the op's rows (R, dim); ids: one-hot rows (an embedding's ids).
 */
type Factor = { kind: 'dense'; data: Float32Array; dim: number } | { kind: 'ids'; ids: Int32Array; dim: number };

/** One use of a parameter as a sum of outer products; `own` names the factor that is this pass's copy (scaled in place). */
interface OuterUse {
  u: Factor;
  v: Factor;
  /** Rows R of the op's input (every example's rows are a contiguous block of them). */
  rows: number;
  own: 'u' | 'v';
}

export type ClipMethod = 'ghost' | 'materialised';
/** auto: per parameter by size (the header's rule); or one method wherever it applies (tests compare the two). */
export type ClipChoice = 'auto' | ClipMethod;

/**
 * The per-example gradients of the trained parameters from one backward pass. The batch is B examples; example e
 * owns the batch's leading rows (windows) spans[e] .. spans[e + 1] (one row each for plain examples, several when a
 * document is cut into windows); an op input with R rows has R / spans[B] rows per window, example-major.
 */
export class PerExampleGrads implements BackwardHooks {
  readonly batch: number;
  /** How each parameter's norm and clipped sum were formed (set by norms()). */
  readonly method = new Map<Tensor, ClipMethod>();
  private readonly outer = new Map<Tensor, OuterUse[]>();
  /** Materialised per-example gradients, (B, size) each. */
  private readonly full = new Map<Tensor, Float32Array>();
  /** Parameters whose `full` buffer holds a contribution already (the first product is written in place, not added). */
  private readonly touched = new Set<Tensor>();
  private readonly trained: Set<Tensor>;

  constructor(readonly params: readonly Tensor[], readonly spans: Int32Array, private readonly names: Map<Tensor, string>,
    private readonly choice: ClipChoice = 'auto') {
    this.batch = spans.length - 1;
    this.trained = new Set(params);
  }

  /** spans for B examples of one row each: 0, 1, ..., B. */
  static oneRowEach(batch: number): Int32Array {
    return Int32Array.from({ length: batch + 1 }, (_, i) => i);
  }

  onOutputGrad(t: Tensor, g: Tensor): void {
    const node = t.node!;
    if (!node.inputs.some((x) => this.trained.has(x))) return;
    const [a, b, c] = node.inputs;
    switch (node.op) {
      case 'linear':
        if (this.trained.has(a)) this.unsupported(a, 'as the input of a linear layer');
        if (this.trained.has(b)) this.product(b, a, g, node.attrs.transW as boolean);
        if (c && this.trained.has(c)) this.rowSum(c, g, null, null);
        return;
      case 'matmul':
        if (this.trained.has(a) || b.rank !== 2 || node.attrs.transA) this.unsupported(this.trained.has(a) ? a : b, 'in a matmul');
        this.product(b, a, g, node.attrs.transB as boolean);
        return;
      case 'embedding': {
        const ids = node.attrs.ids as Int32Array;
        this.addUse(a, { u: { kind: 'ids', ids, dim: a.shape[0] }, v: { kind: 'dense', data: copyOf(g), dim: a.shape[1] }, rows: ids.length, own: 'v' });
        return;
      }
      case 'fused_layer_norm':
      case 'fused_rms_norm': {
        if (this.trained.has(a)) this.unsupported(a, 'as the input of a norm');
        const rstd = node.attrs.rstd as Float32Array;
        const mean = node.op === 'fused_layer_norm' ? node.attrs.mean as Float32Array : null;
        if (b && this.trained.has(b)) this.rowSum(b, g, a.data, { mean, rstd });
        if (c && this.trained.has(c)) this.rowSum(c, g, null, null);
        return;
      }
      case 'mul':
      case 'add': {
        // A weight or bias broadcast over rows: y = x * w or x + w, w (N) and x of the output's shape.
        const [p, other] = this.trained.has(a) ? [a, b] : [b, a];
        if (this.trained.has(other) || p.size !== g.shape[g.rank - 1] || other.size !== g.size) this.unsupported(p, `in a broadcast ${node.op}`);
        this.rowSum(p, g, node.op === 'mul' ? other.data : null, null);
        return;
      }
      default:
        this.unsupported(node.inputs.find((x) => this.trained.has(x))!, `in op '${node.op}'`);
    }
  }

  private unsupported(p: Tensor, how: string): never {
    throw new AjarError('dp_unsupported', `--dp: parameter ${this.names.get(p) ?? '?'} is used ${how}, which has no per-example gradient rule; ` +
      'train this model without --dp, or with --lora (adapters on linear layers)');
  }

  private addUse(p: Tensor, use: OuterUse): void {
    const list = this.outer.get(p);
    if (list) list.push(use);
    else this.outer.set(p, [use]);
  }

  /**
   * w of x @ w (w (K, N)): the gradient is sum_t x_t g_t^T; of x @ w^T (w (N, K)): sum_t g_t x_t^T. x stays the
   * forward pass's buffer; g is copied (the backward pass reuses its buffers).
   */
  private product(w: Tensor, x: Tensor, g: Tensor, transposed: boolean): void {
    const K = x.shape[x.rank - 1];
    const N = g.shape[g.rank - 1];
    const xf: Factor = { kind: 'dense', data: x.data, dim: K };
    const gf: Factor = { kind: 'dense', data: copyOf(g), dim: N };
    const rows = x.size / K;
    this.addUse(w, transposed ? { u: gf, v: xf, rows, own: 'u' } : { u: xf, v: gf, rows, own: 'v' });
  }

  /** The (B, size) buffer of p's materialised per-example gradients. */
  private fullOf(p: Tensor): Float32Array {
    let acc = this.full.get(p);
    if (!acc) {
      acc = new Float32Array(this.batch * p.size);
      this.full.set(p, acc);
    }
    return acc;
  }

  /** Rows per window of an op input with `rows` rows. */
  private rowsPerWindow(rows: number): number {
    const windows = this.spans[this.batch];
    if (rows % windows !== 0) throw new Error(`unreachable: ${rows} rows do not split into ${windows} windows`);
    return rows / windows;
  }

  /**
   * p (N): per example, the sum over its rows of g, times other[row, j] (a broadcast mul), or times the normalised
   * input (x - mean) * rstd (a norm's weight) when given.
   */
  private rowSum(p: Tensor, g: Tensor, other: Float32Array | null, norm: { mean: Float32Array | null; rstd: Float32Array } | null): void {
    const N = p.size;
    const rpw = this.rowsPerWindow(g.size / N);
    const first = !this.full.has(p);
    const acc = this.fullOf(p);
    this.touched.add(p);
    const gd = g.data;
    if (!other && !norm && first && this.uniform()) {
      // A bias used once: one reduction over each example's rows, (B, r, N) -> (B, N).
      getBackend().reduce('sum', gd, { outer: this.batch, n: g.size / N / this.batch, inner: N }, acc);
      return;
    }
    for (let e = 0; e < this.batch; e++) {
      const base = e * N;
      for (let row = this.spans[e] * rpw; row < this.spans[e + 1] * rpw; row++) {
        const o = row * N;
        if (norm) {
          const m = norm.mean ? norm.mean[row] : 0;
          const r = norm.rstd[row];
          for (let j = 0; j < N; j++) acc[base + j] += gd[o + j] * (other![o + j] - m) * r;
        } else if (other) {
          for (let j = 0; j < N; j++) acc[base + j] += gd[o + j] * other[o + j];
        } else {
          for (let j = 0; j < N; j++) acc[base + j] += gd[o + j];
        }
      }
    }
  }

  /** Rows of example e in an op input of `rows` rows: [start, end). */
  private rowsOf(e: number, rows: number): [number, number] {
    const rpw = this.rowsPerWindow(rows);
    return [this.spans[e] * rpw, this.spans[e + 1] * rpw];
  }

  /** Whether every example has the same number of windows (the products batch over examples in one call). */
  private uniform(): boolean {
    const w = this.spans[1] - this.spans[0];
    for (let e = 1; e < this.batch; e++) if (this.spans[e + 1] - this.spans[e] !== w) return false;
    return true;
  }

  /** Ghost clipping's cost (Gram entries, summed over pairs of uses and examples) against materialising's (B size). */
  private choose(p: Tensor, uses: OuterUse[]): ClipMethod {
    if (this.full.has(p)) return 'materialised';
    if (this.choice !== 'auto') return this.choice;
    let grams = 0;
    for (let i = 0; i < uses.length; i++) {
      for (let j = i; j < uses.length; j++) {
        for (let e = 0; e < this.batch; e++) {
          const [s1, e1] = this.rowsOf(e, uses[i].rows);
          const [s2, e2] = this.rowsOf(e, uses[j].rows);
          grams += (e1 - s1) * (e2 - s2);
        }
      }
    }
    return grams < this.batch * p.size ? 'ghost' : 'materialised';
  }

  /** Each example's gradient norm over all parameters, as one flat vector (Float64). */
  norms(): Float64Array {
    const sq = new Float64Array(this.batch);
    for (const p of this.params) {
      const uses = this.outer.get(p) ?? [];
      const method = uses.length > 0 ? this.choose(p, uses) : 'materialised';
      this.method.set(p, method);
      if (method === 'ghost') {
        for (let i = 0; i < uses.length; i++) {
          for (let j = i; j < uses.length; j++) this.addGhostDots(uses[i], uses[j], i === j ? 1 : 2, sq);
        }
        continue;
      }
      const acc = this.fullOf(p);
      for (const use of uses) this.materialise(p, use, acc);
      const n = p.size;
      for (let e = 0; e < this.batch; e++) sq[e] += sumSquares(acc, e * n, (e + 1) * n);
    }
    for (let e = 0; e < this.batch; e++) sq[e] = Math.sqrt(sq[e]);
    return sq;
  }

  /** Add one use's per-example gradients into acc (B, rows x cols). */
  private materialise(p: Tensor, use: OuterUse, acc: Float32Array): void {
    const { u, v } = use;
    const be = getBackend();
    if (v.kind !== 'dense') throw new Error('unreachable: the second factor is always dense');
    if (u.kind === 'ids') {
      // An embedding: each example's rows added at their ids.
      const D = v.dim;
      for (let e = 0; e < this.batch; e++) {
        const [start, end] = this.rowsOf(e, use.rows);
        const base = e * p.size;
        for (let row = start; row < end; row++) {
          const o = base + u.ids[row] * D;
          for (let j = 0; j < D; j++) acc[o + j] += v.data[row * D + j];
        }
      }
      this.touched.add(p);
      return;
    }
    const first = !this.touched.has(p);
    this.touched.add(p);
    const out = first ? acc : emptyBuf(acc.length); // (B, u.dim, v.dim)
    const M = u.dim;
    const N = v.dim;
    if (this.uniform()) {
      const r = use.rows / this.batch;
      be.matmul(u.data, v.data, out, { batch: this.batch, M, K: r, N, transA: true, transB: false, aBatchStride: r * M, bBatchStride: r * N });
    } else {
      for (let e = 0; e < this.batch; e++) {
        const [start, end] = this.rowsOf(e, use.rows);
        be.matmul(u.data.subarray(start * M, end * M), v.data.subarray(start * N, end * N), out.subarray(e * M * N, (e + 1) * M * N),
          { batch: 1, M, K: end - start, N, transA: true, transB: false, aBatchStride: 0, bBatchStride: 0 });
      }
    }
    if (first) return;
    for (let i = 0; i < acc.length; i++) acc[i] += out[i];
    be.free?.(out);
  }

  /** sq[e] += weight * <gradient of use a, gradient of use b> for example e, from the Gram matrices of their factors. */
  private addGhostDots(a: OuterUse, b: OuterUse, weight: number, sq: Float64Array): void {
    const uniform = this.uniform();
    if (uniform) {
      const r1 = a.rows / this.batch;
      const r2 = b.rows / this.batch;
      const gu = this.gram(a.u, b.u, 0, a.rows, 0, b.rows, this.batch); // (B, r1, r2)
      const gv = this.gram(a.v, b.v, 0, a.rows, 0, b.rows, this.batch);
      for (let e = 0; e < this.batch; e++) sq[e] += weight * dot(gu, gv, e * r1 * r2, (e + 1) * r1 * r2);
      freeIfBackend(gu);
      freeIfBackend(gv);
      return;
    }
    for (let e = 0; e < this.batch; e++) {
      const [s1, e1] = this.rowsOf(e, a.rows);
      const [s2, e2] = this.rowsOf(e, b.rows);
      const gu = this.gram(a.u, b.u, s1, e1, s2, e2, 1);
      const gv = this.gram(a.v, b.v, s1, e1, s2, e2, 1);
      sq[e] += weight * dot(gu, gv, 0, gu.length);
      freeIfBackend(gu);
      freeIfBackend(gv);
    }
  }

  /**
   * Gram matrices of two factors' rows, f1 rows [s1, e1) against f2 rows [s2, e2), in `batch` equal blocks along
   * both: (batch, r1, r2) with r1 = (e1 - s1) / batch, r2 = (e2 - s2) / batch.
   */
  private gram(f1: Factor, f2: Factor, s1: number, e1: number, s2: number, e2: number, batch: number): Float32Array {
    const r1 = (e1 - s1) / batch;
    const r2 = (e2 - s2) / batch;
    if (f1.kind === 'dense' && f2.kind === 'dense') {
      const out = emptyBuf(batch * r1 * r2);
      const D = f1.dim;
      getBackend().matmul(f1.data.subarray(s1 * D, e1 * D), f2.data.subarray(s2 * D, e2 * D), out,
        { batch, M: r1, K: D, N: r2, transA: false, transB: true, aBatchStride: r1 * D, bBatchStride: r2 * D });
      return out;
    }
    const out = emptyBuf(batch * r1 * r2); // every entry is written below
    for (let e = 0; e < batch; e++) {
      for (let t = 0; t < r1; t++) {
        const row1 = s1 + e * r1 + t;
        const o = (e * r1 + t) * r2;
        for (let s = 0; s < r2; s++) {
          const row2 = s2 + e * r2 + s;
          if (f1.kind === 'ids' && f2.kind === 'ids') out[o + s] = f1.ids[row1] === f2.ids[row2] ? 1 : 0;
          else if (f1.kind === 'ids') out[o + s] = (f2 as { data: Float32Array }).data[row2 * f2.dim + f1.ids[row1]];
          else out[o + s] = f1.data[row1 * f1.dim + (f2 as { ids: Int32Array }).ids[row2]];
        }
      }
    }
    return out;
  }

  /**
   * The clipped sum: sum over examples of factors[e] times example e's gradient, one buffer per parameter (in
   * params' order). Call after norms(); ghost parameters' copied factors are scaled in place.
   */
  clippedSum(factors: Float64Array): Float32Array[] {
    const be = getBackend();
    const f = Float32Array.from(factors); // (1, B)
    return this.params.map((p) => {
      const sum = be.alloc(p.size);
      if (this.method.get(p) === 'materialised') {
        be.matmul(f, this.full.get(p)!, sum, { batch: 1, M: 1, K: this.batch, N: p.size, transA: false, transB: false, aBatchStride: 0, bBatchStride: 0 });
        return sum;
      }
      let first = true;
      for (const use of this.outer.get(p)!) {
        this.scaleRows(use, f);
        const { u, v } = use;
        if (v.kind !== 'dense') throw new Error('unreachable: the second factor is always dense');
        if (u.kind === 'ids') {
          be.scatterAddRows(v.data, v.dim, u.ids, sum);
        } else {
          // U^T diag(f) V: (u.dim, v.dim), written in place for the first use, added for the others.
          const part = first ? sum : emptyBuf(p.size);
          be.matmul(u.data, v.data, part, { batch: 1, M: u.dim, K: use.rows, N: v.dim, transA: true, transB: false, aBatchStride: 0, bBatchStride: 0 });
          if (!first) {
            be.binary('add', sum, [p.size], part, [p.size], sum, [p.size]);
            be.free?.(part);
          }
        }
        first = false;
      }
      return sum;
    });
  }

  /** Scale each row of a use's copied factor by its example's clipping factor. */
  private scaleRows(use: OuterUse, f: Float32Array): void {
    const own = use[use.own];
    if (own.kind !== 'dense') throw new Error('unreachable: the copied factor is dense');
    const data = own.data;
    if (this.uniform()) {
      const perExample = data.length / this.batch;
      getBackend().binary('mul', data, [this.batch, perExample], f, [this.batch, 1], data, [this.batch, perExample]);
      return;
    }
    for (let e = 0; e < this.batch; e++) {
      const [start, end] = this.rowsOf(e, use.rows);
      const fe = f[e];
      for (let i = start * own.dim; i < end * own.dim; i++) data[i] *= fe;
    }
  }

  /** Give the copied output gradients back to the backend (after clippedSum). */
  release(): void {
    const be = getBackend();
    for (const uses of this.outer.values()) {
      for (const use of uses) {
        const own = use[use.own];
        if (own.kind === 'dense') be.free?.(own.data);
      }
    }
    this.outer.clear();
  }
}

/** A backend buffer holding g's values (the backward pass reuses g's own buffer once its rule has run). */
function copyOf(g: Tensor): Float32Array {
  const out = emptyBuf(g.size);
  out.set(g.data.subarray(0, g.size));
  return out;
}

function freeIfBackend(buf: Float32Array): void {
  getBackend().free?.(buf);
}

function sumSquares(a: Float32Array, start: number, end: number): number {
  let s0 = 0;
  let s1 = 0;
  let i = start;
  for (; i + 1 < end; i += 2) {
    s0 += a[i] * a[i];
    s1 += a[i + 1] * a[i + 1];
  }
  if (i < end) s0 += a[i] * a[i];
  return s0 + s1;
}

function dot(a: Float32Array, b: Float32Array, start: number, end: number): number {
  let s = 0;
  for (let i = start; i < end; i++) s += a[i] * b[i];
  return s;
}
