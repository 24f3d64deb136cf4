// Load a Hugging Face model folder into a ready model: config.json -> registry -> weights -> tokenizer.
import { loadModelFolder } from '../io/folder.js';
import { loadTokenizer, type Tokenizer } from '../io/tokenizer/index.js';
import { buildModel } from './registry.js';
import type { CausalLM } from './types.js';

export interface Pretrained {
  dir: string;
  model: CausalLM;
  tokenizer: Tokenizer;
}

/** Load model and tokenizer from a folder; every problem is an AjarError naming the folder and file. */
export function loadPretrained(dir: string): Pretrained {
  const folder = loadModelFolder(dir);
  const model = buildModel(folder.config, `${dir}/config.json`);
  model.loadWeights(folder.weights, `${dir}/model.safetensors`);
  const tokenizer = loadTokenizer(dir);
  model.module.eval();
  return { dir, model, tokenizer };
}
