// loadTokenizer(dir): the tokenizer of a model folder, chosen from its files: tokenizer_config.json's
// tokenizer_class "AjarCharTokenizer" -> char; else tokenizer.json; else vocab.json + merges.txt -> GPT-2 BPE.
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { AjarError } from '../../tensor/errors.js';
import { Gpt2BpeTokenizer, parseMergesTxt } from './bpe.js';
import { CHAR_TOKENIZER_CLASS, CharTokenizer } from './char.js';
import { isRecord, readJsonFile, readJsonIfExists, readTextFile, specialTokensFromConfig } from './files.js';
import type { Tokenizer } from './types.js';

const LOOKED_FOR = 'tokenizer_config.json (tokenizer_class), tokenizer.json, or vocab.json + merges.txt';

export function loadTokenizer(dir: string): Tokenizer {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new AjarError('bad_tokenizer', `no tokenizer: ${dir} is not a folder (looked for ${LOOKED_FOR} inside it)`);
  }
  const configPath = join(dir, 'tokenizer_config.json');
  const config = readJsonIfExists(configPath);
  const tokenizerClass = isRecord(config) && typeof config.tokenizer_class === 'string' ? config.tokenizer_class : null;

  if (tokenizerClass === CHAR_TOKENIZER_CLASS) {
    if (!existsSync(join(dir, 'vocab.json'))) {
      throw new AjarError('bad_tokenizer', `${configPath} names ${CHAR_TOKENIZER_CLASS} but ${join(dir, 'vocab.json')} is missing`);
    }
    return CharTokenizer.load(dir);
  }

  const mapPath = join(dir, 'special_tokens_map.json');
  const specials = specialTokensFromConfig(config, configPath, readJsonIfExists(mapPath), mapPath);

  const tokenizerJsonPath = join(dir, 'tokenizer.json');
  if (existsSync(tokenizerJsonPath)) {
    return Gpt2BpeTokenizer.fromTokenizerJson(readJsonFile(tokenizerJsonPath), { ...specials, source: tokenizerJsonPath });
  }
  const vocabPath = join(dir, 'vocab.json');
  const mergesPath = join(dir, 'merges.txt');
  if (existsSync(vocabPath) && existsSync(mergesPath)) {
    const merges = parseMergesTxt(readTextFile(mergesPath), mergesPath);
    return Gpt2BpeTokenizer.fromVocabAndMerges(readJsonFile(vocabPath) as Record<string, number>, merges, { ...specials, source: vocabPath });
  }

  const found = [configPath, tokenizerJsonPath, vocabPath, mergesPath, join(dir, 'tokenizer.model')].filter((p) => existsSync(p));
  const classNote = tokenizerClass !== null ? `; tokenizer_config.json names tokenizer_class ${JSON.stringify(tokenizerClass)}` : '';
  throw new AjarError('bad_tokenizer',
    `no tokenizer ajar can read in ${dir}: looked for ${LOOKED_FOR}; found ${found.length > 0 ? found.join(', ') : 'none of them'}${classNote}. `
    + 'Copy the tokenizer files of the model into the folder, or build one with CharTokenizer.fromText and save() it');
}
