// Load a Hugging Face model folder into a ready model: config.json -> registry -> weights -> tokenizer.
// Everything that can be refused is refused before the model's memory is allocated; weights then stream from the
// files straight into the parameters, so loading needs the model's float32 size plus one read chunk.
import { readConfig } from '../io/folder.js';
import { AjarError } from '../tensor/errors.js';
import { loadTokenizer, type Tokenizer } from '../io/tokenizer/index.js';
import { buildShapesOnly, type TensorSource } from '../nn/index.js';
import { checkAdapter, loadAdapter, readAdapterHead, type LoraSet } from './adapter.js';
import {
  attachQuantized, checkQuantizedWeights, openFolderWeights, quantizedSource, readQuantizationConfig,
} from './quantize.js';
import { asCausalLM, buildModel } from './registry.js';
import type { AnyModel, CausalLM } from './types.js';

export interface Pretrained<M extends AnyModel = AnyModel> {
  dir: string;
  model: M;
  tokenizer: Tokenizer;
  /** The LoRA adapter applied over the weights (LoadOptions.adapter), if any. */
  adapter?: LoraSet;
}

export interface LoadOptions {
  /** Called once before the first tensor is read and after each: parameter values read so far, and in all. */
  onProgress?: (done: number, total: number) => void;
  /** A PEFT LoRA adapter folder to apply over the base weights (adapter_config.json, adapter_model.safetensors). */
  adapter?: string;
  /**
   * Accept a quantised folder (ajar quantize: int8 weights, for inference only). Off by default, so training,
   * merging and releasing refuse one with a message instead of meeting weights they cannot read.
   */
  int8?: boolean;
}

/** `source` reporting the values read through it to `onProgress`. */
function reporting(source: TensorSource, total: number, onProgress: (done: number, total: number) => void): TensorSource {
  let done = 0;
  return {
    keys: () => source.keys(),
    shapeOf: (name) => source.shapeOf(name),
    readInto(name, out) {
      source.readInto(name, out);
      done += out.length;
      onProgress(done, total);
    },
  };
}

/** Load model and tokenizer from a folder; every problem is an AjarError naming the folder and file. */
export function loadPretrained(dir: string, opts: LoadOptions = {}): Pretrained {
  const config = readConfig(dir);
  const configLabel = `${dir}/config.json`;
  const weightsLabel = `${dir}/model.safetensors`;
  // 1. Cheap checks, nothing large allocated: the config (a shapes-only build reads every field), every
  //    safetensors header, every tensor's name and shape against the config, the tokenizer.
  //    A quantised folder (ajar quantize) shows the model its float32 tensors, its int8 ones checked apart.
  const quant = readQuantizationConfig(config, configLabel);
  if (quant && opts.int8 !== true) {
    throw new AjarError('quantized_model', `${dir} holds int8 weights (ajar quantize), which serve generate, serve and ` +
      'eval only; use the float32 model it was quantised from');
  }
  const files = openFolderWeights(dir, quant);
  const plan = buildShapesOnly(() => buildModel(config, configLabel));
  if (quant) checkQuantizedWeights(plan, files, quant, weightsLabel);
  const weights = quant ? quantizedSource(plan, files, quant, weightsLabel) : files;
  plan.checkWeights(weights, weightsLabel);
  const tokenizer = loadTokenizer(dir);
  if (opts.adapter !== undefined) {
    const head = readAdapterHead(opts.adapter);
    const withHead = head !== null && plan.task === 'causal-lm' ? buildShapesOnly(() => buildModel({ ...config, ...head }, configLabel)) : plan;
    checkAdapter(withHead, opts.adapter);
  }
  // 2. Allocate the parameters and read each tensor into its parameter.
  const model = buildModel(config, configLabel);
  const total = plan.module.namedParameterShapes().reduce((n, [, shape]) => n + shape.reduce((a, b) => a * b, 1), 0);
  opts.onProgress?.(0, total);
  model.loadWeights(opts.onProgress ? reporting(weights, total, opts.onProgress) : weights, weightsLabel);
  if (quant) attachQuantized(model, files, quant, weightsLabel);
  if (opts.adapter === undefined) {
    model.module.eval();
    return { dir, model, tokenizer };
  }
  const target = withAdapterHead(model, opts.adapter);
  const adapter = loadAdapter(target, opts.adapter);
  target.module.eval();
  return { dir, model: target, tokenizer, adapter };
}

/**
 * A classifier adapter trained over a language model carries its head's config: the base's trunk under that
 * head (the head's weights come with the adapter, as modules_to_save). Any other model is returned as it is.
 */
function withAdapterHead(model: AnyModel, adapterDir: string): AnyModel {
  const head = readAdapterHead(adapterDir);
  if (head === null || model.task !== 'causal-lm') return model;
  const built = buildModel({ ...model.config, ...head }, `${adapterDir}/ajar_head_config.json`);
  const own = new Map(built.module.namedParameters());
  for (const [name, t] of model.module.namedParameters()) own.get(name)?.data.set(t.data);
  return built;
}

/** Load a folder that must hold a causal language model. */
export function loadCausalLM(dir: string, opts: LoadOptions = {}): Pretrained<CausalLM> {
  const p = loadPretrained(dir, opts);
  return { ...p, model: asCausalLM(p.model, dir) };
}
