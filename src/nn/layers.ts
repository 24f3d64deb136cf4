// Standard layers with PyTorch / Hugging Face parameter names and layouts. Linear, Conv1D and Embedding may hold
// their weight as int8 (`quant`, set by models/quantize.ts): forward then runs the int8 kernel, for inference only.
import {
  add, embedding, embeddingQ8, layerNorm, linear, linearQ8, matmul, rmsNorm, type Q8Matrix, type Tensor,
} from '../tensor/index.js';
import type { LoraDelta } from './lora.js';
import { Module } from './module.js';

/** torch.nn.Linear: weight (out, in), y = x W^T + b. */
export class Linear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  /** A LoRA adapter beside the weight (train/lora.ts attaches it); not a parameter of this module. */
  lora: LoraDelta | null = null;
  /** The weight as int8 (out, in) with group-wise scales, when quantised; the float32 weight is then released. */
  quant: Q8Matrix | null = null;
  constructor(readonly inFeatures: number, readonly outFeatures: number, bias = true) {
    super();
    this.weight = this.param('weight', [outFeatures, inFeatures]);
    this.bias = bias ? this.param('bias', [outFeatures]) : null;
  }

  forward(x: Tensor): Tensor {
    const y = this.quant ? linearQ8(x, this.quant, this.bias) : linear(x, this.weight, this.bias, { transW: true }); // (..., out)
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
  /** The weight as int8, stored transposed to (out, in) so each output's inputs are contiguous, when quantised. */
  quant: Q8Matrix | null = null;
  constructor(readonly inFeatures: number, readonly outFeatures: number) {
    super();
    this.weight = this.param('weight', [inFeatures, outFeatures]);
    this.bias = this.param('bias', [outFeatures]);
  }

  forward(x: Tensor): Tensor {
    const y = this.quant ? linearQ8(x, this.quant, this.bias) : linear(x, this.weight, this.bias); // (..., out)
    const d = this.lora ? this.lora.delta(x, this.training) : null; // (..., out) or none
    return d ? add(y, d) : y;
  }
}

export class Embedding extends Module {
  readonly weight: Tensor;
  /** The table as int8 (num, dim) with group-wise scales, when quantised. */
  quant: Q8Matrix | null = null;
  constructor(readonly num: number, readonly dim: number) {
    super();
    this.weight = this.param('weight', [num, dim]);
  }

  forward(ids: Int32Array, shape: readonly number[]): Tensor {
    return this.quant ? embeddingQ8(this.quant, ids, shape) : embedding(this.weight, ids, shape); // (...shape, dim)
  }
}

/**
 * Logits (..., V) of hidden states x (..., C) through an LM head: its own bias-free Linear, or the token embedding
 * (V, C) it is tied to; the int8 copy when the weight is quantised.
 */
export function lmHeadLogits(x: Tensor, lmHead: Linear | null, tied: Embedding): Tensor {
  const q = lmHead ? lmHead.quant : tied.quant;
  if (q) return linearQ8(x, q, null);
  return matmul(x, lmHead ? lmHead.weight : tied.weight, { transB: true }); // (..., V)
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
