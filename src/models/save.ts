// Save a model as a Hugging Face folder: config.json, model.safetensors (tied weights once, as transformers
// does), the tokenizer's files and generation_config.json. Each file is written atomically.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeSafetensors } from '../io/safetensors.js';
import { writeFileAtomic } from '../io/atomic.js';
import type { Tokenizer } from '../io/tokenizer/index.js';
import type { AnyModel } from './types.js';

export function saveModelFolder(dir: string, model: AnyModel, tokenizer: Tokenizer): void {
  mkdirSync(dir, { recursive: true });
  const config = { ...model.config, architectures: [model.architecture], torch_dtype: 'float32' };
  writeSafetensors(join(dir, 'model.safetensors'), model.stateDict(), { format: 'pt' });
  tokenizer.save(dir, { modelMaxLength: model.contextLength });
  writeFileAtomic(join(dir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
  if (model.task === 'causal-lm') {
    const gen: Record<string, unknown> = {};
    if (tokenizer.bosTokenId !== null) gen.bos_token_id = tokenizer.bosTokenId;
    if (tokenizer.eosTokenId !== null) gen.eos_token_id = tokenizer.eosTokenId;
    writeFileAtomic(join(dir, 'generation_config.json'), `${JSON.stringify(gen, null, 2)}\n`);
  }
}
