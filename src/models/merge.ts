// Merge a LoRA adapter into its base: a standalone Hugging Face folder whose weights are W + scaling B A
// (transposed for GPT-2's Conv1D), so plain loaders (ajar, transformers) compute base + adapter without PEFT.
import { loadPretrained, type LoadOptions } from './load.js';
import { checkOutFolder, saveModelFolder, writeFolderReplacing } from './save.js';

export interface MergeResult {
  out: string;
  layers: number;
  r: number;
  scaling: number;
}

/** Load base + adapter, fold the adapter into the weights and write the folder at `out` (atomically replaced). */
export function mergeAdapterFolder(base: string, adapter: string, out: string,
  opts: { force?: boolean; onProgress?: LoadOptions['onProgress'] } = {}): MergeResult {
  checkOutFolder(out, opts.force ?? false);
  const loaded = loadPretrained(base, { adapter, ...(opts.onProgress ? { onProgress: opts.onProgress } : {}) });
  const set = loaded.adapter!;
  set.merge();
  const target = writeFolderReplacing(out, opts.force ?? false, (tmp) => saveModelFolder(tmp, loaded.model, loaded.tokenizer));
  return { out: target, layers: set.entries.length, r: set.spec.r, scaling: set.scaling };
}
