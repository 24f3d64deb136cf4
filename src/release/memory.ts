// A model built from file bytes held in memory (a decrypted bundle): config.json -> registry -> weights ->
// tokenizer -> chat template, with the same choices loadPretrained and loadTokenizer make from a folder,
// so a bundle serves exactly like the folder it was sealed from. Nothing here touches the disk.
import { parseSafetensors, type WeightTensor } from '../io/safetensors.js';
import { CHAR_TOKENIZER_CLASS, CharTokenizer, Gpt2BpeTokenizer, parseMergesTxt, tokenizerFromJson, type Tokenizer } from '../io/tokenizer/index.js';
import { chatTemplateFromConfig, isRecord, specialTokensFromConfig } from '../io/tokenizer/files.js';
import { asCausalLM, buildModel, type AnyModel, type CausalLM } from '../models/index.js';
import { buildShapesOnly } from '../nn/index.js';
import { AjarError } from '../tensor/errors.js';

export interface InMemoryModel<M extends AnyModel = AnyModel> {
  model: M;
  tokenizer: Tokenizer;
  /** Jinja chat template text, when the model has one. */
  chatTemplate?: string;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function text(files: ReadonlyMap<string, Uint8Array>, name: string, label: string, code: string): string {
  const bytes = files.get(name);
  if (bytes === undefined) throw new AjarError(code, `${label} has no ${name}`);
  try {
    return utf8.decode(bytes);
  } catch {
    throw new AjarError(code, `${label}/${name} is not valid UTF-8`);
  }
}

function json(files: ReadonlyMap<string, Uint8Array>, name: string, label: string, code: string): unknown {
  const t = text(files, name, label, code);
  try {
    return JSON.parse(t) as unknown;
  } catch (e) {
    throw new AjarError(code, `${label}/${name} is not valid JSON (${(e as Error).message})`);
  }
}

function jsonIfPresent(files: ReadonlyMap<string, Uint8Array>, name: string, label: string, code: string): unknown {
  return files.has(name) ? json(files, name, label, code) : null;
}

/** Weights from model.safetensors, or from model.safetensors.index.json and its shards. */
function weightsFromFiles(files: ReadonlyMap<string, Uint8Array>, label: string): Map<string, WeightTensor> {
  const single = files.get('model.safetensors');
  if (single !== undefined) return parseSafetensors(single, `${label}/model.safetensors`).tensors;
  const index = jsonIfPresent(files, 'model.safetensors.index.json', label, 'bad_weights');
  const map = isRecord(index) ? index.weight_map : undefined;
  if (!isRecord(map)) throw new AjarError('bad_weights', `${label} has no model.safetensors or a model.safetensors.index.json with a weight_map`);
  const weights = new Map<string, WeightTensor>();
  const byShard = new Map<string, string[]>();
  for (const [tensor, shard] of Object.entries(map)) {
    if (typeof shard !== 'string') throw new AjarError('bad_weights', `${label}/model.safetensors.index.json: bad shard for ${tensor}`);
    byShard.set(shard, [...(byShard.get(shard) ?? []), tensor]);
  }
  for (const [shard, names] of byShard) {
    const bytes = files.get(shard);
    if (bytes === undefined) throw new AjarError('bad_weights', `${label} lacks the shard ${shard} its index names`);
    const { tensors } = parseSafetensors(bytes, `${label}/${shard}`);
    for (const name of names) {
      const t = tensors.get(name);
      if (t === undefined) throw new AjarError('bad_weights', `${label}/${shard} does not hold ${name}, which the index puts there`);
      weights.set(name, t);
    }
  }
  return weights;
}

/**
 * The tokenizer of a set of model files. NOTE: mirrors io/tokenizer/load.ts's loadTokenizer(dir) choice order
 * (AjarCharTokenizer, else tokenizer.json, else vocab.json + merges.txt); keep the two in step.
 */
export function tokenizerFromFiles(files: ReadonlyMap<string, Uint8Array>, label: string): Tokenizer {
  const config = jsonIfPresent(files, 'tokenizer_config.json', label, 'bad_tokenizer');
  const cls = isRecord(config) && typeof config.tokenizer_class === 'string' ? config.tokenizer_class : null;
  if (cls === CHAR_TOKENIZER_CLASS) {
    return CharTokenizer.fromVocab(json(files, 'vocab.json', label, 'bad_tokenizer'), `${label}/vocab.json`);
  }
  const map = jsonIfPresent(files, 'special_tokens_map.json', label, 'bad_tokenizer');
  if (files.has('tokenizer.json')) {
    return tokenizerFromJson(json(files, 'tokenizer.json', label, 'bad_tokenizer'), `${label}/tokenizer.json`,
      config, `${label}/tokenizer_config.json`, map, `${label}/special_tokens_map.json`);
  }
  const specials = specialTokensFromConfig(config, `${label}/tokenizer_config.json`, map, `${label}/special_tokens_map.json`);
  if (files.has('vocab.json') && files.has('merges.txt')) {
    const merges = parseMergesTxt(text(files, 'merges.txt', label, 'bad_tokenizer'), `${label}/merges.txt`);
    return Gpt2BpeTokenizer.fromVocabAndMerges(json(files, 'vocab.json', label, 'bad_tokenizer') as Record<string, number>, merges,
      { ...specials, source: `${label}/vocab.json` });
  }
  throw new AjarError('bad_tokenizer', `${label} has no tokenizer ajar can read (tokenizer_config.json naming ${CHAR_TOKENIZER_CLASS}, `
    + 'tokenizer.json, or vocab.json + merges.txt)');
}

/** The chat template: chat_template.jinja, else tokenizer_config.json's chat_template (as serve/chat.ts reads a folder). */
export function chatTemplateFromFiles(files: ReadonlyMap<string, Uint8Array>, label: string): string | undefined {
  if (files.has('chat_template.jinja')) return text(files, 'chat_template.jinja', label, 'bad_tokenizer');
  return chatTemplateFromConfig(jsonIfPresent(files, 'tokenizer_config.json', label, 'bad_tokenizer'), `${label}/tokenizer_config.json`);
}

/** Build and load a model from its files' bytes; `label` names the source in every error. */
export function modelFromFiles(files: ReadonlyMap<string, Uint8Array>, label: string): InMemoryModel {
  const config = json(files, 'config.json', label, 'bad_config');
  if (!isRecord(config)) throw new AjarError('bad_config', `${label}/config.json must hold a JSON object`);
  const weights = weightsFromFiles(files, label);
  // NOTE: as loadPretrained does, the config is checked against the weights' shapes before the model is allocated.
  buildShapesOnly(() => buildModel(config, `${label}/config.json`)).checkWeights(weights, `${label}/model.safetensors`);
  const model = buildModel(config, `${label}/config.json`);
  model.loadWeights(weights, `${label}/model.safetensors`);
  model.module.eval();
  const tokenizer = tokenizerFromFiles(files, label);
  return { model, tokenizer, chatTemplate: chatTemplateFromFiles(files, label) };
}

/** modelFromFiles for a model that must generate text (serving). */
export function causalLMFromFiles(files: ReadonlyMap<string, Uint8Array>, label: string): InMemoryModel<CausalLM> {
  const m = modelFromFiles(files, label);
  return { ...m, model: asCausalLM(m.model, label) };
}
