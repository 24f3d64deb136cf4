// What every architecture offers the rest of ajar (training, evaluation, generation, serving, release).
import type { KVCache, Module } from '../nn/index.js';
import type { Rng, Tensor } from '../tensor/index.js';

export interface ForwardOptions {
  /** Keys and values of earlier positions; the new tokens are appended to it. */
  cache?: KVCache;
  /** Dropout source; dropout is applied only when the module is in training mode and rng is given. */
  rng?: Rng;
}

/** A causal language model: token ids (B, T) in, next-token logits (B, T, V) out. */
export interface CausalLM {
  readonly architecture: string;
  /** The config.json object this model was built from (written back on save). */
  readonly config: Record<string, unknown>;
  readonly vocabSize: number;
  /** Maximum positions (n_positions / max_position_embeddings). */
  readonly contextLength: number;
  readonly eosTokenId: number | null;
  readonly module: Module;
  /** ids is row-major (B, T). Returns logits (B, T, V). */
  forward(ids: Int32Array, batch: number, opts?: ForwardOptions): Tensor;
  newCache(): KVCache;
  /** Copy weights from a checkpoint's tensors (names as the checkpoint stores them). */
  loadWeights(weights: Map<string, { shape: readonly number[]; data: Float32Array }>, label: string): void;
  /** The tensors to save, named as Hugging Face transformers saves them (tied weights once). */
  stateDict(): Map<string, { shape: readonly number[]; data: Float32Array }>;
  /** Fill parameters with the architecture's published initialisation. */
  initWeights(rng: Rng): void;
}
