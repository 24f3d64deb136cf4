// What every architecture offers the rest of ajar (training, evaluation, generation, serving, release).
import type { KVCache, Module, Weights } from '../nn/index.js';
import type { Rng, Tensor } from '../tensor/index.js';

export interface ForwardOptions {
  /** Keys and values of earlier positions; the new tokens are appended to it. */
  cache?: KVCache;
  /** Dropout source; dropout is applied only when the module is in training mode and rng is given. */
  rng?: Rng;
}

/** What every model offers: config, parameters, checkpoint I/O and initialisation. */
export interface BaseModel {
  readonly architecture: string;
  readonly task: 'causal-lm' | 'sequence-classification';
  /** The config.json object this model was built from (written back on save). */
  readonly config: Record<string, unknown>;
  readonly vocabSize: number;
  /** Maximum positions (n_positions / max_position_embeddings). */
  readonly contextLength: number;
  readonly eosTokenId: number | null;
  readonly module: Module;
  /**
   * Check a checkpoint's tensor names and shapes against this model's parameters without reading any data
   * (it works on a buildShapesOnly build, before the model's memory is allocated).
   */
  checkWeights(weights: Weights, label: string): void;
  /** checkWeights, then copy the checkpoint's tensors (names as the checkpoint stores them) into the parameters. */
  loadWeights(weights: Weights, label: string): void;
  /** The tensors to save, named as Hugging Face transformers saves them (tied weights once). */
  stateDict(): Map<string, { shape: readonly number[]; data: Float32Array }>;
  /** Fill parameters with the architecture's published initialisation. */
  initWeights(rng: Rng, opts?: { bias?: boolean }): void;
}

/** A causal language model: token ids (B, T) in, next-token logits (B, T, V) out. */
export interface CausalLM extends BaseModel {
  readonly task: 'causal-lm';
  /** ids is row-major (B, T). Returns logits (B, T, V). */
  forward(ids: Int32Array, batch: number, opts?: ForwardOptions): Tensor;
  newCache(): KVCache;
}

/** A sequence classifier or regressor: one score vector per row, read at each row's last real token. */
export interface SequenceClassifier extends BaseModel {
  readonly task: 'sequence-classification';
  readonly numLabels: number;
  readonly labels: string[];
  readonly regression: boolean;
  /** ids (B, T) row-major; lastIndex[b] is the position of row b's last real token. Returns (B, numLabels). */
  classify(ids: Int32Array, batch: number, lastIndex: Int32Array, opts?: ForwardOptions): Tensor;
}

export type AnyModel = CausalLM | SequenceClassifier;
