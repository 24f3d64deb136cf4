// Module: a tree of named parameters and sub-modules whose dotted names are exactly the checkpoint's
// tensor names (candle's vb.pp("c_attn"), nanoGPT's c_attn), so loading and saving need no renaming tables.
import { AjarError } from '../tensor/errors.js';
import { fmtShape, shapeEq, type Shape } from '../tensor/shape.js';
import { Tensor, zeros } from '../tensor/index.js';

export interface NamedArray {
  shape: readonly number[];
  data: Float32Array;
}

export class Module {
  training = true;
  private readonly ownParams = new Map<string, Tensor>();
  private readonly ownChildren = new Map<string, Module>();

  /** Register a trainable parameter (a zero tensor of the shape) under a local name. */
  protected param(name: string, shape: Shape): Tensor {
    const t = zeros(shape).requireGrad();
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
   * Copy values from a name -> array map. Every parameter must be found (via `resolve`, which maps a
   * parameter name to the checkpoint's name or null when it may be absent) with the same shape.
   */
  loadStateDict(weights: Map<string, NamedArray>, label: string,
    resolve: (name: string) => string | null = (n) => n): void {
    for (const [name, t] of this.namedParameters()) {
      const key = resolve(name);
      if (key === null) continue;
      const w = weights.get(key);
      if (!w) {
        throw new AjarError('bad_weights', `${label}: tensor '${key}' is missing from the weights`);
      }
      if (!shapeEq(w.shape, t.shape)) {
        throw new AjarError('bad_weights',
          `${label}: tensor '${key}' has shape ${fmtShape(w.shape)}, the config implies ${fmtShape(t.shape)}`);
      }
      t.data.set(w.data);
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
