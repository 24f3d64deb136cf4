// The evaluation results a model folder carries (ajar_results.json, written by `ajar train` and `ajar eval
// --record`) and its training arguments (training_args.json): read with clear errors, appended atomically.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { writeFileAtomic } from '../io/atomic.js';
import { readRegularJson } from '../io/safe-read.js';
import { AjarError } from '../tensor/errors.js';
import { PRIVACY_FILE } from '../train/dp.js';

export const RESULTS_FILE = 'ajar_results.json';
export const TRAINING_ARGS_FILE = 'training_args.json';

/** One evaluation: what `ajar train` writes at the end of a run, and `ajar eval --record` after an evaluation. */
export interface ResultRecord {
  task: string; // 'lm' | 'instruct' | 'classification' | 'regression'
  dataset: string; // the data file as given on the command line
  metrics: Record<string, number | null>; // val_loss, loss, perplexity, accuracy, macro_f1, mse, mae, tokens, ...
  iters: number | null; // training steps (null for `ajar eval`)
  date: string; // ISO 8601
  source: string; // 'ajar train' | 'ajar eval'
  block_size?: number; // `ajar eval`: the window length
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function readJson(path: string, code: string): unknown {
  return readRegularJson(path, { code, kind: 'index', root: dirname(path) });
}

/** The records of dir/ajar_results.json; [] when the file does not exist. */
export function readResults(dir: string): ResultRecord[] {
  const path = join(dir, RESULTS_FILE);
  if (!existsSync(path)) return [];
  const raw = readJson(path, 'bad_results');
  if (!Array.isArray(raw)) throw new AjarError('bad_results', `${path} must hold a JSON array of result records`);
  return raw.map((r, i) => {
    const where = `${path}: record ${i}`;
    if (!isRecord(r) || !isRecord(r.metrics)) throw new AjarError('bad_results', `${where} must be an object with a "metrics" object`);
    const metrics: Record<string, number | null> = {};
    for (const [k, v] of Object.entries(r.metrics)) {
      if (v !== null && (typeof v !== 'number' || !Number.isFinite(v))) {
        throw new AjarError('bad_results', `${where}: metric "${k}" must be a finite number or null, got ${JSON.stringify(v)}`);
      }
      metrics[k] = v as number | null;
    }
    const rec: ResultRecord = {
      task: typeof r.task === 'string' ? r.task : 'lm',
      dataset: typeof r.dataset === 'string' ? r.dataset : 'unknown',
      metrics,
      iters: typeof r.iters === 'number' ? r.iters : null,
      date: typeof r.date === 'string' ? r.date : '',
      source: typeof r.source === 'string' ? r.source : 'unknown',
    };
    if (typeof r.block_size === 'number') rec.block_size = r.block_size;
    return rec;
  });
}

/** Whether a record has at least one metric with a value. */
export function hasMetrics(r: ResultRecord): boolean {
  return Object.values(r.metrics).some((v) => v !== null);
}

/** Append one record to dir/ajar_results.json (created if missing), rewriting the file atomically. */
export function appendResult(dir: string, record: ResultRecord): string {
  const path = join(dir, RESULTS_FILE);
  const all = [...readResults(dir), record];
  try {
    writeFileAtomic(path, `${JSON.stringify(all, null, 2)}\n`);
  } catch (e) {
    throw new AjarError('write_failed', `cannot write ${path} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  return path;
}

/** dir/training_args.json as an object, or null when the model was not trained by ajar. */
export function readTrainingArgs(dir: string): Record<string, unknown> | null {
  return readOptionalObject(join(dir, TRAINING_ARGS_FILE));
}

/** dir/privacy.json (DP-SGD's record from 'ajar train --dp') as an object, or null when the model has none. */
export function readPrivacy(dir: string): Record<string, unknown> | null {
  return readOptionalObject(join(dir, PRIVACY_FILE));
}

/** A JSON object file, or null when it does not exist. */
function readOptionalObject(path: string): Record<string, unknown> | null {
  if (!existsSync(path)) return null;
  const raw = readJson(path, 'bad_results');
  if (!isRecord(raw)) throw new AjarError('bad_results', `${path} must hold a JSON object`);
  return raw;
}
