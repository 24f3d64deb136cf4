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

/** A gradient rule: given the upstream gradient and the node, one gradient (or null) per input. */
export type GradRule = (g: Tensor, out: Tensor, node: GradNode) => (Tensor | null)[];

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
   * A gradient buffer set aside by zeroGrad(): the next backward writes this leaf's gradient into it instead
   * of allocating, so training reuses one gradient buffer per parameter. A .grad kept from before zeroGrad()
   * is therefore overwritten by the next backward: copy it to keep it.
   */
  spareGrad: Tensor | null = null;

  constructor(data: Float32Array, shape: Shape, requiresGrad = false) {
    if (data.length !== numel(shape)) {
      throw new ShapeError(`tensor: ${data.length} values do not fill shape ${fmtShape(shape)}`);
    }
    this.data = data;
    this.shape = Object.freeze([...shape]);
    this.requiresGrad = requiresGrad;
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

  /** Drop .grad (PyTorch's set_to_none), setting its buffer aside for the next backward to reuse. */
  zeroGrad(): void {
    if (this.grad) this.spareGrad = this.grad;
    this.grad = null;
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
    // Buffers of forward tensors, leaves' .grad and the seed are never given back; reshape rules share a
    // gradient's buffer, so a buffer is given back only when no pending gradient holds it.
    const keep = new Set<Float32Array>();
    if (seed) keep.add(seed.data);
    for (const t of order) {
      keep.add(t.data);
      if (t.grad) keep.add(t.grad.data);
    }
    const holders = new Map<Float32Array, number>();
    const hold = (d: Float32Array, k: number): void => {
      holders.set(d, (holders.get(d) ?? 0) + k);
    };
    const dropped = new Set<Float32Array>();
    const drop = (d: Float32Array): void => {
      if (be.free && !keep.has(d)) dropped.add(d);
    };
    const grads = new Map<Tensor, Tensor>();
    grads.set(this, g0);
    hold(g0.data, 1);
    noGrad(() => {
      for (let i = order.length - 1; i >= 0; i--) {
        const t = order[i];
        const g = grads.get(t);
        grads.delete(t);
        if (!g) continue;
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
        const ins = rule(g, t, node);
        node.inputs.forEach((inp, k) => {
          const gi = ins[k];
          if (!gi || !inp.requiresGrad) return;
          if (gi.shape.length !== inp.shape.length || gi.size !== inp.size) {
            throw new ShapeError(`backward: rule for '${node.op}' gave ${fmtShape(gi.shape)} for input ${fmtShape(inp.shape)}`);
          }
          const prev = grads.get(inp);
          if (prev && prev.data !== gi.data && !keep.has(prev.data) && holders.get(prev.data) === 1) {
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
        freeDropped(be, dropped, holders, keep);
      }
    });
  }
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
 * (`canTake`), else a fresh copy.
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
  if (canTake) return new Tensor(g.data, t.shape);
  const out = emptyBuf(g.size);
  out.set(g.data);
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
