// Save a model as a Hugging Face folder: config.json, model.safetensors (tied weights once, as transformers
// does), the tokenizer's files and generation_config.json. Each file is written atomically.
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { writeSafetensors, type TensorInput } from '../io/safetensors.js';
import { replaceDir, writeFileAtomic } from '../io/atomic.js';
import { AjarError } from '../tensor/errors.js';
import type { Tokenizer } from '../io/tokenizer/index.js';
import type { AnyModel } from './types.js';

export interface SaveOptions {
  /** The tensors to write instead of model.stateDict() (a quantised model's int8 weights and scales). */
  tensors?: TensorInput;
  /** Fields added to config.json (quantization_config). */
  config?: Record<string, unknown>;
}

export function saveModelFolder(dir: string, model: AnyModel, tokenizer: Tokenizer, opts: SaveOptions = {}): void {
  mkdirSync(dir, { recursive: true });
  const config = { ...model.config, architectures: [model.architecture], torch_dtype: 'float32', ...opts.config };
  writeSafetensors(join(dir, 'model.safetensors'), opts.tensors ?? model.stateDict(), { format: 'pt' });
  tokenizer.save(dir, { modelMaxLength: model.contextLength });
  writeFileAtomic(join(dir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
  if (model.task === 'causal-lm') {
    const gen: Record<string, unknown> = {};
    if (tokenizer.bosTokenId !== null) gen.bos_token_id = tokenizer.bosTokenId;
    if (tokenizer.eosTokenId !== null) gen.eos_token_id = tokenizer.eosTokenId;
    writeFileAtomic(join(dir, 'generation_config.json'), `${JSON.stringify(gen, null, 2)}\n`);
  }
}

/** Refuse an output folder that exists and is not empty, unless `force` (check it before the slow work). */
export function checkOutFolder(out: string, force: boolean): void {
  const target = resolve(out);
  if (existsSync(target) && readdirSync(target).length > 0 && !force) {
    throw new AjarError('out_exists', `${out} exists and is not empty (pass --force to replace it)`);
  }
}

/**
 * Write a folder with `write(tmp)` into a temp folder beside `out`, then put it in place of `out` (replaceDir), so a
 * failure leaves no half-written folder. An `out` that exists and is not empty is refused unless `force`.
 */
export function writeFolderReplacing(out: string, force: boolean, write: (tmp: string) => void): string {
  checkOutFolder(out, force);
  const target = resolve(out);
  const tmp = join(dirname(target), `.${basename(target)}.tmp-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  try {
    write(tmp);
    replaceDir(tmp, target, `${target}.old`);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  return target;
}
