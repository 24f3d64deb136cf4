// Causal multi-head attention over (B, nh, T, hs) tensors, and the KV cache generation appends to.
import { causalMask, concat, maskedFill, matmul, mul, softmax, type Tensor } from '../tensor/index.js';

/**
 * Per-layer keys and values of the tokens seen so far, each (B, nh, T, hs) (GPT-2, seqAxis 2) or
 * (B, T, nKv*hs) (Llama family, seqAxis 1: sized by the key/value heads, not the query heads).
 */
export class KVCache {
  readonly keys: (Tensor | null)[];
  readonly values: (Tensor | null)[];
  constructor(readonly nLayer: number, readonly seqAxis = 2) {
    this.keys = new Array<Tensor | null>(nLayer).fill(null);
    this.values = new Array<Tensor | null>(nLayer).fill(null);
  }

  /** Number of cached positions. */
  get length(): number {
    const k = this.keys[0];
    return k ? k.shape[this.seqAxis] : 0;
  }

  /** Append this step's k, v (Tnew positions on seqAxis) for one layer; returns the full pair. */
  append(layer: number, k: Tensor, v: Tensor): [Tensor, Tensor] {
    const pk = this.keys[layer];
    const pv = this.values[layer];
    const K = pk ? concat([pk, k], this.seqAxis) : k;
    const V = pv ? concat([pv, v], this.seqAxis) : v;
    this.keys[layer] = K.detach();
    this.values[layer] = V.detach();
    return [K, V];
  }
}

/**
 * softmax(q k^T * scale + causal mask) v.
 * q (B, nh, Tq, hs); k, v (B, nh, Tk, hs) with Tk >= Tq, the last Tq keys aligned with the queries.
 * `dropoutFn` is applied to the attention probabilities when training.
 */
export function causalAttention(q: Tensor, k: Tensor, v: Tensor, scale: number,
  dropoutFn?: (t: Tensor) => Tensor): Tensor {
  const tq = q.shape[2];
  const tk = k.shape[2];
  let att = mul(matmul(q, k, { transB: true }), scale); // (B, nh, Tq, Tk)
  if (tq > 1) att = maskedFill(att, causalMask(tq, tk), -Infinity);
  att = softmax(att, -1);
  if (dropoutFn) att = dropoutFn(att);
  return matmul(att, v); // (B, nh, Tq, hs)
}
