// `ajar quantize`: a float32 model folder in, a folder of int8 weights out (the format models/quantize.ts describes).
import { loadPretrained, type LoadOptions } from './load.js';
import { quantizeModel, quantizedTensors } from './quantize.js';
import { checkOutFolder, saveModelFolder, writeFolderReplacing } from './save.js';

export interface QuantizeResult {
  out: string;
  /** Weights stored as int8. */
  modules: number;
  group_size: number;
  /** Bytes of the weights as float32 before, and of the folder's tensors after (int8 values, scales, float32 rest). */
  float32_bytes: number;
  quantized_bytes: number;
}

/** Load `src`, quantise its weights and write the folder at `out` (atomically replaced). */
export function quantizeFolder(src: string, out: string,
  opts: { force?: boolean; group?: number; onProgress?: LoadOptions['onProgress'] } = {}): QuantizeResult {
  checkOutFolder(out, opts.force ?? false);
  const loaded = loadPretrained(src, opts.onProgress ? { onProgress: opts.onProgress } : {});
  let float32Bytes = 0;
  for (const t of loaded.model.stateDict().values()) float32Bytes += 4 * t.data.length;
  const qc = quantizeModel(loaded.model, opts.group);
  const tensors = quantizedTensors(loaded.model, qc);
  let quantizedBytes = 0;
  for (const t of tensors.values()) quantizedBytes += t.data.byteLength;
  const target = writeFolderReplacing(out, opts.force ?? false, (tmp) => saveModelFolder(tmp, loaded.model, loaded.tokenizer, {
    tensors, config: { quantization_config: qc },
  }));
  return { out: target, modules: qc.modules.length, group_size: qc.group_size, float32_bytes: float32Bytes, quantized_bytes: quantizedBytes };
}
