// Tensor: a contiguous row-major float32 buffer with a shape, and the reverse-mode autograd graph.
// Ops live in ops.ts; this file holds the class, grad mode and the backward pass.
import { emptyBuf, getBackend, type Backend } from './backend.js';
import { fmtShape, numel, shapeEq, ShapeError, type Shape } from './shape.js';

/** One recorded primitive application: the gradient rule for `op` in ops.ts turns dOut into dInputs. */
export interface GradNode {
  op: string;
  inputs: Tensor[];
  attrs: Record<string, unknown>;
}

/**
 * A gradient rule: given the upstream gradient and the node, one gradient (or null) per input. `into[k]`, when
 * given, is input k's pending gradient, a buffer this backward pass alone holds: a rule may add its gradient for
 * input k into it in place and return it as that input's gradient (the same Tensor), rounding exactly as
 * `into[k] + gradient` would; rules that ignore it return a fresh gradient, which the pass adds.
 */
export type GradRule = (g: Tensor, out: Tensor, node: GradNode, into?: readonly (Tensor | null)[]) => (Tensor | null)[];

/** Observers of a backward pass (DP-SGD's per-example gradients read each recorded op's output gradient). */
export interface BackwardHooks {
  /** t's full gradient g, called once per recorded tensor before t's rule runs; g must not be kept or changed. */
  onOutputGrad(t: Tensor, g: Tensor): void;
}

let gradEnabled = true;
let gradRules: Record<string, GradRule> = {};

/** ops.ts installs its rule table here (tensor.ts cannot import ops.ts without a cycle at load time). */
export function installGradRules(rules: Record<string, GradRule>): void {
  gradRules = rules;
}

/** Tensors created while transientGraph() runs (null outside it). */
let created: Tensor[] | null = null;
/** Graph tensors that nothing outside their transientGraph() call holds (see there). */
const transients = new WeakSet<Tensor>();
/** .grad buffers that backward made for their leaf alone, which zeroGrad() may give back. */
const ownGradBuffers = new WeakSet<Float32Array>();

/**
 * Run fn, which builds part of an autograd graph (a model's forward pass and its loss), and mark the recorded
 * tensors it creates on the way to its result as transient: fn promises that it keeps none of them beyond its
 * return (no tensor, no view of one's data), so only the graph holds them. A backward pass through them then
 * gives each one's buffer back to the backend as soon as it has used it, as PyTorch frees saved activations
 * while it releases the graph, so the activations and the growing parameter gradients do not peak together.
 * The result, tensors sharing its buffer, leaves and tensors made outside fn are never given back. After the
 * backward pass a transient tensor's data must not be read.
 */
export function transientGraph<T extends Tensor>(fn: () => T): T {
  const outer = created;
  const mine: Tensor[] = [];
  created = mine;
  let result: T;
  try {
    result = fn();
  } finally {
    created = outer;
    outer?.push(...mine);
  }
  for (const t of mine) if (t.node && t !== result && t.data !== result.data) transients.add(t);
  return result;
}

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Run fn without recording the autograd graph (evaluation, generation, optimizer updates). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

export class Tensor {
  readonly shape: readonly number[];
  data: Float32Array;
  requiresGrad: boolean;
  grad: Tensor | null = null;
  node: GradNode | null = null;
  /** Set once backward has consumed this tensor's graph node (a second backward through it is an error). */
  released = false;
  /**
   * A gradient buffer set aside by zeroGrad() (where the backend cannot take it back, or the .grad was not one
   * backward made): the next backward writes this leaf's gradient into it instead of allocating. A .grad kept
   * from before zeroGrad() is therefore overwritten by the next backward: copy it to keep it.
   */
  spareGrad: Tensor | null = null;

  constructor(data: Float32Array, shape: Shape, requiresGrad = false) {
    if (data.length !== numel(shape)) {
      throw new ShapeError(`tensor: ${data.length} values do not fill shape ${fmtShape(shape)}`);
    }
    this.data = data;
    this.shape = Object.freeze([...shape]);
    this.requiresGrad = requiresGrad;
    created?.push(this);
  }

  get size(): number {
    return this.data.length;
  }

  get rank(): number {
    return this.shape.length;
  }

  /** The single value of a one-element tensor. */
  item(): number {
    if (this.data.length !== 1) throw new ShapeError(`item: tensor of shape ${fmtShape(this.shape)} has ${this.data.length} values`);
    return this.data[0];
  }

  toArray(): number[] {
    return Array.from(this.data);
  }

  /** Same storage, no graph. */
  detach(): Tensor {
    return new Tensor(this.data, this.shape);
  }

  /**
   * Drop .grad (PyTorch's set_to_none). A buffer that backward made for this leaf goes back to the backend at once
   * where it can take buffers back (Backend.free), so the next forward pass can use the memory; elsewhere it is
   * set aside for the next backward to reuse. Either way a .grad kept from before zeroGrad() must not be read
   * afterwards: copy it to keep it.
   */
  zeroGrad(): void {
    const g = this.grad;
    this.grad = null;
    if (!g) return;
    const be = getBackend();
    if (be.free && ownGradBuffers.has(g.data)) {
      ownGradBuffers.delete(g.data);
      this.spareGrad = null;
      be.free(g.data);
    } else {
      this.spareGrad = g;
    }
  }

  /** Mark as a leaf that accumulates .grad. */
  requireGrad(on = true): this {
    this.requiresGrad = on;
    return this;
  }

  toString(): string {
    return `Tensor${fmtShape(this.shape)}`;
  }

  /**
   * Reverse-mode autograd from this tensor. Without a seed the tensor must hold one value (a loss).
   * Leaf tensors with requiresGrad accumulate into .grad; the graph is released afterwards.
   */
  backward(seed?: Tensor, hooks?: BackwardHooks): void {
    if (!this.requiresGrad) throw new Error('backward: this tensor does not require grad (nothing to differentiate)');
    if (this.released) {
      throw new Error('backward: this graph was already released by an earlier backward (build the graph again)');
    }
    if (seed && !shapeEq(seed.shape, this.shape)) {
      throw new ShapeError(`backward: seed shape ${fmtShape(seed.shape)} differs from the output's ${fmtShape(this.shape)}`);
    }
    let g0 = seed;
    if (!g0) {
      if (this.size !== 1) throw new ShapeError(`backward: a seed gradient is needed for shape ${fmtShape(this.shape)}`);
      const one = getBackend().alloc(1);
      one[0] = 1;
      g0 = new Tensor(one, this.shape);
    }
    const order = topoOrder(this);
    const be = getBackend();
    // Gradients of intermediate tensors are seen by nothing but this pass: once the last use of one is done,
    // its buffer goes back to the backend at once (as PyTorch frees them), so backward reuses its own memory.
    // Buffers of forward tensors, leaves' .grad and the seed are never given back as gradients; reshape rules
    // share a gradient's buffer, so a buffer is given back only when no pending gradient holds it.
    const keep = new Set<Float32Array>();
    if (seed) keep.add(seed.data);
    for (const t of order) {
      keep.add(t.data);
      if (t.grad) keep.add(t.grad.data);
    }
    const activations = transientBuffers(order, this, be, seed);
    const holders = new Map<Float32Array, number>();
    const hold = (d: Float32Array, k: number): void => {
      holders.set(d, (holders.get(d) ?? 0) + k);
    };
    const dropped = new Set<Float32Array>();
    const drop = (d: Float32Array): void => {
      if (be.free && !keep.has(d)) dropped.add(d);
    };
    /** A pending gradient this pass alone holds, which may be accumulated into in place. */
    const owned = (p: Tensor | undefined): p is Tensor => p !== undefined && !keep.has(p.data) && holders.get(p.data) === 1;
    /** t is done with: its activation buffer goes back once every tensor sharing it is done too. */
    const retire = (t: Tensor): void => {
      const left = activations.get(t.data);
      if (left === undefined) return;
      if (left > 1) {
        activations.set(t.data, left - 1);
        return;
      }
      activations.delete(t.data);
      // NOTE: a buffer some pending gradient shares (no rule makes one, but nothing forbids it) is left to the collector.
      if ((holders.get(t.data) ?? 0) === 0) be.free?.(t.data);
    };
    const grads = new Map<Tensor, Tensor>();
    grads.set(this, g0);
    hold(g0.data, 1);
    noGrad(() => {
      for (let i = order.length - 1; i >= 0; i--) {
        const t = order[i];
        const g = grads.get(t);
        grads.delete(t);
        if (!g) {
          retire(t);
          continue;
        }
        // The gradient of t is complete here (every user of t came before it): the hook sees it before t's rule.
        if (hooks && t.node) hooks.onOutputGrad(t, g);
        hold(g.data, -1);
        drop(g.data);
        const node = t.node;
        if (!node) {
          if (t.released) throw new Error('backward: reached a part of the graph released by an earlier backward');
          // NOTE: a buffer of the leaf's own, never the upstream gradient itself (rules such as add's pass g
          // through), so in-place changes to one .grad (clipping, DP-SGD noise) cannot reach another tensor's.
          t.grad = accumulateLeaf(t, g, !keep.has(g.data) && (holders.get(g.data) ?? 0) === 0 && be.free !== undefined);
          keep.add(t.grad.data);
          freeDropped(be, dropped, holders, keep);
          continue;
        }
        const rule = gradRules[node.op];
        if (!rule) throw new Error(`backward: no gradient rule for op '${node.op}'`);
        const into = node.inputs.map((inp) => {
          const p = grads.get(inp);
          return inp.requiresGrad && owned(p) ? p : null;
        });
        const ins = rule(g, t, node, into);
        node.inputs.forEach((inp, k) => {
          const gi = ins[k];
          if (!gi || !inp.requiresGrad) return;
          if (gi.shape.length !== inp.shape.length || gi.size !== inp.size) {
            throw new ShapeError(`backward: rule for '${node.op}' gave ${fmtShape(gi.shape)} for input ${fmtShape(inp.shape)}`);
          }
          const prev = grads.get(inp);
          if (prev && gi === into[k]) {
            // The rule added its gradient into the pending one.
          } else if (prev && prev.data !== gi.data && owned(prev)) {
            // The pending gradient's buffer is this pass's alone: accumulate in place.
            be.binary('add', prev.data, prev.shape, gi.data, gi.shape, prev.data, prev.shape);
            drop(gi.data);
          } else if (prev) {
            const sum = addGrad(prev, gi);
            hold(prev.data, -1);
            drop(prev.data);
            drop(gi.data);
            grads.set(inp, sum);
            hold(sum.data, 1);
          } else {
            grads.set(inp, gi);
            hold(gi.data, 1);
          }
        });
        t.node = null; // release the graph as we go (PyTorch's retain_graph=False)
        t.released = true;
        retire(t);
        freeDropped(be, dropped, holders, keep);
      }
    });
  }
}

/**
 * The buffers of transient tensors (transientGraph) in the graph that backward may give back, each with the number
 * of graph tensors sharing it: none where the backend cannot take buffers back, and never one that the root, a
 * leaf, a tensor made outside transientGraph, a .grad or the seed shares.
 */
function transientBuffers(order: Tensor[], root: Tensor, be: Backend, seed: Tensor | undefined): Map<Float32Array, number> {
  const counts = new Map<Float32Array, number>();
  if (!be.free) return counts;
  const pinned = new Set<Float32Array>();
  for (const t of order) {
    if (t !== root && t.node && transients.has(t)) counts.set(t.data, (counts.get(t.data) ?? 0) + 1);
    else pinned.add(t.data);
  }
  for (const t of order) if (t.grad) pinned.add(t.grad.data);
  for (const d of pinned) counts.delete(d);
  if (seed) counts.delete(seed.data);
  return counts;
}

/** Give back the dropped buffers that no pending gradient holds. */
function freeDropped(be: Backend, dropped: Set<Float32Array>, holders: Map<Float32Array, number>,
  keep: Set<Float32Array>): void {
  for (const d of dropped) {
    if ((holders.get(d) ?? 0) > 0 || keep.has(d)) continue;
    holders.delete(d);
    be.free?.(d);
  }
  dropped.clear();
}

/**
 * The leaf's .grad after adding g: accumulated in place into an existing .grad; otherwise written into the
 * buffer zeroGrad() set aside (spareGrad) when it fits, else g's own buffer when this pass owns it alone
 * (`canTake`), else a fresh copy; those two are the leaf's own, which zeroGrad() gives back.
 */
function accumulateLeaf(t: Tensor, g: Tensor, canTake: boolean): Tensor {
  const be = getBackend();
  if (t.grad) {
    be.binary('add', t.grad.data, t.grad.shape, g.data, g.shape, t.grad.data, t.grad.shape);
    return t.grad;
  }
  const spare = t.spareGrad;
  t.spareGrad = null;
  if (spare && spare.size === g.size && shapeEq(spare.shape, t.shape)) {
    spare.data.set(g.data);
    return spare;
  }
  const out = canTake ? g.data : emptyBuf(g.size);
  if (!canTake) out.set(g.data);
  ownGradBuffers.add(out);
  return new Tensor(out, t.shape);
}

function addGrad(a: Tensor, b: Tensor): Tensor {
  const be = getBackend();
  const out = emptyBuf(a.size);
  be.binary('add', a.data, a.shape, b.data, b.shape, out, a.shape);
  return new Tensor(out, a.shape);
}

/** Tensors reachable from root through recorded nodes, inputs before users. */
function topoOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  const stack: [Tensor, number][] = [[root, 0]];
  seen.add(root);
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    const [t, i] = top;
    const inputs = t.node ? t.node.inputs : [];
    if (i < inputs.length) {
      top[1] = i + 1;
      const c = inputs[i];
      if (c.requiresGrad && !seen.has(c)) {
        seen.add(c);
        stack.push([c, 0]);
      }
    } else {
      order.push(t);
      stack.pop();
    }
  }
  return order;
}
