// Character-level tokenizer (nanoGPT's shakespeare_char): the vocabulary is the sorted set of code points of the
// training text, ids in that order. Stored as vocab.json (char -> id) + tokenizer_config.json naming AjarCharTokenizer.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { AjarError } from '../../tensor/errors.js';
import { codePointLabel, isRecord, orderedJsonObject, readJsonFile, toWellFormed, writeFileAtomic } from './files.js';
import type { SaveOptions, Tokenizer } from './types.js';

export const CHAR_TOKENIZER_CLASS = 'AjarCharTokenizer';

/** tokenizer.json's pre-tokenizer pattern: one match per code point, newlines included (Oniguruma, JS and Python alike). */
const CHAR_SPLIT_REGEX = '[\\s\\S]';

const utf8 = new TextEncoder();

function describeChar(ch: string): string {
  return `${JSON.stringify(ch)} (${codePointLabel(ch.codePointAt(0)!)})`;
}

export class CharTokenizer implements Tokenizer {
  readonly kind = 'char' as const;
  readonly vocabSize: number;
  readonly eosTokenId = null;
  readonly bosTokenId = null;
  readonly addBos = false;
  /** chars[id]: the character (one code point, possibly two UTF-16 units) of each id. */
  readonly chars: readonly string[];
  private readonly idByCodePoint = new Map<number, number>();
  private readonly bytesById: Uint8Array[];

  private constructor(chars: readonly string[]) {
    this.chars = chars;
    this.vocabSize = chars.length;
    chars.forEach((ch, id) => this.idByCodePoint.set(ch.codePointAt(0)!, id));
    this.bytesById = chars.map((ch) => utf8.encode(ch));
  }

  /**
   * The vocabulary of a training text: its distinct code points sorted by code point, as Python's
   * sorted(set(text)) does. NOTE: not JS's default sort, which orders by UTF-16 unit and would put
   * an emoji (a surrogate pair, 0xD83D...) before U+E000..U+FFFF. Lone surrogates count as U+FFFD.
   */
  static fromText(text: string): CharTokenizer {
    const seen = new Set<number>();
    for (const ch of toWellFormed(text)) seen.add(ch.codePointAt(0)!);
    const codePoints = [...seen].sort((a, b) => a - b);
    return new CharTokenizer(codePoints.map((cp) => String.fromCodePoint(cp)));
  }

  /** From vocab.json's object: char -> id, each key one code point, ids exactly 0..n-1. */
  static fromVocab(vocab: unknown, source = 'vocab.json'): CharTokenizer {
    if (!isRecord(vocab)) throw new AjarError('bad_tokenizer', `${source} must be a JSON object mapping character -> id`);
    const entries = Object.entries(vocab);
    const chars = new Array<string | undefined>(entries.length).fill(undefined);
    for (const [ch, id] of entries) {
      const cp = ch.codePointAt(0);
      if ([...ch].length !== 1 || cp === undefined || (cp >= 0xd800 && cp <= 0xdfff)) {
        throw new AjarError('bad_tokenizer', `${source}: key ${JSON.stringify(ch)} is not a single character; a char tokenizer's vocab maps one character to one id`);
      }
      if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= entries.length || chars[id] !== undefined) {
        throw new AjarError('bad_tokenizer', `${source}: ${describeChar(ch)} has id ${JSON.stringify(id)}; ids must be 0..${entries.length - 1}, each used once`);
      }
      chars[id] = ch;
    }
    return new CharTokenizer(chars as string[]);
  }

  /**
   * The same tokenizer as a Hugging Face tokenizer.json, which tokenizers (Rust, Python, JS) and transformers'
   * PreTrainedTokenizerFast load: a WordLevel model over the characters, a pre-tokenizer that isolates every code
   * point (Split on the regex [\s\S]) and the Fuse decoder, which joins tokens without the space WordLevel's default
   * decoding puts between them. No special tokens: the vocabulary is the training text's characters.
   * NOTE: unk_token names a token outside the vocabulary, so an unknown character is an error there, as it is here.
   */
  toTokenizerJson(): Record<string, unknown> {
    return {
      version: '1.0', truncation: null, padding: null, added_tokens: [], normalizer: null,
      pre_tokenizer: { type: 'Split', pattern: { Regex: CHAR_SPLIT_REGEX }, behavior: 'Isolated', invert: false },
      post_processor: null,
      decoder: { type: 'Fuse' },
      model: { type: 'WordLevel', vocab: Object.fromEntries(this.chars.map((ch, id) => [ch, id])), unk_token: '<unk>' },
    };
  }

  /** From a tokenizer.json written by toTokenizerJson (a WordLevel model whose tokens are single characters). */
  static fromTokenizerJson(json: Record<string, unknown>, source: string): CharTokenizer {
    const model = json.model;
    const pre = json.pre_tokenizer;
    const isolatesChars = isRecord(pre) && pre.type === 'Split' && isRecord(pre.pattern) && pre.pattern.Regex === CHAR_SPLIT_REGEX
      && pre.behavior === 'Isolated';
    if (!isRecord(model) || !isolatesChars || (Array.isArray(json.added_tokens) && json.added_tokens.length > 0)) {
      throw new AjarError('bad_tokenizer', `${source}: a WordLevel tokenizer.json is read only as a character-level one `
        + `(pre_tokenizer Split on ${JSON.stringify(CHAR_SPLIT_REGEX)}, isolated; no added tokens), as 'ajar release open' writes it`);
    }
    return CharTokenizer.fromVocab(model.vocab, `${source} (model.vocab)`);
  }

  /** Reads dir/vocab.json. */
  static load(dir: string): CharTokenizer {
    const path = join(dir, 'vocab.json');
    return CharTokenizer.fromVocab(readJsonFile(path), path);
  }

  encode(text: string): number[] {
    const ids: number[] = [];
    let position = 0; // in code points
    for (let i = 0; i < text.length; position++) {
      let cp = text.codePointAt(i)!;
      const width = cp > 0xffff ? 2 : 1;
      const lone = cp >= 0xd800 && cp <= 0xdfff;
      if (lone) cp = 0xfffd; // as TextEncoder does; see fromText
      const id = this.idByCodePoint.get(cp);
      if (id === undefined) throw this.unknownChar(text, i, position, lone);
      ids.push(id);
      i += width;
    }
    return ids;
  }

  private unknownChar(text: string, index: number, position: number, lone: boolean): AjarError {
    const before = text.slice(0, index);
    const line = before.split('\n').length;
    const column = [...before.slice(before.lastIndexOf('\n') + 1)].length + 1;
    const what = lone
      ? `a lone surrogate ${codePointLabel(text.charCodeAt(index))} (encoded as U+FFFD)`
      : `character ${describeChar(String.fromCodePoint(text.codePointAt(index)!))}`;
    return new AjarError('unknown_char',
      `${what} at position ${position} (line ${line}, column ${column}) is not in this char tokenizer's vocabulary `
      + `of ${this.vocabSize} characters from its training text; remove it from the input or retrain on text that contains it`);
  }

  private checkId(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
      throw new AjarError('bad_token_id', `token id ${id} is not in this char tokenizer's vocabulary (ids 0..${this.vocabSize - 1})`);
    }
  }

  decode(ids: readonly number[]): string {
    let text = '';
    for (const id of ids) {
      this.checkId(id);
      text += this.chars[id];
    }
    return text;
  }

  tokenBytes(id: number): Uint8Array {
    this.checkId(id);
    return this.bytesById[id];
  }

  /** Writes vocab.json (char -> id, in id order) and tokenizer_config.json ({"tokenizer_class": "AjarCharTokenizer"}). */
  save(dir: string, options: SaveOptions = {}): void {
    mkdirSync(dir, { recursive: true });
    writeFileAtomic(join(dir, 'vocab.json'), `${orderedJsonObject(this.chars.map((ch, id) => [ch, id] as const))}\n`);
    const config: Record<string, unknown> = { tokenizer_class: CHAR_TOKENIZER_CLASS };
    if (options.modelMaxLength !== undefined) config.model_max_length = options.modelMaxLength;
    writeFileAtomic(join(dir, 'tokenizer_config.json'), `${JSON.stringify(config, null, 2)}\n`);
  }
}
