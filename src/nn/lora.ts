// A LoRA adapter on one linear layer (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models",
// as PEFT's lora.Linear computes it): delta(x) = scaling * B(A(dropout(x))), A (r, in), B (out, r).
import { dropout, linear, mul, type Rng, type Tensor } from '../tensor/index.js';

/**
 * What a layer's `lora` slot holds: one adapter, or (serving) a router that picks the request's adapter and may
 * return null when that request has none on this layer.
 */
export interface LoraDelta {
  /** x (..., in) -> the addition to the layer's output (..., out), or null for none. */
  delta(x: Tensor, training: boolean): Tensor | null;
}

export class LoraAdapter implements LoraDelta {
  /** Dropout source while training; dropout applies only when set, the host is training and p > 0. */
  rng: Rng | null = null;

  constructor(
    readonly A: Tensor, // (r, in)
    readonly B: Tensor, // (out, r)
    readonly scaling: number,
    readonly dropoutP: number,
  ) {}

  get r(): number {
    return this.A.shape[0];
  }

  /** x (..., in) -> the adapter's addition to the layer's output (..., out). */
  delta(x: Tensor, training: boolean): Tensor {
    const xd = training && this.rng !== null && this.dropoutP > 0 ? dropout(x, this.dropoutP, this.rng, true) : x;
    const low = linear(xd, this.A, null, { transW: true }); // (..., r)
    return mul(linear(low, this.B, null, { transW: true }), this.scaling); // (..., out)
  }
}
