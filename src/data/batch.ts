// Batches for training and evaluation. StreamBatcher: random windows of a token stream (nanoGPT's get_batch).
// ExampleBatcher: shuffled epochs of examples, right-padded, with attention masks, targets, labels or values.
// Both are deterministic under a seed, and ExampleBatcher's (epoch, cursor) state resumes a run exactly.
import { AjarError } from '../tensor/errors.js';
import { Rng } from '../tensor/random.js';
import { IGNORE_INDEX } from './types.js';
import type { ExampleBatch, ExampleData, LMBatch, StreamData } from './types.js';

function checkPositiveInt(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 1) throw new AjarError('bad_config', `${name} must be a positive integer, got ${v}`);
}

/** An error when the block size exceeds the model's context (its n_positions / max_position_embeddings). */
export function checkBlockSize(blockSize: number, contextLength: number): void {
  checkPositiveInt('block size', blockSize);
  if (blockSize > contextLength) {
    throw new AjarError('bad_config', `block size ${blockSize} is above the model's context length ${contextLength}; use a block size of ${contextLength} or less`);
  }
}

/** murmur3's 32-bit finaliser: a bijection that scatters nearby inputs. */
function fmix32(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** A 32-bit seed derived from (seed, stream, index): different streams and indices give unrelated generators. */
export function deriveSeed(seed: number, stream: number, index: number): number {
  return fmix32((fmix32((fmix32(Math.floor(seed) >>> 0) + stream) >>> 0) + index) >>> 0);
}

const EPOCH_STREAM = 0x0e90c4;
export const SPLIT_STREAM = 0x5b1177;

/** A uniformly random permutation of 0..n-1 (Fisher-Yates) drawn from rng. */
export function shuffledIndices(n: number, rng: Rng): Int32Array {
  const perm = new Int32Array(n);
  for (let i = 0; i < n; i++) perm[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
  return perm;
}

/** The order of the examples in epoch e: a function of (seed, e) only, so a resumed run sees the same order. */
export function epochPermutation(n: number, seed: number, epoch: number): Int32Array {
  return shuffledIndices(n, new Rng(deriveSeed(seed, EPOCH_STREAM, epoch)));
}

/**
 * nanoGPT's get_batch: ix = torch.randint(len(data) - block_size, (batch_size,)); x = data[i:i+T]; y = data[i+1:i+1+T].
 * The offsets come from the rng passed in, so the trainer saves and restores them with its own state.
 */
export class StreamBatcher {
  readonly batchSize: number;
  readonly blockSize: number;
  /** The offsets of the last batch's rows, (B,). */
  readonly offsets: Int32Array;
  private readonly data: StreamData;
  private readonly rng: Rng;

  constructor(data: StreamData, batchSize: number, blockSize: number, rng: Rng) {
    checkPositiveInt('batch size', batchSize);
    checkPositiveInt('block size', blockSize);
    if (data.ids.length < blockSize + 1) {
      throw new AjarError('bad_data', `${data.source} has ${data.ids.length} tokens; a block size of ${blockSize} needs at least ${blockSize + 1} (a window and the token after it); lower the block size or add data`);
    }
    this.data = data;
    this.batchSize = batchSize;
    this.blockSize = blockSize;
    this.rng = rng;
    this.offsets = new Int32Array(batchSize);
  }

  next(): LMBatch {
    const B = this.batchSize;
    const T = this.blockSize;
    const ids = this.data.ids;
    const x = new Int32Array(B * T); // (B, T)
    const y = new Int32Array(B * T); // (B, T)
    for (let b = 0; b < B; b++) {
      const i = this.rng.int(ids.length - T);
      this.offsets[b] = i;
      x.set(ids.subarray(i, i + T), b * T);
      y.set(ids.subarray(i + 1, i + 1 + T), b * T);
    }
    return { x, y, batch: B, block: T };
  }

  /**
   * One ordered pass over the stream in non-overlapping windows (offsets 0, T, 2T, ...), for evaluating on every token
   * once; the last batch may have fewer rows, and a tail shorter than T + 1 tokens is left out.
   */
  *sequential(): Iterable<LMBatch> {
    const T = this.blockSize;
    const ids = this.data.ids;
    const windows = Math.floor((ids.length - 1) / T);
    for (let w0 = 0; w0 < windows; w0 += this.batchSize) {
      const B = Math.min(this.batchSize, windows - w0);
      const x = new Int32Array(B * T); // (B, T)
      const y = new Int32Array(B * T); // (B, T)
      for (let b = 0; b < B; b++) {
        const i = (w0 + b) * T;
        x.set(ids.subarray(i, i + T), b * T);
        y.set(ids.subarray(i + 1, i + 1 + T), b * T);
      }
      yield { x, y, batch: B, block: T };
    }
  }
}

export interface ExampleBatcherState {
  epoch: number;
  cursor: number;
}

export interface ExampleBatcherOptions {
  /** Pad every batch to blockSize instead of to its longest example (default false). */
  padToBlock?: boolean;
  /**
   * Language-modelling documents (task lm) cut into windows instead of truncated: a document of L tokens gives
   * ceil((L - 1) / blockSize) rows, window k predicting tokens k T + 1 .. k T + T, so every token after the first
   * is a target once; the batch's spans say which rows are whose (default false).
   */
  windows?: boolean;
}

/**
 * Shuffled epochs of examples. Each epoch visits every example once in the order epochPermutation(n, seed, epoch);
 * the epoch's last batch holds the remainder (fewer rows when n is not a multiple of the batch size).
 * Examples longer than blockSize are truncated from the right. Padding is on the right.
 * NOTE: with causal attention, right padding cannot change the real positions (they never attend forward), so the
 * attention mask is implied; it is returned anyway for models and losses that want it. Classification reads position
 * lengths[b] - 1, the last real token.
 */
export class ExampleBatcher {
  readonly batchSize: number;
  readonly blockSize: number;
  readonly padId: number;
  readonly seed: number;
  private readonly data: ExampleData;
  private readonly padToBlock: boolean;
  private readonly windows: boolean;
  private epochNow = 0;
  private cursor = 0;
  private perm: Int32Array;
  private permEpoch = 0;

  constructor(data: ExampleData, batchSize: number, blockSize: number, padId: number, seed: number, options: ExampleBatcherOptions = {}) {
    checkPositiveInt('batch size', batchSize);
    checkPositiveInt('block size', blockSize);
    if (!Number.isInteger(padId) || padId < 0) throw new AjarError('bad_config', `pad id must be a token id (an integer >= 0), got ${padId}`);
    if (data.examples.length === 0) throw new AjarError('bad_data', `${data.source} has no examples`);
    if (data.task === 'instruct') checkCompletionsFit(data, blockSize);
    this.data = data;
    this.batchSize = batchSize;
    this.blockSize = blockSize;
    this.padId = padId;
    this.seed = seed;
    this.padToBlock = options.padToBlock === true;
    this.windows = options.windows === true && data.task === 'lm';
    this.perm = epochPermutation(data.examples.length, seed, 0);
  }

  /** The epoch the next batch comes from (0-based). */
  get epoch(): number {
    return this.epochNow;
  }

  /** Batches per epoch: ceil(n / batchSize). */
  get batchesPerEpoch(): number {
    return Math.ceil(this.data.examples.length / this.batchSize);
  }

  next(): ExampleBatch {
    const n = this.data.examples.length;
    if (this.permEpoch !== this.epochNow) {
      this.perm = epochPermutation(n, this.seed, this.epochNow);
      this.permEpoch = this.epochNow;
    }
    const end = Math.min(n, this.cursor + this.batchSize);
    const batch = this.makeBatch(this.perm.subarray(this.cursor, end));
    this.cursor = end;
    if (this.cursor === n) {
      this.epochNow++;
      this.cursor = 0;
    }
    return batch;
  }

  getState(): ExampleBatcherState {
    return { epoch: this.epochNow, cursor: this.cursor };
  }

  setState(s: ExampleBatcherState): void {
    const n = this.data.examples.length;
    if (!Number.isInteger(s.epoch) || s.epoch < 0 || !Number.isInteger(s.cursor) || s.cursor < 0 || s.cursor >= n) {
      throw new AjarError('bad_checkpoint', `data position ${JSON.stringify(s)} does not fit ${this.data.source} (${n} examples); has the data changed since the checkpoint?`);
    }
    this.epochNow = s.epoch;
    this.cursor = s.cursor;
  }

  /** One pass over the examples in file order, without shuffling and without touching the state (for evaluation). */
  *batches(): Iterable<ExampleBatch> {
    const n = this.data.examples.length;
    for (let start = 0; start < n; start += this.batchSize) {
      const end = Math.min(n, start + this.batchSize);
      const indices = new Int32Array(end - start);
      for (let i = 0; i < indices.length; i++) indices[i] = start + i;
      yield this.makeBatch(indices);
    }
  }

  /** The batch of the given examples, in that order, without touching the state (DP-SGD's Poisson batches). */
  batchOf(indices: Int32Array): ExampleBatch {
    return this.makeBatch(indices);
  }

  private makeBatch(indices: Int32Array): ExampleBatch {
    if (this.windows) return this.makeWindows(indices);
    const examples = this.data.examples;
    const B = indices.length;
    const lengths = new Int32Array(B); // (B,)
    let T = this.padToBlock ? this.blockSize : 1;
    for (let b = 0; b < B; b++) {
      lengths[b] = Math.min(examples[indices[b]].ids.length, this.blockSize);
      if (lengths[b] > T) T = lengths[b];
    }
    const ids = new Int32Array(B * T).fill(this.padId); // (B, T)
    const attentionMask = new Float32Array(B * T); // (B, T)
    const hasTargets = examples[indices[0]].targets !== undefined;
    const targets = hasTargets ? new Int32Array(B * T).fill(IGNORE_INDEX) : undefined; // (B, T)
    const task = this.data.task;
    const labels = task === 'classification' ? new Int32Array(B) : undefined; // (B,)
    const values = task === 'regression' ? new Float32Array(B) : undefined; // (B,)
    for (let b = 0; b < B; b++) {
      const ex = examples[indices[b]];
      const L = lengths[b];
      ids.set(ex.ids.subarray(0, L), b * T);
      attentionMask.fill(1, b * T, b * T + L);
      // NOTE: after truncation the last kept position keeps its target (the next token of the full example), as
      // nanoGPT's windows do; only padding and the prompt take no loss.
      if (targets !== undefined && ex.targets !== undefined) targets.set(ex.targets.subarray(0, L), b * T);
      if (labels !== undefined) labels[b] = ex.label!;
      if (values !== undefined) values[b] = ex.value!;
    }
    const out: ExampleBatch = { ids, batch: B, block: T, attentionMask, lengths, indices: Int32Array.from(indices) };
    if (targets !== undefined) out.targets = targets;
    if (labels !== undefined) out.labels = labels;
    if (values !== undefined) out.values = values;
    return out;
  }

  /** The windows of the given documents, document-major, padded to the block on the right. */
  private makeWindows(indices: Int32Array): ExampleBatch {
    const examples = this.data.examples;
    const T = this.blockSize;
    const spans = new Int32Array(indices.length + 1); // (examples + 1,)
    indices.forEach((i, b) => {
      spans[b + 1] = spans[b] + Math.ceil((examples[i].ids.length - 1) / T);
    });
    const rows = spans[indices.length];
    const ids = new Int32Array(rows * T).fill(this.padId); // (rows, T)
    const targets = new Int32Array(rows * T).fill(IGNORE_INDEX); // (rows, T)
    const attentionMask = new Float32Array(rows * T); // (rows, T)
    const lengths = new Int32Array(rows); // (rows,)
    const rowIndices = new Int32Array(rows); // (rows,)
    indices.forEach((i, b) => {
      const doc = examples[i].ids;
      for (let row = spans[b]; row < spans[b + 1]; row++) {
        const start = (row - spans[b]) * T;
        const L = Math.min(T, doc.length - 1 - start); // predictions in this window
        ids.set(doc.subarray(start, start + L), row * T);
        targets.set(doc.subarray(start + 1, start + 1 + L), row * T);
        attentionMask.fill(1, row * T, row * T + L);
        lengths[row] = L;
        rowIndices[row] = i;
      }
    });
    return { ids, batch: rows, block: T, attentionMask, lengths, indices: rowIndices, targets, spans };
  }
}

/** An error when truncating to blockSize leaves an instruct example no completion token to learn. */
function checkCompletionsFit(data: ExampleData, blockSize: number): void {
  let bad = 0;
  let first = -1;
  data.examples.forEach((ex, i) => {
    const targets = ex.targets;
    if (targets === undefined) return;
    const L = Math.min(targets.length, blockSize);
    for (let t = 0; t < L; t++) if (targets[t] !== IGNORE_INDEX) return;
    bad++;
    if (first < 0) first = i;
  });
  if (bad > 0) {
    const ex = data.examples[first];
    const where = ex.line !== undefined ? `${data.source}:${ex.line}` : `${data.source} (example ${first})`;
    const promptLen = ex.targets!.findIndex((v) => v !== IGNORE_INDEX) + 1;
    throw new AjarError('bad_data', `${where}: the prompt is ${promptLen} tokens, so a block size of ${blockSize} keeps no completion token${bad > 1 ? ` (${bad} examples are like this)` : ''}; raise the block size or shorten the prompts`);
  }
}
