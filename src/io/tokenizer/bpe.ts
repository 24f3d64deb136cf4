// GPT-2 byte-level BPE: token-for-token identical to OpenAI's encoder.py (gpt-2/src/encoder.py) on any string,
// loaded from vocab.json + merges.txt or a Hugging Face tokenizer.json, and saved as all of them.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { AjarError } from '../../tensor/errors.js';
import { BYTE_TO_CHAR, CHAR_TO_BYTE } from './bytes.js';
import { isRecord, orderedJsonObject, toWellFormed, writeFileAtomic, writeTokenizerConfigFiles, type SpecialTokenNames } from './files.js';
import { BpeMerges, ID_LIMIT } from './merges.js';
import { forEachGpt2Piece } from './pretokenize.js';
import type { SaveOptions, Tokenizer } from './types.js';

export const ENDOFTEXT = '<|endoftext|>';

/** One entry of tokenizer.json's added_tokens (Hugging Face's AddedToken). */
export interface AddedToken {
  id: number;
  content: string;
  single_word: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
  special: boolean;
}

export interface BpeOptions extends SpecialTokenNames {
  /** tokenizer.json's added_tokens; the named bos/eos/unk tokens are added as special ones when missing. */
  addedTokens?: readonly AddedToken[];
  /** Where the data came from, for error messages (a file path). */
  source?: string;
}

// Pre-tokens longer than this are not cached (they are rare, and would pin memory).
const CACHE_MAX_WORD = 256;
const CACHE_MAX_ENTRIES = 100_000;

const utf8 = new TextEncoder();

/** Parses merges.txt: an optional "#version" first line, then one "left right" pair per line. */
export function parseMergesTxt(text: string, source = 'merges.txt'): Array<[string, string]> {
  const lines = text.split(/\r?\n/);
  const merges: Array<[string, string]> = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (i === 0 && line.startsWith('#version')) continue;
    if (line.trim() === '') continue;
    const parts = line.trim().split(/\s+/);
    if (parts.length !== 2) {
      throw new AjarError('bad_tokenizer', `${source} line ${i + 1}: expected two tokens separated by a space, got ${JSON.stringify(line)}`);
    }
    merges.push([parts[0], parts[1]]);
  }
  return merges;
}

/** Checks a parsed vocab.json (token -> id) and returns it as a Map. */
export function parseVocabJson(json: unknown, source = 'vocab.json'): Map<string, number> {
  if (!isRecord(json)) {
    throw new AjarError('bad_tokenizer', `${source} must be a JSON object mapping token -> id`);
  }
  const vocab = new Map<string, number>();
  for (const [token, id] of Object.entries(json)) {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= ID_LIMIT) {
      throw new AjarError('bad_tokenizer', `${source}: token ${JSON.stringify(token)} has id ${JSON.stringify(id)}; ids must be integers in [0, ${ID_LIMIT})`);
    }
    vocab.set(token, id);
  }
  return vocab;
}

export function parseTokenizerJsonMerges(merges: unknown, source: string): Array<[string, string]> {
  if (!Array.isArray(merges)) throw new AjarError('bad_tokenizer', `${source}: model.merges must be a list`);
  return merges.map((m, i): [string, string] => {
    if (typeof m === 'string') {
      const parts = m.split(' ');
      if (parts.length === 2) return [parts[0], parts[1]];
    } else if (Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string') {
      return [m[0], m[1]];
    }
    throw new AjarError('bad_tokenizer', `${source}: model.merges[${i}] must be "left right" or ["left", "right"], got ${JSON.stringify(m)}`);
  });
}

export function parseAddedTokens(v: unknown, source: string): AddedToken[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new AjarError('bad_tokenizer', `${source}: added_tokens must be a list`);
  return v.map((t, i): AddedToken => {
    if (!isRecord(t) || typeof t.content !== 'string' || typeof t.id !== 'number' || !Number.isInteger(t.id) || t.id < 0 || t.id >= ID_LIMIT) {
      throw new AjarError('bad_tokenizer', `${source}: added_tokens[${i}] needs an integer "id" and a string "content"`);
    }
    return {
      id: t.id,
      content: t.content,
      single_word: t.single_word === true,
      lstrip: t.lstrip === true,
      rstrip: t.rstrip === true,
      normalized: t.normalized !== false,
      special: t.special === true,
    };
  });
}

/**
 * Why a tokenizer.json is not GPT-2's setup (no normalizer, ByteLevel pre-tokenizer with add_prefix_space false
 * and use_regex true, plain BPE model), or null when it is.
 */
export function gpt2PipelineProblem(json: Record<string, unknown>): string | null {
  const model = json.model;
  if (!isRecord(model)) return 'no "model" object';
  if (model.type !== undefined && model.type !== 'BPE') return `model.type is ${JSON.stringify(model.type)}, not "BPE"`;
  if (json.normalizer !== undefined && json.normalizer !== null) return `it has a normalizer (${JSON.stringify(json.normalizer).slice(0, 80)})`;
  const pre = json.pre_tokenizer;
  if (!isRecord(pre) || pre.type !== 'ByteLevel') return `pre_tokenizer is ${JSON.stringify(pre ?? null).slice(0, 80)}, not ByteLevel`;
  if (pre.add_prefix_space === true) return 'the ByteLevel pre-tokenizer has add_prefix_space true';
  if (pre.use_regex === false) return 'the ByteLevel pre-tokenizer has use_regex false';
  if (model.dropout !== undefined && model.dropout !== null && model.dropout !== 0) return `model.dropout is ${String(model.dropout)}`;
  if (typeof model.continuing_subword_prefix === 'string' && model.continuing_subword_prefix !== '') return 'model.continuing_subword_prefix is set';
  if (typeof model.end_of_word_suffix === 'string' && model.end_of_word_suffix !== '') return 'model.end_of_word_suffix is set';
  if (model.ignore_merges === true) return 'model.ignore_merges is true';
  if (model.byte_fallback === true) return 'model.byte_fallback is true';
  return null;
}

/** Rejects tokenizer.json settings this GPT-2 implementation would silently get wrong. */
function checkGpt2Pipeline(json: Record<string, unknown>, source: string): void {
  const problem = gpt2PipelineProblem(json);
  if (problem !== null) {
    throw new AjarError('bad_tokenizer', `${source}: ${problem}; ajar's 'gpt2-bpe' tokenizer supports GPT-2's setup only `
      + '(no normalizer, ByteLevel pre-tokenizer with add_prefix_space false and use_regex true, BPE model)');
  }
}

export class Gpt2BpeTokenizer implements Tokenizer {
  readonly kind = 'gpt2-bpe' as const;
  readonly vocabSize: number;
  readonly eosTokenId: number | null;
  readonly bosTokenId: number | null;
  readonly addBos: boolean;

  private readonly vocab: Map<string, number>;
  private readonly merges: ReadonlyArray<readonly [string, string]>;
  private readonly addedTokens: AddedToken[];
  private readonly specialNames: { bos: string | null; eos: string | null; unk: string | null };
  /** idToToken[id]: the vocabulary string of id (byte-level characters), or undefined for an unused id. */
  private readonly idToToken: (string | undefined)[];
  /** Ids whose bytes are their content's UTF-8 (added tokens not in the model vocabulary). */
  private readonly addedContent = new Map<number, string>();
  /** Added token content -> id. */
  private readonly addedIds = new Map<string, number>();
  private readonly byteIds = new Int32Array(256);
  private readonly bpeMerges: BpeMerges;
  private readonly cache = new Map<string, number[]>();
  private readonly bytesById: (Uint8Array | undefined)[] = [];

  private constructor(vocab: Map<string, number>, merges: ReadonlyArray<readonly [string, string]>, options: BpeOptions) {
    const source = options.source ?? 'tokenizer';
    this.vocab = vocab;
    this.merges = merges;

    let maxId = -1;
    this.idToToken = [];
    for (const [token, id] of vocab) {
      if (this.idToToken[id] !== undefined) {
        throw new AjarError('bad_tokenizer', `${source}: tokens ${JSON.stringify(this.idToToken[id])} and ${JSON.stringify(token)} share id ${id}`);
      }
      this.idToToken[id] = token;
      if (id > maxId) maxId = id;
    }

    // Byte-level BPE starts every word from its bytes, so all 256 byte characters must be tokens.
    for (let b = 0; b < 256; b++) {
      const id = vocab.get(BYTE_TO_CHAR[b]);
      if (id === undefined) {
        throw new AjarError('bad_tokenizer', `${source}: the vocabulary lacks the byte-level token ${JSON.stringify(BYTE_TO_CHAR[b])} for byte 0x${b.toString(16)}; not a GPT-2 style byte-level BPE vocabulary`);
      }
      this.byteIds[b] = id;
    }

    this.bpeMerges = new BpeMerges(merges, vocab, source);

    const added = [...(options.addedTokens ?? [])];
    for (const t of added) {
      const existing = this.idToToken[t.id];
      if (existing === undefined) {
        this.idToToken[t.id] = t.content;
        this.addedContent.set(t.id, t.content);
      } else if (existing !== t.content) {
        throw new AjarError('bad_tokenizer', `${source}: added token ${JSON.stringify(t.content)} has id ${t.id}, which the vocabulary gives to ${JSON.stringify(existing)}`);
      }
      this.addedIds.set(t.content, t.id);
      if (t.id > maxId) maxId = t.id;
    }
    this.vocabSize = maxId + 1;

    // HF's GPT2Tokenizer defaults bos, eos and unk to <|endoftext|>; null (given explicitly) means none.
    const resolveName = (name: string | null | undefined): string | null => {
      if (name !== undefined) return name;
      return this.idOf(ENDOFTEXT) !== undefined ? ENDOFTEXT : null;
    };
    this.specialNames = {
      bos: resolveName(options.bosToken),
      eos: resolveName(options.eosToken),
      unk: resolveName(options.unkToken),
    };
    const resolveId = (role: string, name: string | null): number | null => {
      if (name === null) return null;
      const id = this.idOf(name);
      if (id === undefined) {
        throw new AjarError('bad_tokenizer', `${source}: ${role} ${JSON.stringify(name)} is not in the vocabulary`);
      }
      return id;
    };
    this.bosTokenId = resolveId('bos_token', this.specialNames.bos);
    this.eosTokenId = resolveId('eos_token', this.specialNames.eos);
    resolveId('unk_token', this.specialNames.unk);
    this.addBos = options.addBos === true;

    // Special tokens are listed as added tokens, so a saved tokenizer.json marks them special for Hugging Face.
    const specialNames = [this.specialNames.bos, this.specialNames.eos, this.specialNames.unk];
    for (const name of specialNames) {
      if (name === null || added.some((t) => t.content === name)) continue;
      added.push({ id: this.idOf(name)!, content: name, single_word: false, lstrip: false, rstrip: false, normalized: true, special: true });
    }
    added.sort((x, y) => x.id - y.id);
    this.addedTokens = added;
  }

  /** From vocab.json's object (token -> id) and merges (in rank order). */
  static fromVocabAndMerges(vocab: Readonly<Record<string, number>> | Map<string, number>, merges: ReadonlyArray<readonly [string, string]>, options: BpeOptions = {}): Gpt2BpeTokenizer {
    const map = vocab instanceof Map ? vocab : parseVocabJson(vocab, options.source ?? 'vocab.json');
    return new Gpt2BpeTokenizer(map, merges, options);
  }

  /** From a parsed Hugging Face tokenizer.json (model.type "BPE", ByteLevel pre-tokenizer). */
  static fromTokenizerJson(json: unknown, options: BpeOptions = {}): Gpt2BpeTokenizer {
    const source = options.source ?? 'tokenizer.json';
    if (!isRecord(json)) throw new AjarError('bad_tokenizer', `${source} must be a JSON object`);
    checkGpt2Pipeline(json, source);
    const model = json.model as Record<string, unknown>;
    const vocab = parseVocabJson(model.vocab, `${source} model.vocab`);
    const merges = parseTokenizerJsonMerges(model.merges, source);
    const addedTokens = [...parseAddedTokens(json.added_tokens, source), ...(options.addedTokens ?? [])];
    return new Gpt2BpeTokenizer(vocab, merges, { ...options, addedTokens, source });
  }

  private idOf(token: string): number | undefined {
    return this.vocab.get(token) ?? this.addedIds.get(token);
  }

  /**
   * NOTE: like the reference encoder, this has no special-token handling: "<|endoftext|>" inside text is encoded
   * as ordinary text (several tokens), never as id 50256. Callers add eosTokenId/bosTokenId as ids.
   */
  encode(text: string): number[] {
    const out: number[] = [];
    forEachGpt2Piece(toWellFormed(text), (piece) => {
      const ids = this.encodePiece(piece);
      for (let i = 0; i < ids.length; i++) out.push(ids[i]);
    });
    return out;
  }

  private encodePiece(piece: string): number[] {
    const cached = this.cache.get(piece);
    if (cached !== undefined) return cached;
    const ids = this.bpe(utf8.encode(piece));
    if (piece.length <= CACHE_MAX_WORD) {
      if (this.cache.size >= CACHE_MAX_ENTRIES) this.cache.clear();
      this.cache.set(piece, ids);
    }
    return ids;
  }

  /** BPE over one pre-token's bytes, equal to encoder.py's bpe(). */
  private bpe(bytes: Uint8Array): number[] {
    const sym = new Int32Array(bytes.length); // token id of the symbol starting at each position
    for (let i = 0; i < bytes.length; i++) sym[i] = this.byteIds[bytes[i]];
    return this.bpeMerges.apply(sym);
  }

  private checkId(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize || this.idToToken[id] === undefined) {
      throw new AjarError('bad_token_id', `token id ${id} is not in this tokenizer's vocabulary (ids 0..${this.vocabSize - 1})`);
    }
  }

  tokenBytes(id: number): Uint8Array {
    const cached = this.bytesById[id];
    if (cached !== undefined) return cached;
    this.checkId(id);
    const token = this.idToToken[id]!;
    let bytes: Uint8Array;
    const added = this.addedContent.get(id);
    if (added !== undefined) {
      bytes = utf8.encode(added);
    } else {
      bytes = new Uint8Array(token.length);
      for (let i = 0; i < token.length; i++) {
        const b = CHAR_TO_BYTE.get(token[i]);
        if (b === undefined) {
          // Not a byte-level token (e.g. a special token string put straight in the vocab): its text is its UTF-8.
          bytes = utf8.encode(token);
          break;
        }
        bytes[i] = b;
      }
    }
    this.bytesById[id] = bytes;
    return bytes;
  }

  decode(ids: readonly number[]): string {
    const parts: Uint8Array[] = [];
    let total = 0;
    for (const id of ids) {
      const b = this.tokenBytes(id);
      parts.push(b);
      total += b.length;
    }
    const all = new Uint8Array(total);
    let at = 0;
    for (const b of parts) {
      all.set(b, at);
      at += b.length;
    }
    // NOTE: ignoreBOM, or TextDecoder would drop a leading U+FEFF and break decode(encode(s)) === s.
    return new TextDecoder('utf-8', { ignoreBOM: true }).decode(all);
  }

  /** Writes vocab.json, merges.txt, tokenizer.json, tokenizer_config.json and special_tokens_map.json. */
  save(dir: string, options: SaveOptions = {}): void {
    mkdirSync(dir, { recursive: true });
    const vocabEntries = [...this.vocab].sort((x, y) => x[1] - y[1]);
    const vocabJson = orderedJsonObject(vocabEntries);
    const mergeLines = this.merges.map(([a, b]) => `${a} ${b}`);
    writeFileAtomic(join(dir, 'vocab.json'), `${vocabJson}\n`);
    writeFileAtomic(join(dir, 'merges.txt'), `#version: 0.2\n${mergeLines.map((l) => `${l}\n`).join('')}`);
    writeFileAtomic(join(dir, 'tokenizer.json'), this.tokenizerJson(vocabJson, mergeLines));

    const { bos, eos, unk } = this.specialNames;
    const config: Record<string, unknown> = {
      tokenizer_class: 'GPT2Tokenizer',
      add_bos_token: this.addBos,
      add_prefix_space: false,
      bos_token: bos,
      eos_token: eos,
      unk_token: unk,
      // NOTE: false, so Hugging Face's decode returns the exact text like encoder.py (true would eat " ." spaces).
      clean_up_tokenization_spaces: false,
    };
    writeTokenizerConfigFiles(dir, config, options.modelMaxLength, { bos, eos, unk });
  }

  /** Hugging Face tokenizers' JSON for GPT-2 (the layout of the Hub's gpt2/tokenizer.json). */
  private tokenizerJson(vocabJson: string, mergeLines: readonly string[]): string {
    const byteLevel = (addPrefixSpace: boolean, trimOffsets: boolean) =>
      JSON.stringify({ type: 'ByteLevel', add_prefix_space: addPrefixSpace, trim_offsets: trimOffsets, use_regex: true });
    const lines = [
      '{',
      '  "version": "1.0",',
      '  "truncation": null,',
      '  "padding": null,',
      `  "added_tokens": ${JSON.stringify(this.addedTokens)},`,
      '  "normalizer": null,',
      `  "pre_tokenizer": ${byteLevel(false, true)},`,
      `  "post_processor": ${byteLevel(true, false)},`,
      `  "decoder": ${byteLevel(true, true)},`,
      '  "model": {',
      '    "type": "BPE",',
      '    "dropout": null,',
      '    "unk_token": null,',
      '    "continuing_subword_prefix": "",',
      '    "end_of_word_suffix": "",',
      '    "fuse_unk": false,',
      `    "vocab": ${vocabJson},`,
      `    "merges": ${JSON.stringify(mergeLines)}`,
      '  }',
      '}',
    ];
    return `${lines.join('\n')}\n`;
  }
}
