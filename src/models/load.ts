// Load a Hugging Face model folder into a ready model: config.json -> registry -> weights -> tokenizer.
import { loadModelFolder } from '../io/folder.js';
import { loadTokenizer, type Tokenizer } from '../io/tokenizer/index.js';
import { asCausalLM, buildModel } from './registry.js';
import type { AnyModel, CausalLM } from './types.js';

export interface Pretrained<M extends AnyModel = AnyModel> {
  dir: string;
  model: M;
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

/** Load a folder that must hold a causal language model. */
export function loadCausalLM(dir: string): Pretrained<CausalLM> {
  const p = loadPretrained(dir);
  return { ...p, model: asCausalLM(p.model, dir) };
}
