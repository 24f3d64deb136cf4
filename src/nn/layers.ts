// Standard layers with PyTorch / Hugging Face parameter names and layouts.
import { add, embedding, layerNorm, linear, rmsNorm, type Tensor } from '../tensor/index.js';
import type { LoraDelta } from './lora.js';
import { Module } from './module.js';

/** torch.nn.Linear: weight (out, in), y = x W^T + b. */
export class Linear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  /** A LoRA adapter beside the weight (train/lora.ts attaches it); not a parameter of this module. */
  lora: LoraDelta | null = null;
  constructor(readonly inFeatures: number, readonly outFeatures: number, bias = true) {
    super();
    this.weight = this.param('weight', [outFeatures, inFeatures]);
    this.bias = bias ? this.param('bias', [outFeatures]) : null;
  }

  forward(x: Tensor): Tensor {
    const y = linear(x, this.weight, this.bias, { transW: true }); // (..., out)
    const d = this.lora ? this.lora.delta(x, this.training) : null; // (..., out) or none
    return d ? add(y, d) : y;
  }
}

/** GPT-2's Conv1D: weight stored (in, out), y = x W + b (one of STYLE.md's explicit layout exceptions). */
export class Conv1D extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  /** A LoRA adapter beside the weight; its A is (r, in) and B (out, r) whatever the weight's layout (PEFT's). */
  lora: LoraDelta | null = null;
  constructor(readonly inFeatures: number, readonly outFeatures: number) {
    super();
    this.weight = this.param('weight', [inFeatures, outFeatures]);
    this.bias = this.param('bias', [outFeatures]);
  }

  forward(x: Tensor): Tensor {
    const y = linear(x, this.weight, this.bias); // (..., out)
    const d = this.lora ? this.lora.delta(x, this.training) : null; // (..., out) or none
    return d ? add(y, d) : y;
  }
}

export class Embedding extends Module {
  readonly weight: Tensor;
  constructor(readonly num: number, readonly dim: number) {
    super();
    this.weight = this.param('weight', [num, dim]);
  }

  forward(ids: Int32Array, shape: readonly number[]): Tensor {
    return embedding(this.weight, ids, shape); // (...shape, dim)
  }
}

export class LayerNorm extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  constructor(readonly dim: number, readonly eps = 1e-5) {
    super();
    this.weight = this.param('weight', [dim]);
    this.bias = this.param('bias', [dim]);
    this.weight.data.fill(1);
  }

  forward(x: Tensor): Tensor {
    return layerNorm(x, this.weight, this.bias, this.eps);
  }
}

export class RMSNorm extends Module {
  readonly weight: Tensor;
  constructor(readonly dim: number, readonly eps = 1e-6) {
    super();
    this.weight = this.param('weight', [dim]);
    this.weight.data.fill(1);
  }

  forward(x: Tensor): Tensor {
    return rmsNorm(x, this.weight, this.eps);
  }
}
