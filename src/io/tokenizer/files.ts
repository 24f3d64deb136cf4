// File helpers for tokenizer folders: atomic writes (io/atomic.ts), JSON reading that names the file on failure,
// JSON objects written in a fixed key order, and the special-token fields of tokenizer_config.json.
import { dirname, join } from 'node:path';
import { AjarError } from '../../tensor/errors.js';
import { writeFileAtomic } from '../atomic.js';
import { entryExists, oneLine, readRegularText } from '../safe-read.js';

export { writeFileAtomic };

/**
 * A tokenizer file of a model folder as text: a regular file whose real path stays inside its folder (a hub
 * snapshot's: inside the repo's cache folder), at most READ_LIMITS.tokenizer bytes; else AjarError('bad_tokenizer').
 */
export function readTextFile(path: string): string {
  return readRegularText(path, { code: 'bad_tokenizer', kind: 'tokenizer', root: dirname(path) });
}

export function readJsonFile(path: string): unknown {
  const text = readTextFile(path);
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new AjarError('bad_tokenizer', oneLine(`${path} is not valid JSON (${(e as Error).message}); re-download or re-save the tokenizer`));
  }
}

/** Reads path as JSON if anything is there (a FIFO or device is refused, not skipped); null when nothing is. */
export function readJsonIfExists(path: string): unknown {
  return entryExists(path) ? readJsonFile(path) : null;
}


/**
 * tokenizer_config.json's chat_template: a string, or a list of {name, template} whose "default" (else the
 * first) is used; undefined when the config has none.
 */
export function chatTemplateFromConfig(config: unknown, configPath: string): string | undefined {
  const t = isRecord(config) ? config.chat_template : undefined;
  if (t === undefined || t === null) return undefined;
  if (typeof t === 'string') return t;
  if (Array.isArray(t)) {
    const named = t as Array<{ name?: unknown; template?: unknown }>;
    const def = named.find((x) => x?.name === 'default') ?? named[0];
    if (typeof def?.template === 'string') return def.template;
  }
  throw new AjarError('bad_tokenizer', `${configPath}: chat_template must be a string or a list of {name, template}`);
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * A JSON object text whose keys appear in the given order. NOTE: JSON.stringify of a plain object would move
 * integer-like keys ("0", "10") to the front, scrambling a vocabulary's id order.
 */
export function orderedJsonObject(entries: ReadonlyArray<readonly [string, unknown]>): string {
  if (entries.length === 0) return '{}';
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}: ${JSON.stringify(v)}`).join(', ')}}`;
}

/**
 * A special token as tokenizer_config.json / special_tokens_map.json write it: a string, an AddedToken object
 * ({"content": ..., "__type": "AddedToken"}), or null. Returns undefined when absent, null when explicitly none.
 */
export function specialTokenText(v: unknown, where: string): string | null | undefined {
  if (v === undefined) return undefined;
  if (v === null) return null;
  if (typeof v === 'string') return v;
  if (isRecord(v) && typeof v.content === 'string') return v.content;
  throw new AjarError('bad_tokenizer', `${where} must be a string, an object with "content", or null; got ${JSON.stringify(v)}`);
}

export interface SpecialTokenNames {
  bosToken?: string | null;
  eosToken?: string | null;
  unkToken?: string | null;
  /** tokenizer_config.json's add_bos_token; undefined when the file does not say. */
  addBos?: boolean;
  /** tokenizer_config.json's add_eos_token; undefined when the file does not say. */
  addEos?: boolean;
}

/**
 * bos/eos/unk names from tokenizer_config.json, each falling back to special_tokens_map.json, and its add_bos_token /
 * add_eos_token (left undefined when absent, so each tokenizer applies its own default).
 */
export function specialTokensFromConfig(config: unknown, configPath: string, map: unknown, mapPath: string): SpecialTokenNames {
  const cfg = isRecord(config) ? config : {};
  const stm = isRecord(map) ? map : {};
  const pick = (key: string): string | null | undefined => {
    const fromConfig = specialTokenText(cfg[key], `${configPath}: ${key}`);
    return fromConfig !== undefined ? fromConfig : specialTokenText(stm[key], `${mapPath}: ${key}`);
  };
  const flag = (key: string): boolean | undefined => {
    const v = cfg[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'boolean') throw new AjarError('bad_tokenizer', `${configPath}: ${key} must be true or false, got ${JSON.stringify(v)}`);
    return v;
  };
  return { bosToken: pick('bos_token'), eosToken: pick('eos_token'), unkToken: pick('unk_token'), addBos: flag('add_bos_token'), addEos: flag('add_eos_token') };
}

/** U+XXXX form of a code point, for error messages. */
export function codePointLabel(cp: number): string {
  return `U+${cp.toString(16).toUpperCase().padStart(4, '0')}`;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** String.prototype.toWellFormed (ES2024, not in our lib target): each lone surrogate -> U+FFFD. */
export function toWellFormed(text: string): string {
  LONE_SURROGATE.lastIndex = 0;
  if (!LONE_SURROGATE.test(text)) return text;
  LONE_SURROGATE.lastIndex = 0;
  return text.replace(LONE_SURROGATE, '\uFFFD');
}

/**
 * Writes tokenizer_config.json (with model_max_length when given) and special_tokens_map.json (the named
 * bos/eos/unk tokens) into dir, as transformers' save_pretrained lays them out.
 */
export function writeTokenizerConfigFiles(dir: string, config: Record<string, unknown>, modelMaxLength: number | undefined,
  specials: { bos: string | null; eos: string | null; unk: string | null }): void {
  if (modelMaxLength !== undefined) config.model_max_length = modelMaxLength;
  writeFileAtomic(join(dir, 'tokenizer_config.json'), `${JSON.stringify(config, null, 2)}\n`);
  const map: Record<string, string> = {};
  if (specials.bos !== null) map.bos_token = specials.bos;
  if (specials.eos !== null) map.eos_token = specials.eos;
  if (specials.unk !== null) map.unk_token = specials.unk;
  writeFileAtomic(join(dir, 'special_tokens_map.json'), `${JSON.stringify(map, null, 2)}\n`);
}
