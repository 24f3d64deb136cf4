// Optimizers with PyTorch's exact update order (torch.optim.AdamW / SGD in 1.13), gradient clipping by
// global norm, and state that is allocated once and can be saved and restored for --resume.
import { getBackend, type Tensor } from '../tensor/index.js';
import { adamwUpdate, sumSquares } from '../tensor/optim-math.js';

export interface ParamGroup {
  params: Tensor[];
  weightDecay: number;
}

export interface OptimizerState {
  kind: string;
  step: number;
  /** Per parameter (in group order), named buffers. */
  buffers: Float32Array[][];
}

export interface Optimizer {
  readonly kind: 'adamw' | 'sgd';
  lr: number;
  readonly groups: ParamGroup[];
  step(): void;
  zeroGrad(): void;
  stateDict(): OptimizerState;
  loadStateDict(s: OptimizerState): void;
}

/** nanoGPT's configure_optimizers: tensors of rank >= 2 decay; biases and norm weights do not. */
export function decayGroups(params: Tensor[], weightDecay: number): ParamGroup[] {
  return [
    { params: params.filter((p) => p.rank >= 2), weightDecay },
    { params: params.filter((p) => p.rank < 2), weightDecay: 0 },
  ];
}

function allParams(groups: ParamGroup[]): Tensor[] {
  return groups.flatMap((g) => g.params);
}

abstract class BaseOptimizer {
  stepCount = 0;
  protected readonly state: Float32Array[][];

  constructor(readonly groups: ParamGroup[], public lr: number, buffersPerParam: number) {
    const be = getBackend();
    this.state = allParams(groups).map((p) => Array.from({ length: buffersPerParam }, () => be.alloc(p.size)));
  }

  zeroGrad(): void {
    for (const p of allParams(this.groups)) p.zeroGrad();
  }

  protected loadBuffers(s: OptimizerState, kind: string): void {
    if (s.kind !== kind) throw new Error(`optimizer state is for ${s.kind}, not ${kind}`);
    if (s.buffers.length !== this.state.length) throw new Error('optimizer state does not match the parameters');
    s.buffers.forEach((bufs, i) => bufs.forEach((b, j) => {
      if (b.length !== this.state[i][j].length) throw new Error(`optimizer state for parameter ${i} has the wrong size`);
      this.state[i][j].set(b);
    }));
    this.stepCount = s.step;
  }
}

export interface AdamWOptions {
  lr: number;
  beta1?: number; // 0.9
  beta2?: number; // 0.999 (nanoGPT's shakespeare-char uses 0.99)
  eps?: number; // 1e-8
}

/** Decoupled weight decay Adam (Loshchilov & Hutter), as torch.optim.AdamW's single-tensor path. */
export class AdamW extends BaseOptimizer implements Optimizer {
  readonly kind = 'adamw';
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;

  constructor(groups: ParamGroup[], opts: AdamWOptions) {
    super(groups, opts.lr, 2);
    this.beta1 = opts.beta1 ?? 0.9;
    this.beta2 = opts.beta2 ?? 0.999;
    this.eps = opts.eps ?? 1e-8;
  }

  step(): void {
    this.stepCount++;
    const t = this.stepCount;
    const { beta1: b1, beta2: b2, eps, lr } = this;
    const bc1 = 1 - b1 ** t;
    const bc2Sqrt = Math.sqrt(1 - b2 ** t);
    const stepSize = lr / bc1;
    const update = getBackend().fused?.adamw ?? adamwUpdate;
    let k = 0;
    for (const group of this.groups) {
      const decay = Math.fround(1 - lr * group.weightDecay);
      for (const p of group.params) {
        const [m, v] = this.state[k++];
        if (!p.grad) continue;
        update(p.data, p.grad.data, m, v, { decay, beta1: b1, beta2: b2, eps, bc2Sqrt, stepSize });
      }
    }
  }

  stateDict(): OptimizerState {
    return { kind: this.kind, step: this.stepCount, buffers: this.state };
  }

  loadStateDict(s: OptimizerState): void {
    this.loadBuffers(s, this.kind);
  }
}

export interface SGDOptions {
  lr: number;
  momentum?: number; // 0
}

/** Stochastic gradient descent with momentum and coupled weight decay, as torch.optim.SGD. */
export class SGD extends BaseOptimizer implements Optimizer {
  readonly kind = 'sgd';
  readonly momentum: number;

  constructor(groups: ParamGroup[], opts: SGDOptions) {
    super(groups, opts.lr, 1);
    this.momentum = opts.momentum ?? 0;
  }

  step(): void {
    const first = this.stepCount === 0;
    this.stepCount++;
    const { lr, momentum } = this;
    let k = 0;
    for (const group of this.groups) {
      const wd = group.weightDecay;
      for (const p of group.params) {
        const [buf] = this.state[k++];
        if (!p.grad) continue;
        const g = p.grad.data;
        const w = p.data;
        for (let i = 0; i < w.length; i++) {
          let d = wd !== 0 ? Math.fround(g[i] + Math.fround(w[i] * wd)) : g[i];
          if (momentum !== 0) {
            d = buf[i] = first ? d : Math.fround(Math.fround(buf[i] * momentum) + d);
          }
          w[i] = Math.fround(w[i] - Math.fround(d * lr));
        }
      }
    }
  }

  stateDict(): OptimizerState {
    return { kind: this.kind, step: this.stepCount, buffers: this.state };
  }

  loadStateDict(s: OptimizerState): void {
    this.loadBuffers(s, this.kind);
  }
}

/**
 * Scale all gradients so their global L2 norm is at most maxNorm, as torch.nn.utils.clip_grad_norm_
 * (coefficient maxNorm / (norm + 1e-6), clamped to 1). Returns the norm before clipping.
 */
export function clipGradNorm(params: Tensor[], maxNorm: number): number {
  const be = getBackend();
  const squares = be.fused?.sumSquares ?? sumSquares;
  let sq = 0;
  for (const p of params) if (p.grad) sq += squares(p.grad.data);
  const norm = Math.sqrt(sq);
  if (maxNorm > 0 && Number.isFinite(maxNorm)) {
    const coef = Math.min(1, maxNorm / (norm + 1e-6));
    if (coef < 1) {
      const c = new Float32Array([coef]);
      for (const p of params) {
        if (!p.grad) continue;
        const g = p.grad;
        be.binary('mul', g.data, g.shape, c, g.shape.map(() => 1), g.data, g.shape);
      }
    }
  }
  return norm;
}
