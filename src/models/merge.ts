// Merge a LoRA adapter into its base: a standalone Hugging Face folder whose weights are W + scaling B A
// (transposed for GPT-2's Conv1D), so plain loaders (ajar, transformers) compute base + adapter without PEFT.
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { replaceDir } from '../io/atomic.js';
import { AjarError } from '../tensor/errors.js';
import { loadPretrained, type LoadOptions } from './load.js';
import { saveModelFolder } from './save.js';

export interface MergeResult {
  out: string;
  layers: number;
  r: number;
  scaling: number;
}

/** Load base + adapter, fold the adapter into the weights and write the folder at `out` (atomically replaced). */
export function mergeAdapterFolder(base: string, adapter: string, out: string,
  opts: { force?: boolean; onProgress?: LoadOptions['onProgress'] } = {}): MergeResult {
  const target = resolve(out);
  if (existsSync(target) && readdirSync(target).length > 0 && !opts.force) {
    throw new AjarError('out_exists', `${out} exists and is not empty (pass --force to replace it)`);
  }
  const loaded = loadPretrained(base, { adapter, ...(opts.onProgress ? { onProgress: opts.onProgress } : {}) });
  const set = loaded.adapter!;
  set.merge();
  const tmp = join(dirname(target), `.${basename(target)}.tmp-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  try {
    saveModelFolder(tmp, loaded.model, loaded.tokenizer);
    replaceDir(tmp, target, `${target}.old`);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  return { out: target, layers: set.entries.length, r: set.spec.r, scaling: set.scaling };
}
