// loadTokenizer(dir): the tokenizer of a model folder, chosen from its files: tokenizer_config.json's
// tokenizer_class "AjarCharTokenizer" -> char; else tokenizer.json (GPT-2's own setup -> gpt2-bpe, a character-level
// WordLevel as releases write it -> char, any other BPE pipeline -> HfBpeTokenizer); else vocab.json + merges.txt -> GPT-2 BPE.
import { existsSync, statSync } from 'node:fs';
import { entryExists } from '../safe-read.js';
import { join } from 'node:path';
import { AjarError } from '../../tensor/errors.js';
import { ENDOFTEXT, Gpt2BpeTokenizer, gpt2PipelineProblem, parseMergesTxt } from './bpe.js';
import { CHAR_TOKENIZER_CLASS, CharTokenizer } from './char.js';
import { chatTemplateFromConfig, isRecord, readJsonFile, readJsonIfExists, readTextFile, specialTokensFromConfig } from './files.js';
import { HfBpeTokenizer } from './hf-bpe.js';
import type { Tokenizer } from './types.js';

const LOOKED_FOR = 'tokenizer_config.json (tokenizer_class), tokenizer.json, or vocab.json + merges.txt';

/**
 * Whether a parsed tokenizer.json is GPT-2's tokenizer itself: GPT-2's pipeline, and no added token but <|endoftext|>.
 * NOTE: those load as 'gpt2-bpe', which (like OpenAI's encoder.py) reads "<|endoftext|>" inside text as plain text.
 * Any other added token (SmolLM2's <|im_start|>) means chat templates write it as text, so the tokenizer must split
 * it out as Hugging Face does: HfBpeTokenizer.
 */
function isGpt2TokenizerJson(json: unknown): boolean {
  if (!isRecord(json) || gpt2PipelineProblem(json) !== null) return false;
  const added = json.added_tokens;
  if (added === undefined || added === null) return true;
  return Array.isArray(added) && added.every((t) => isRecord(t) && t.content === ENDOFTEXT);
}

/**
 * The tokenizer of a parsed tokenizer.json and tokenizer_config.json (null when absent); special_tokens_map.json
 * fills in special tokens the config does not name. Paths are for error messages only.
 */
export function tokenizerFromJson(json: unknown, source: string, config: unknown, configPath: string, map: unknown, mapPath: string): Tokenizer {
  if (isRecord(json) && isRecord(json.model) && json.model.type === 'WordLevel') return CharTokenizer.fromTokenizerJson(json, source);
  const specials = specialTokensFromConfig(config, configPath, map, mapPath);
  if (isGpt2TokenizerJson(json)) return Gpt2BpeTokenizer.fromTokenizerJson(json, { ...specials, source });
  return HfBpeTokenizer.fromTokenizerJson(json, {
    specials, source, config: isRecord(config) ? config : null, chatTemplate: chatTemplateFromConfig(config, configPath),
  });
}

export function loadTokenizer(dir: string): Tokenizer {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new AjarError('bad_tokenizer', `no tokenizer: ${dir} is not a folder (looked for ${LOOKED_FOR} inside it)`);
  }
  const configPath = join(dir, 'tokenizer_config.json');
  const config = readJsonIfExists(configPath);
  const tokenizerClass = isRecord(config) && typeof config.tokenizer_class === 'string' ? config.tokenizer_class : null;

  if (tokenizerClass === CHAR_TOKENIZER_CLASS) {
    if (!entryExists(join(dir, 'vocab.json'))) {
      throw new AjarError('bad_tokenizer', `${configPath} names ${CHAR_TOKENIZER_CLASS} but ${join(dir, 'vocab.json')} is missing`);
    }
    return CharTokenizer.load(dir);
  }

  const mapPath = join(dir, 'special_tokens_map.json');
  const map = readJsonIfExists(mapPath);

  const tokenizerJsonPath = join(dir, 'tokenizer.json');
  if (entryExists(tokenizerJsonPath)) {
    return tokenizerFromJson(readJsonFile(tokenizerJsonPath), tokenizerJsonPath, config, configPath, map, mapPath);
  }
  const vocabPath = join(dir, 'vocab.json');
  const mergesPath = join(dir, 'merges.txt');
  if (entryExists(vocabPath) && entryExists(mergesPath)) {
    const specials = specialTokensFromConfig(config, configPath, map, mapPath);
    const merges = parseMergesTxt(readTextFile(mergesPath), mergesPath);
    return Gpt2BpeTokenizer.fromVocabAndMerges(readJsonFile(vocabPath) as Record<string, number>, merges, { ...specials, source: vocabPath });
  }

  const found = [configPath, tokenizerJsonPath, vocabPath, mergesPath, join(dir, 'tokenizer.model')].filter((p) => entryExists(p));
  const classNote = tokenizerClass !== null ? `; tokenizer_config.json names tokenizer_class ${JSON.stringify(tokenizerClass)}` : '';
  if (entryExists(join(dir, 'tokenizer.model')) && !entryExists(tokenizerJsonPath)) {
    throw new AjarError('bad_tokenizer',
      `${dir} has a SentencePiece tokenizer.model but no tokenizer.json; ajar reads tokenizer.json only. Write one with transformers: `
      + `AutoTokenizer.from_pretrained(dir).save_pretrained(dir)${classNote}`);
  }
  throw new AjarError('bad_tokenizer',
    `no tokenizer ajar can read in ${dir}: looked for ${LOOKED_FOR}; found ${found.length > 0 ? found.join(', ') : 'none of them'}${classNote}. `
    + 'Copy the tokenizer files of the model into the folder, or build one with CharTokenizer.fromText and save() it');
}
