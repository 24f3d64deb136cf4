// Module: a tree of named parameters and sub-modules whose dotted names are exactly the checkpoint's
// tensor names (candle's vb.pp("c_attn"), nanoGPT's c_attn), so loading and saving need no renaming tables.
// buildShapesOnly builds a tree whose parameters hold no memory, so a checkpoint can be checked before allocating.
import { AjarError } from '../tensor/errors.js';
import { fmtShape, shapeEq, type Shape } from '../tensor/shape.js';
import { Tensor, zeros } from '../tensor/index.js';

export interface NamedArray {
  shape: readonly number[];
  data: Float32Array;
}

/**
 * Checkpoint tensors by name, read on demand: io's WeightFiles streams them from safetensors files into the
 * parameters; a Map of arrays in memory works too (asTensorSource).
 */
export interface TensorSource {
  keys(): Iterable<string>;
  /** The stored shape, or undefined when there is no such tensor. */
  shapeOf(name: string): readonly number[] | undefined;
  /** Write the tensor's values, as float32, into `out` (numel(shape) values). */
  readInto(name: string, out: Float32Array): void;
}

export type Weights = Map<string, NamedArray> | TensorSource;

/** A Map of in-memory arrays seen as a TensorSource; a TensorSource is returned as it is. */
export function asTensorSource(w: Weights): TensorSource {
  if (!(w instanceof Map)) return w;
  return {
    keys: () => w.keys(),
    shapeOf: (name) => w.get(name)?.shape,
    readInto: (name, out) => out.set(w.get(name)!.data),
  };
}

// NOTE: a shapes-only build gives each parameter its own empty placeholder tensor (distinct objects, so weight
// tying by identity still works) and remembers the declared shape here; see buildShapesOnly.
const declaredShapes = new WeakMap<Tensor, Shape>();
let shapesOnly = 0;

/**
 * Run `make` (a model or module constructor) with parameters that record their shapes but allocate nothing:
 * namedParameterShapes() and checkStateDict() work on the result, forward() must not be called. Loading uses it
 * to refuse a checkpoint whose tensors disagree with its config before allocating gigabytes for the model.
 */
export function buildShapesOnly<T>(make: () => T): T {
  shapesOnly++;
  try {
    return make();
  } finally {
    shapesOnly--;
  }
}

/**
 * Drop a parameter's float32 values (a quantised weight's: its layer holds the int8 copy now). The tensor keeps its
 * name and declared shape and becomes a placeholder holding nothing, as in a shapes-only build.
 */
export function releaseParameter(t: Tensor): void {
  if (declaredShapes.has(t)) return;
  declaredShapes.set(t, t.shape);
  t.data = new Float32Array(0);
  // NOTE: shape is readonly to users of Tensor; a placeholder's is [0] so that data and shape still agree.
  (t as { shape: readonly number[] }).shape = Object.freeze([0]);
  t.requiresGrad = false;
  t.grad = null;
  t.spareGrad = null;
}

/** A parameter's declared shape (a shapes-only placeholder's too). */
export function declaredShape(t: Tensor): Shape {
  return declaredShapes.get(t) ?? t.shape;
}

export class Module {
  training = true;
  private readonly ownParams = new Map<string, Tensor>();
  private readonly ownChildren = new Map<string, Module>();

  /** Register a trainable parameter (a zero tensor of the shape; an empty placeholder in buildShapesOnly). */
  protected param(name: string, shape: Shape): Tensor {
    let t: Tensor;
    if (shapesOnly > 0) {
      t = new Tensor(new Float32Array(0), [0]);
      declaredShapes.set(t, [...shape]);
    } else {
      t = zeros(shape).requireGrad();
    }
    this.ownParams.set(name, t);
    return t;
  }

  /** Register a child module under a local name and return it. */
  protected child<M extends Module>(name: string, m: M): M {
    this.ownChildren.set(name, m);
    return m;
  }

  /** Replace a registered parameter tensor (weight tying shares one tensor under two names). */
  protected setParam(name: string, t: Tensor): void {
    if (!this.ownParams.has(name)) throw new Error(`no parameter '${name}' to replace`);
    this.ownParams.set(name, t);
  }

  /** Every parameter under its dotted name; a tensor shared under two names appears under both. */
  namedParameters(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [n, t] of this.ownParams) out.push([prefix + n, t]);
    for (const [n, m] of this.ownChildren) out.push(...m.namedParameters(`${prefix}${n}.`));
    return out;
  }

  /** Every module under its dotted name (this one as ''), parents before children. */
  namedModules(prefix = ''): [string, Module][] {
    const out: [string, Module][] = [[prefix.replace(/\.$/, ''), this]];
    for (const [n, m] of this.ownChildren) out.push(...m.namedModules(`${prefix}${n}.`));
    return out;
  }

  /** Every parameter's declared shape under its dotted name (works on a shapes-only build). */
  namedParameterShapes(): [string, Shape][] {
    return this.namedParameters().map(([n, t]) => [n, declaredShape(t)]);
  }

  /** Distinct parameter tensors (tied weights once), in registration order. */
  parameters(): Tensor[] {
    return [...new Set(this.namedParameters().map(([, t]) => t))];
  }

  numParameters(): number {
    return this.parameters().reduce((s, t) => s + t.size, 0);
  }

  train(on = true): this {
    this.training = on;
    for (const m of this.ownChildren.values()) m.train(on);
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  zeroGrad(): void {
    for (const p of this.parameters()) p.zeroGrad();
  }

  /**
   * Check that every parameter is found (via `resolve`, which maps a parameter name to the checkpoint's name, or
   * null when it may be absent) with its declared shape. Reads no data, so it works on a shapes-only build.
   * `fields` names the config fields behind a parameter's shape, for the error message.
   */
  checkStateDict(weights: Weights, label: string, resolve: (name: string) => string | null = (n) => n,
    fields?: (name: string) => string): void {
    const source = asTensorSource(weights);
    for (const [name, shape] of this.namedParameterShapes()) {
      const key = resolve(name);
      if (key === null) continue;
      const stored = source.shapeOf(key);
      const why = fields ? ` (${fields(name)})` : '';
      if (stored === undefined) {
        throw new AjarError('bad_weights', `${label}: tensor '${key}' is missing from the weights; the config implies ${fmtShape(shape)}${why}`);
      }
      if (!shapeEq(stored, shape)) {
        throw new AjarError('bad_weights',
          `${label}: tensor '${key}' has shape ${fmtShape(stored)}, the config implies ${fmtShape(shape)}${why}`);
      }
    }
  }

  /** checkStateDict, then read every parameter's values from `weights` straight into the parameter. */
  loadStateDict(weights: Weights, label: string, resolve: (name: string) => string | null = (n) => n): void {
    this.checkStateDict(weights, label, resolve);
    const source = asTensorSource(weights);
    for (const [name, t] of this.namedParameters()) {
      const key = resolve(name);
      if (key === null) continue;
      if (declaredShapes.has(t)) throw new Error(`${label}: cannot load values into a shapes-only build`);
      source.readInto(key, t.data);
    }
  }
}

/** A container whose children are named 0, 1, 2, ... (torch.nn.ModuleList). */
export class ModuleList extends Module {
  private count = 0;
  push<M extends Module>(m: M): M {
    return this.child(String(this.count++), m);
  }
}
