// Causal multi-head attention over (B, nh, T, hs) tensors, and the KV cache generation appends to.
import { causalMask, concat, maskedFill, matmul, mul, softmax, Tensor } from '../tensor/index.js';
import { emptyBuf } from '../tensor/backend.js';

/** Positions a growing cache buffer starts with (it doubles when full). */
const MIN_CAPACITY = 64;

/**
 * Per-layer keys and values of the tokens seen so far, each (B, nh, T, hs) (GPT-2, seqAxis 2) or
 * (B, T, nKv*hs) (Llama family, seqAxis 1: sized by the key/value heads, not the query heads).
 */
export class KVCache {
  readonly keys: (Tensor | null)[];
  readonly values: (Tensor | null)[];
  // Per layer, the buffers that keys[l] and values[l] are the fronts of, when they grow in place (see append).
  private readonly keyRoom: (Float32Array | null)[];
  private readonly valueRoom: (Float32Array | null)[];
  constructor(readonly nLayer: number, readonly seqAxis = 2) {
    this.keys = new Array<Tensor | null>(nLayer).fill(null);
    this.values = new Array<Tensor | null>(nLayer).fill(null);
    this.keyRoom = new Array<Float32Array | null>(nLayer).fill(null);
    this.valueRoom = new Array<Float32Array | null>(nLayer).fill(null);
  }

  /** Number of cached positions. */
  get length(): number {
    const k = this.keys[0];
    return k ? k.shape[this.seqAxis] : 0;
  }

  /**
   * Append this step's k, v (Tnew positions on seqAxis) for one layer; returns the full pair. A (1, T, D) cache
   * (seqAxis 1, one sequence, nothing to differentiate: generation) grows in place in a buffer with room to spare,
   * so a decoding step copies its own row, not the whole cache; the pair returned are views of that buffer's front.
   */
  append(layer: number, k: Tensor, v: Tensor): [Tensor, Tensor] {
    if (this.seqAxis === 1 && k.rank === 3 && k.shape[0] === 1 && !k.requiresGrad && !v.requiresGrad) {
      return [this.grow(this.keys, this.keyRoom, layer, k), this.grow(this.values, this.valueRoom, layer, v)];
    }
    this.keyRoom[layer] = null;
    this.valueRoom[layer] = null;
    const pk = this.keys[layer];
    const pv = this.values[layer];
    const K = pk ? concat([pk, k], this.seqAxis) : k;
    const V = pv ? concat([pv, v], this.seqAxis) : v;
    this.keys[layer] = K.detach();
    this.values[layer] = V.detach();
    return [K, V];
  }

  /** list[layer] (1, T, D) extended by x (1, Tnew, D) inside room[layer], which doubles when full. */
  private grow(list: (Tensor | null)[], room: (Float32Array | null)[], layer: number, x: Tensor): Tensor {
    const prev = list[layer];
    const D = x.shape[2];
    const T = prev ? prev.shape[1] : 0;
    const total = T + x.shape[1];
    // NOTE: room[layer] is set only here and cleared whenever append takes the concat path, so prev is its front.
    let buf = room[layer];
    if (buf === null || buf.length < total * D) {
      const grown = emptyBuf(Math.max(MIN_CAPACITY, 2 * total) * D);
      if (prev) grown.set(prev.data);
      buf = grown;
      room[layer] = buf;
    }
    buf.set(x.data, T * D);
    const out = new Tensor(buf.subarray(0, total * D), [1, total, D]);
    list[layer] = out;
    return out;
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
