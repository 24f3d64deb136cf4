// The data layer's shapes: what a data file is (DataSpec), what loading it gives (a token stream for language
// modelling, or a list of examples), and the batches the batchers hand the trainer.

/**
 * lm: next-token prediction on running text. instruct: prompt -> completion, loss on the completion only.
 * classification: text -> one of a label set (the model reads the last real token). regression: text -> one number (MSE).
 */
export type Task = 'lm' | 'instruct' | 'classification' | 'regression';

export type DataFormat = 'text' | 'jsonl' | 'csv';

export interface DataSpec {
  /** The data file. */
  path: string;
  /** Default from the extension: .jsonl / .json-lines / .ndjson -> jsonl, .csv -> csv, anything else -> text (.json is refused). */
  format?: DataFormat;
  /**
   * Default: inferred from the first record's fields. prompt + completion -> instruct; text + label -> classification;
   * text only -> lm; plain text -> lm. NOTE: regression is never inferred (labels 0/1 look numeric but are classes): say so.
   */
  task?: Task;
  /** Field (JSONL) or column (CSV) names; defaults text, label, prompt, completion. */
  textField?: string;
  labelField?: string;
  promptField?: string;
  completionField?: string;
  /**
   * The label set for classification, in id order. Default: the sorted distinct labels of this file (numerically if all
   * are numbers, else by code unit). Pass the training set's labels when loading validation data, so that ids agree and a
   * validation label outside the set is an error naming its line.
   */
  labels?: string[];
  /**
   * Read language-modelling data as documents (examples) instead of one token stream: plain text cut at each line
   * ('line', blank lines skipped), at blank lines ('paragraph'), or whole ('file': a folder's files are one document
   * each); JSONL/CSV text records one document each ('record'). Default: one stream. DP-SGD's unit of privacy.
   */
  documents?: Documents;
}

export type Documents = 'line' | 'paragraph' | 'file' | 'record';

/**
 * What the data layer needs from a tokenizer (io/tokenizer's Tokenizer satisfies it).
 * NOTE: encode() adds no special tokens; the data layer puts bosTokenId first when addBos, and eosTokenId after each record.
 */
export interface TokenizerLike {
  readonly kind: string;
  encode(text: string): number[];
  readonly eosTokenId: number | null;
  readonly bosTokenId: number | null;
  readonly addBos: boolean;
  readonly vocabSize: number;
  /** A stable identity for cache invalidation; without it one is derived (see tokenizerFingerprint). */
  fingerprint?(): string;
  /** Used, when present, to fingerprint the whole vocabulary. */
  tokenBytes?(id: number): Uint8Array;
}

/** How a dataset was obtained from the cache beside its file. */
export interface CacheInfo {
  /** The cache file, or null when caching was off or the folder could not be written. */
  path: string | null;
  /** True when the ids were read from the cache instead of tokenised. */
  hit: boolean;
}

/** A language-modelling corpus: one stream of ids (records joined, each followed by eos when the tokenizer has one). */
export interface StreamData {
  kind: 'stream';
  task: 'lm';
  ids: Int32Array; // (N,)
  /** The data file, for messages. */
  source: string;
  cache?: CacheInfo;
}

export interface Example {
  ids: Int32Array; // (L,)
  /** instruct: targets[t] = ids[t + 1] when that token is part of the completion (or its eos), else -100. */
  targets?: Int32Array; // (L,)
  /** classification: the index of the label in ExampleData.labels. */
  label?: number;
  /** regression: the target value. */
  value?: number;
  /** The 1-based line of the file where the record starts, for messages. */
  line?: number;
}

export interface ExampleData {
  kind: 'examples';
  task: Task;
  examples: Example[];
  /** classification: the label set, id order. */
  labels?: string[];
  source: string;
  cache?: CacheInfo;
}

export type Dataset = StreamData | ExampleData;

/** -100: the target of a position that takes no loss (PyTorch's cross_entropy ignore_index). */
export const IGNORE_INDEX = -100;

export interface LoadOptions {
  /** Read and write the ids cache beside the data file (default true). */
  cache?: boolean;
  /** Called while tokenising: records done of total (characters for plain text). Not called on a cache hit. */
  onProgress?: (done: number, total: number) => void;
}

/** A batch of random windows of a token stream. */
export interface LMBatch {
  x: Int32Array; // (B, T) row-major
  y: Int32Array; // (B, T): x shifted left by one token
  batch: number; // B
  block: number; // T
}

/** A batch of examples, padded on the right. */
export interface ExampleBatch {
  ids: Int32Array; // (B, T), padding = padId
  batch: number; // B
  /** T: the longest example of this batch after truncation to the block size (or the block size with padToBlock). */
  block: number;
  attentionMask: Float32Array; // (B, T): 1 on real tokens, 0 on padding
  lengths: Int32Array; // (B,): real tokens per row; classification reads position lengths[b] - 1
  /** instruct: next-token targets, IGNORE_INDEX on the prompt and the padding. */
  targets?: Int32Array; // (B, T)
  /** classification: label ids. */
  labels?: Int32Array; // (B,)
  /** regression: target values. */
  values?: Float32Array; // (B,)
  /** Which examples of the dataset these rows are. */
  indices: Int32Array; // (B,)
  /**
   * Documents cut into windows (ExampleBatcher's `windows` option): the batch's rows are windows, and example e
   * of the batch owns rows spans[e] .. spans[e + 1]; indices then names each row's example. Absent: one row each.
   */
  spans?: Int32Array; // (examples + 1,)
}
