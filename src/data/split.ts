// Validation data: a fraction of the training data (a stream: nanoGPT's first (1-f) / last f of the tokens;
// examples: a seeded shuffle, then the last f), or a separate file read with the training set's task and labels.
import { AjarError } from '../tensor/errors.js';
import { Rng } from '../tensor/random.js';
import { SPLIT_STREAM, deriveSeed, shuffledIndices } from './batch.js';
import { loadDataset } from './load.js';
import type { DataSpec, Dataset, ExampleData, LoadOptions, StreamData, TokenizerLike } from './types.js';

function percent(f: number): string {
  return `${Number((f * 100).toPrecision(6))}%`;
}

/**
 * Splits off a validation set. Counts: nTrain = floor(n * (1 - fraction)), nVal = n - nTrain, with n the tokens of a
 * stream (nanoGPT: n = len(data); train = data[:int(n*0.9)]; val = data[int(n*0.9):]) or the number of examples.
 * Examples are drawn by a shuffle seeded with seed, and each part keeps the file order.
 */
export function splitValidation(ds: Dataset, fraction: number, seed: number): { train: Dataset; val: Dataset } {
  if (typeof fraction !== 'number' || !(fraction > 0 && fraction < 1)) {
    throw new AjarError('bad_config', `the validation fraction must be between 0 and 1 (exclusive), got ${fraction}`);
  }
  const n = ds.kind === 'stream' ? ds.ids.length : ds.examples.length;
  const nTrain = Math.floor(n * (1 - fraction));
  const nVal = n - nTrain;
  const unit = ds.kind === 'stream' ? 'tokens' : 'examples';
  if (nTrain < 1 || nVal < 1) {
    throw new AjarError('bad_data', `${ds.source} has ${n} ${unit}, too few to split ${percent(fraction)} off for validation; add data or give a separate validation file`);
  }
  const trainTag = `${ds.source} [train ${percent(1 - fraction)}]`;
  const valTag = `${ds.source} [validation ${percent(fraction)}]`;
  if (ds.kind === 'stream') {
    const train: StreamData = { kind: 'stream', task: 'lm', ids: ds.ids.subarray(0, nTrain), source: trainTag };
    const val: StreamData = { kind: 'stream', task: 'lm', ids: ds.ids.subarray(nTrain), source: valTag };
    return { train, val };
  }
  const perm = shuffledIndices(n, new Rng(deriveSeed(seed, SPLIT_STREAM, 0)));
  const trainIdx = Array.from(perm.subarray(0, nTrain)).sort((a, b) => a - b);
  const valIdx = Array.from(perm.subarray(nTrain)).sort((a, b) => a - b);
  const part = (idx: number[], source: string): ExampleData => {
    const out: ExampleData = { kind: 'examples', task: ds.task, examples: idx.map((i) => ds.examples[i]), source };
    if (ds.labels !== undefined) out.labels = ds.labels;
    return out;
  };
  return { train: part(trainIdx, trainTag), val: part(valIdx, valTag) };
}

export interface TrainValOptions extends LoadOptions {
  /** A separate validation file; it is read with the training data's task, fields and label set. */
  val?: DataSpec;
  /** Without val: the fraction of the training data held out (0 or absent: no validation set). */
  valFraction?: number;
  seed?: number;
}

/**
 * The training set and its validation set, the way the trainer wants them: a separate file (same task, fields and
 * labels as the training data, so a label outside the training labels is an error naming its line), else a fraction.
 */
export function loadTrainAndValidation(trainSpec: DataSpec, tok: TokenizerLike, opts: TrainValOptions = {}): { train: Dataset; val: Dataset | null } {
  const { val: valSpec, valFraction, seed = 0, ...loadOpts } = opts;
  const train = loadDataset(trainSpec, tok, loadOpts);
  if (valSpec !== undefined) {
    const spec: DataSpec = {
      textField: trainSpec.textField,
      labelField: trainSpec.labelField,
      promptField: trainSpec.promptField,
      completionField: trainSpec.completionField,
      ...dropUndefined(valSpec),
      task: train.task,
    };
    if (train.kind === 'examples' && train.labels !== undefined) spec.labels = train.labels;
    const val = loadDataset(spec, tok, loadOpts);
    if (val.kind !== train.kind) {
      throw new AjarError('bad_data', `${val.source} holds ${val.kind === 'stream' ? 'running text' : 'examples'} but ${train.source} holds ${train.kind === 'stream' ? 'running text' : 'examples'}; give validation data of the same kind`);
    }
    return { train, val };
  }
  if (valFraction === undefined || valFraction === 0) return { train, val: null };
  return splitValidation(train, valFraction, seed);
}

function dropUndefined(spec: DataSpec): DataSpec {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(spec)) if (v !== undefined) out[k] = v;
  return out as unknown as DataSpec;
}
