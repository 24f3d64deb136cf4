// BPE tokenizers read from a Hugging Face tokenizer.json, as the Rust `tokenizers` crate runs them: added tokens split
// out first, then normalizer, pre-tokenizer, BPE (byte-level, or SentencePiece-style with byte_fallback), decoder.
// Covers Llama 2 / TinyLlama / Mistral (kind 'sentencepiece-bpe'), Llama 3 / Qwen2 / SmolLM2 ('byte-level-bpe').
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { AjarError } from '../../tensor/errors.js';
import { parseAddedTokens, parseTokenizerJsonMerges, parseVocabJson, type AddedToken } from './bpe.js';
import { BYTE_TO_CHAR } from './bytes.js';
import { codePointLabel, isRecord, orderedJsonObject, toWellFormed, writeFileAtomic, writeTokenizerConfigFiles, type SpecialTokenNames } from './files.js';
import { BpeMerges } from './merges.js';
import {
  byteFallbackValue, decodeTokenBytes, parseDecoder, parseNormalizer, parsePostProcessor, parsePreTokenizer, runDecoder,
  type DecoderStep, type Normalizer, type Piece, type PreTokenizer, type Template,
} from './pipeline.js';
import { escapeRegexLiteral } from './regex.js';
import type { SaveOptions, Tokenizer } from './types.js';

export type HfBpeKind = 'byte-level-bpe' | 'sentencepiece-bpe';

export interface HfBpeOptions {
  /** bos/eos/unk and add_bos_token / add_eos_token from tokenizer_config.json (specialTokensFromConfig). */
  specials?: SpecialTokenNames;
  /** The parsed tokenizer_config.json, kept so save() writes its other fields back (pad_token, legacy, ...). */
  config?: Record<string, unknown> | null;
  /** tokenizer_config.json's chat_template (chatTemplateFromConfig), written back by save(). */
  chatTemplate?: string;
  /** Where the data came from, for error messages (a file path). */
  source?: string;
}

// Pre-tokens longer than this are not cached (they are rare, and would pin memory).
const CACHE_MAX_WORD = 256;
const CACHE_MAX_ENTRIES = 100_000;
// transformers' LlamaTokenizer(Fast) default add_bos_token to true when tokenizer_config.json does not say.
const BOS_BY_DEFAULT_CLASSES = /^(Llama|CodeLlama)Tokenizer(Fast)?$/;
const WHITESPACE = /\p{White_Space}/u;
const WORD_CHAR = /[\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control}]/u;

const utf8 = new TextEncoder();
// NOTE: ignoreBOM, or TextDecoder would drop a leading U+FEFF and break decode(encode(s)) === s.
const lossyUtf8 = new TextDecoder('utf-8', { ignoreBOM: true });

/** A stretch of the input: plain text still to tokenize, or an added token already matched. */
interface Section extends Piece {
  addedId: number | null;
}

/** The added tokens of one matching pass, as one leftmost-longest alternation (tokenizers uses Aho-Corasick, LeftmostLongest). */
class AddedTokenMatcher {
  private readonly re: RegExp;
  private readonly byContent: Map<string, AddedToken>;

  constructor(tokens: readonly AddedToken[]) {
    this.byContent = new Map(tokens.map((t) => [t.content, t]));
    // Longest first, so the alternation's leftmost-first choice is the longest token at each position.
    const contents = [...this.byContent.keys()].sort((a, b) => b.length - a.length || (a < b ? -1 : 1));
    this.re = new RegExp(contents.map(escapeRegexLiteral).join('|'), 'gu');
  }

  /** AddedVocabulary::find_matches: the sections of text, honouring single_word, lstrip and rstrip. */
  split(text: string, atStart: boolean): Section[] {
    const out: Section[] = [];
    const re = new RegExp(this.re);
    let startOffset = 0;
    let m: RegExpExecArray | null;
    while ((m = re.exec(text)) !== null) {
      let start = m.index;
      let stop = start + m[0].length;
      if (m[0].length === 0) {
        re.lastIndex++;
        continue;
      }
      const token = this.byContent.get(m[0])!;
      if (token.single_word) {
        const startSpace = start === 0 || !WORD_CHAR.test(charBefore(text, start));
        const stopSpace = stop === text.length || !WORD_CHAR.test(charAt(text, stop));
        if (!startSpace || !stopSpace) continue;
      }
      if (token.lstrip) {
        let s = start;
        while (s > 0 && WHITESPACE.test(charBefore(text, s))) s -= charBefore(text, s).length;
        start = Math.max(s, startOffset); // spaces the previous match took stay with it
      }
      if (token.rstrip) {
        while (stop < text.length && WHITESPACE.test(charAt(text, stop))) stop += charAt(text, stop).length;
      }
      if (startOffset < start) out.push({ text: text.slice(startOffset, start), atStart: atStart && startOffset === 0, addedId: null });
      out.push({ text: text.slice(start, stop), atStart: atStart && start === 0, addedId: token.id });
      startOffset = stop;
    }
    if (startOffset < text.length) out.push({ text: text.slice(startOffset), atStart: atStart && startOffset === 0, addedId: null });
    return out;
  }
}

/** The character (one code point) that starts at index i of s. */
function charAt(s: string, i: number): string {
  return String.fromCodePoint(s.codePointAt(i)!);
}

/** The character (one code point) that ends just before index i of s. */
function charBefore(s: string, i: number): string {
  const low = s.charCodeAt(i - 1);
  if (low >= 0xdc00 && low <= 0xdfff && i >= 2) {
    const high = s.charCodeAt(i - 2);
    if (high >= 0xd800 && high <= 0xdbff) return s.slice(i - 2, i);
  }
  return s.slice(i - 1, i);
}

/** Whether any step of a (possibly nested) tokenizer.json component has the given type. */
function hasType(v: unknown, type: string): boolean {
  if (Array.isArray(v)) return v.some((x) => hasType(x, type));
  if (!isRecord(v)) return false;
  if (v.type === type) return true;
  return ['normalizers', 'pretokenizers', 'decoders', 'processors'].some((k) => hasType(v[k], type));
}

export class HfBpeTokenizer implements Tokenizer {
  readonly kind: HfBpeKind;
  readonly vocabSize: number;
  readonly eosTokenId: number | null;
  readonly bosTokenId: number | null;
  readonly unkTokenId: number | null;
  readonly addBos: boolean;
  /** tokenizer_config.json's add_eos_token, else the post-processor's template. NOTE: encode() never adds it either. */
  readonly addEos: boolean;
  readonly chatTemplate: string | undefined;

  private readonly json: Record<string, unknown>;
  private readonly config: Record<string, unknown>;
  private readonly source: string;
  private readonly specialNames: { bos: string | null; eos: string | null; unk: string | null };
  private readonly vocab: Map<string, number>;
  private readonly idToToken: (string | undefined)[] = [];
  private readonly addedTokens: AddedToken[];
  private readonly addedIds = new Map<string, number>();
  private readonly rawMatcher: AddedTokenMatcher | null;
  private readonly normalizedMatcher: AddedTokenMatcher | null;
  private readonly normalizer: Normalizer | null;
  private readonly preTokenizer: PreTokenizer | null;
  private readonly decoder: DecoderStep[];
  private readonly merges: BpeMerges;
  private readonly byteFallback: boolean;
  private readonly fuseUnk: boolean;
  private readonly ignoreMerges: boolean;
  private readonly modelUnkId: number | null;
  /** byteTokenIds[b]: the id of "<0xBB>" (byte fallback), or -1. */
  private readonly byteTokenIds = new Int32Array(256).fill(-1);
  private readonly cache = new Map<string, number[]>();
  private readonly bytesById: (Uint8Array | undefined)[] = [];

  private constructor(json: Record<string, unknown>, options: HfBpeOptions) {
    const source = options.source ?? 'tokenizer.json';
    this.source = source;
    this.json = json;
    this.config = options.config ?? {};
    this.chatTemplate = options.chatTemplate;

    const model = json.model;
    if (!isRecord(model)) throw new AjarError('bad_tokenizer', `${source}: no "model" object`);
    const modelType = model.type ?? 'BPE';
    if (modelType !== 'BPE') {
      throw new AjarError('bad_tokenizer', `${source}: model.type ${JSON.stringify(modelType)} is not supported; ajar reads BPE tokenizers only (GPT-2, Llama, Mistral, Qwen2 style)`);
    }
    const unsupported = (what: string): never => {
      throw new AjarError('bad_tokenizer', `${source}: ${what} is not supported by ajar`);
    };
    if (model.dropout !== undefined && model.dropout !== null && model.dropout !== 0) unsupported(`model.dropout ${String(model.dropout)}`);
    if (typeof model.continuing_subword_prefix === 'string' && model.continuing_subword_prefix !== '') unsupported('model.continuing_subword_prefix');
    if (typeof model.end_of_word_suffix === 'string' && model.end_of_word_suffix !== '') unsupported('model.end_of_word_suffix');

    this.vocab = parseVocabJson(model.vocab, `${source} model.vocab`);
    let maxId = -1;
    for (const [token, id] of this.vocab) {
      if (this.idToToken[id] !== undefined) {
        throw new AjarError('bad_tokenizer', `${source}: tokens ${JSON.stringify(this.idToToken[id])} and ${JSON.stringify(token)} share id ${id}`);
      }
      this.idToToken[id] = token;
      if (id > maxId) maxId = id;
    }
    this.merges = new BpeMerges(parseTokenizerJsonMerges(model.merges, source), this.vocab, source);
    this.byteFallback = model.byte_fallback === true;
    this.fuseUnk = model.fuse_unk === true;
    this.ignoreMerges = model.ignore_merges === true;
    if (model.unk_token !== undefined && model.unk_token !== null && typeof model.unk_token !== 'string') {
      throw new AjarError('bad_tokenizer', `${source}: model.unk_token must be a string or null`);
    }
    const modelUnk = typeof model.unk_token === 'string' ? model.unk_token : null;
    this.modelUnkId = modelUnk === null ? null : (this.vocab.get(modelUnk) ?? null);
    if (modelUnk !== null && this.modelUnkId === null) {
      throw new AjarError('bad_tokenizer', `${source}: model.unk_token ${JSON.stringify(modelUnk)} is not in the vocabulary`);
    }
    for (let b = 0; b < 256; b++) {
      this.byteTokenIds[b] = this.vocab.get(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`) ?? -1;
    }

    this.normalizer = parseNormalizer(json.normalizer, `${source}: normalizer`);
    this.preTokenizer = parsePreTokenizer(json.pre_tokenizer, `${source}: pre_tokenizer`);
    this.decoder = parseDecoder(json.decoder, `${source}: decoder`);
    const template = parsePostProcessor(json.post_processor, `${source}: post_processor`);

    const byteLevel = this.decoder.some((s) => s.kind === 'byteLevel');
    this.kind = byteLevel ? 'byte-level-bpe' : 'sentencepiece-bpe';
    if (byteLevel) {
      if (!hasType(json.pre_tokenizer, 'ByteLevel')) {
        throw new AjarError('bad_tokenizer', `${source}: the decoder is ByteLevel but the pre_tokenizer has no ByteLevel step, so text would not reach the model as bytes`);
      }
      // Byte-level BPE starts every word from its bytes, so all 256 byte characters must be tokens.
      for (let b = 0; b < 256; b++) {
        if (!this.vocab.has(BYTE_TO_CHAR[b])) {
          throw new AjarError('bad_tokenizer', `${source}: the vocabulary lacks the byte-level token ${JSON.stringify(BYTE_TO_CHAR[b])} for byte 0x${b.toString(16)}`);
        }
      }
    }

    this.addedTokens = parseAddedTokens(json.added_tokens, source);
    for (const t of this.addedTokens) {
      const existing = this.idToToken[t.id];
      if (existing === undefined) this.idToToken[t.id] = t.content;
      else if (existing !== t.content) {
        throw new AjarError('bad_tokenizer', `${source}: added token ${JSON.stringify(t.content)} has id ${t.id}, which the vocabulary gives to ${JSON.stringify(existing)}`);
      }
      this.addedIds.set(t.content, t.id);
      if (t.id > maxId) maxId = t.id;
    }
    this.vocabSize = maxId + 1;
    const raw = this.addedTokens.filter((t) => !t.normalized && t.content !== '');
    const normalized = this.addedTokens.filter((t) => t.normalized && t.content !== '');
    this.rawMatcher = raw.length > 0 ? new AddedTokenMatcher(raw) : null;
    this.normalizedMatcher = normalized.length > 0 ? new AddedTokenMatcher(normalized) : null;

    const specials = options.specials ?? {};
    const tokenizerClass = typeof this.config.tokenizer_class === 'string' ? this.config.tokenizer_class : '';
    const sentencePiece = this.kind === 'sentencepiece-bpe';
    const pickName = (given: string | null | undefined, fromTemplate: string | undefined, spDefault: string): string | null => {
      if (given !== undefined) return given;
      if (fromTemplate !== undefined) return fromTemplate;
      // LlamaTokenizer's defaults, for SentencePiece-style folders whose tokenizer_config.json does not say.
      return sentencePiece && this.idOf(spDefault) !== undefined ? spDefault : null;
    };
    const onlyOne = (tokens: string[] | undefined, side: string): string | undefined => {
      if (tokens === undefined || tokens.length === 0) return undefined;
      if (tokens.length > 1) {
        throw new AjarError('bad_tokenizer', `${source}: post_processor's template puts ${tokens.length} special tokens ${side} the text (${tokens.join(' ')}); ajar supports one bos before and one eos after`);
      }
      return tokens[0];
    };
    const templateBos = onlyOne(template?.prefix, 'before');
    const templateEos = onlyOne(template?.suffix, 'after');
    this.specialNames = {
      bos: pickName(specials.bosToken, templateBos, '<s>'),
      eos: pickName(specials.eosToken, templateEos, '</s>'),
      unk: specials.unkToken !== undefined ? specials.unkToken : modelUnk,
    };
    const resolveId = (role: string, name: string | null): number | null => {
      if (name === null) return null;
      const id = this.idOf(name);
      if (id === undefined) throw new AjarError('bad_tokenizer', `${source}: ${role} ${JSON.stringify(name)} is not in the vocabulary`);
      return id;
    };
    this.bosTokenId = resolveId('bos_token', this.specialNames.bos);
    this.eosTokenId = resolveId('eos_token', this.specialNames.eos);
    this.unkTokenId = resolveId('unk_token', this.specialNames.unk);
    this.checkTemplate(template, templateBos, templateEos);
    // NOTE: with neither tokenizer_config.json's add_bos_token nor a template, a Llama tokenizer class, or a
    // SentencePiece-style tokenizer with no class named at all (a bare tokenizer.json, as converters write), adds
    // bos: LlamaTokenizer's default, and what every SentencePiece Llama checkpoint was trained with.
    const bosByDefault = BOS_BY_DEFAULT_CLASSES.test(tokenizerClass) || (tokenizerClass === '' && sentencePiece && this.bosTokenId !== null);
    this.addBos = specials.addBos ?? (templateBos !== undefined || (template === null && bosByDefault));
    this.addEos = specials.addEos ?? templateEos !== undefined;
  }

  /** The template's tokens must be the bos / eos tokens, so addBos/addEos say the same thing. */
  private checkTemplate(template: Template | null, bos: string | undefined, eos: string | undefined): void {
    if (template === null) return;
    if (bos !== undefined && bos !== this.specialNames.bos) {
      throw new AjarError('bad_tokenizer', `${this.source}: post_processor's template starts with ${JSON.stringify(bos)} but bos_token is ${JSON.stringify(this.specialNames.bos)}`);
    }
    if (eos !== undefined && eos !== this.specialNames.eos) {
      throw new AjarError('bad_tokenizer', `${this.source}: post_processor's template ends with ${JSON.stringify(eos)} but eos_token is ${JSON.stringify(this.specialNames.eos)}`);
    }
  }

  /** From a parsed tokenizer.json (model.type BPE). */
  static fromTokenizerJson(json: unknown, options: HfBpeOptions = {}): HfBpeTokenizer {
    const source = options.source ?? 'tokenizer.json';
    if (!isRecord(json)) throw new AjarError('bad_tokenizer', `${source} must be a JSON object`);
    return new HfBpeTokenizer(json, options);
  }

  private idOf(token: string): number | undefined {
    return this.addedIds.get(token) ?? this.vocab.get(token);
  }

  /**
   * Text -> ids as tokenizers' encode(text, add_special_tokens=False): added tokens in the text (special or not)
   * become their ids. NOTE: bos/eos are never added here; see addBos/addEos.
   */
  encode(text: string): number[] {
    const out: number[] = [];
    const emitWord = (word: string): void => {
      const ids = this.encodeWord(word);
      for (let i = 0; i < ids.length; i++) out.push(ids[i]);
    };
    const input = toWellFormed(text);
    const rawSections = this.rawMatcher !== null ? this.rawMatcher.split(input, true) : [{ text: input, atStart: true, addedId: null }];
    for (const section of rawSections) {
      if (section.addedId !== null) {
        out.push(section.addedId);
        continue;
      }
      const normalized = this.normalizer !== null ? this.normalizer(section.text) : section.text;
      if (normalized === '') continue;
      const subSections = this.normalizedMatcher !== null
        ? this.normalizedMatcher.split(normalized, section.atStart)
        : [{ text: normalized, atStart: section.atStart, addedId: null }];
      for (const sub of subSections) {
        if (sub.addedId !== null) {
          out.push(sub.addedId);
          continue;
        }
        if (this.preTokenizer !== null) this.preTokenizer(sub.text, sub.atStart, emitWord);
        else emitWord(sub.text);
      }
    }
    return out;
  }

  private encodeWord(word: string): number[] {
    if (word === '') return [];
    if (this.ignoreMerges) {
      const whole = this.vocab.get(word);
      if (whole !== undefined) return [whole];
    }
    const cached = this.cache.get(word);
    if (cached !== undefined) return cached;
    const ids = this.mergeWord(word);
    if (word.length <= CACHE_MAX_WORD) {
      if (this.cache.size >= CACHE_MAX_ENTRIES) this.cache.clear();
      this.cache.set(word, ids);
    }
    return ids;
  }

  /**
   * BPE::merge_word: one symbol per character (unknown characters by byte fallback, else unk, fused when fuse_unk),
   * then the merges. NOTE: a SentencePiece-style tokenizer has no pre-tokenizer, so a whole text is one word; a
   * fallback symbol that no merge uses (Llama's "\n" is <0x0A>) cuts it into runs merged one at a time, which gives
   * the same ids with memory bounded by the longest run instead of the text.
   */
  private mergeWord(word: string): number[] {
    const out: number[] = [];
    let run: number[] = [];
    let runStart = 0; // where the current run's text starts in word
    let runCacheable = true; // false once an unk (which stands for text before runStart) joins the run
    let at = 0; // where the current character starts in word
    const flushRun = (): void => {
      if (run.length === 0) return;
      let merged: number[];
      if (run.length === 1) {
        merged = run;
      } else if (runStart === 0 && at === word.length) {
        merged = this.merges.apply(Int32Array.from(run)); // the whole word: encodeWord caches it
      } else {
        // A run's ids depend on its text alone, so runs are cached like words (most lines repeat in real text).
        const text = word.slice(runStart, at);
        const cacheable = runCacheable && text.length <= CACHE_MAX_WORD;
        const hit = cacheable ? this.cache.get(text) : undefined;
        merged = hit ?? this.merges.apply(Int32Array.from(run));
        if (hit === undefined && cacheable) {
          if (this.cache.size >= CACHE_MAX_ENTRIES) this.cache.clear();
          this.cache.set(text, merged);
        }
      }
      for (let i = 0; i < merged.length; i++) out.push(merged[i]);
      run = [];
      runCacheable = true;
    };
    const pushSymbol = (id: number): void => {
      if (run.length === 0) runStart = at;
      run.push(id);
    };
    const pushFallback = (id: number): void => {
      if (this.merges.involves(id)) {
        pushSymbol(id);
      } else {
        flushRun();
        out.push(id);
      }
    };
    let pendingUnk = false;
    const flushUnk = (): void => {
      if (pendingUnk) pushFallback(this.modelUnkId!);
      pendingUnk = false;
    };
    for (const ch of word) {
      const id = this.vocab.get(ch);
      if (id !== undefined) {
        flushUnk();
        pushSymbol(id);
        at += ch.length;
        continue;
      }
      if (this.byteFallback) {
        const bytes = utf8.encode(ch);
        let all = true;
        for (let i = 0; i < bytes.length; i++) if (this.byteTokenIds[bytes[i]] < 0) all = false;
        if (all) {
          flushUnk();
          for (let i = 0; i < bytes.length; i++) pushFallback(this.byteTokenIds[bytes[i]]);
          at += ch.length;
          continue;
        }
      }
      if (this.modelUnkId === null) {
        throw new AjarError('unknown_char', `character ${JSON.stringify(ch)} (${codePointLabel(ch.codePointAt(0)!)}) is not in this tokenizer's vocabulary, `
          + 'which has neither byte fallback nor an unk token; remove it from the input');
      }
      if (!(pendingUnk && this.fuseUnk)) flushUnk();
      if (!pendingUnk) {
        // Close the run here, where the unknown text starts, so a cached run's text is exactly what it encodes.
        if (this.merges.involves(this.modelUnkId)) runCacheable = false;
        else flushRun();
      }
      pendingUnk = true;
      at += ch.length;
    }
    flushUnk();
    flushRun();
    return out;
  }

  private checkId(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize || this.idToToken[id] === undefined) {
      throw new AjarError('bad_token_id', `token id ${id} is not in this tokenizer's vocabulary (ids 0..${this.vocabSize - 1})`);
    }
  }

  /** The vocabulary string of id (for SentencePiece-style "▁Hello", "<0x0A>"; byte-level "ĠHello"). */
  tokenString(id: number): string {
    this.checkId(id);
    return this.idToToken[id]!;
  }

  /**
   * Ids -> text through the tokenizer.json decoder, as tokenizers' decode(ids, skip_special_tokens=False).
   * NOTE: a SentencePiece-style decoder drops the one space its normalizer put before the first word.
   */
  decode(ids: readonly number[]): string {
    if (this.decoder.length === 1 && this.decoder[0].kind === 'byteLevel') {
      // The ByteLevel decoder is the tokens' bytes, read as UTF-8 with U+FFFD for bad sequences: tokenBytes, cached.
      const parts = ids.map((id) => this.tokenBytes(id));
      const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
      let at = 0;
      for (const p of parts) {
        all.set(p, at);
        at += p.length;
      }
      return lossyUtf8.decode(all);
    }
    return runDecoder(this.decoder, ids.map((id) => this.tokenString(id)));
  }

  /**
   * The bytes id adds in the middle of a text: "<0xE2>" -> [0xE2], "▁world" -> " world", byte-level tokens -> their
   * bytes. Concatenated, they are decode()'s text except for the start-of-text space decode() drops.
   */
  tokenBytes(id: number): Uint8Array {
    const cached = this.bytesById[id];
    if (cached !== undefined) return cached;
    const bytes = decodeTokenBytes(this.decoder, this.tokenString(id));
    this.bytesById[id] = bytes;
    return bytes;
  }

  /** Whether decode() of a text's ids drops a leading space (the SentencePiece prefix); StreamDecoder can do the same. */
  get decodeStripsPrefixSpace(): boolean {
    return this.decoder.some((s) => s.kind === 'metaspace' || (s.kind === 'strip' && s.start > 0 && s.content === ' '));
  }

  /** byte token id -> its byte, for tests and tools: -1 when id is not a "<0xNN>" token. */
  byteOf(id: number): number {
    return byteFallbackValue(this.tokenString(id)) ?? -1;
  }

  /** Writes tokenizer.json (the pipeline as loaded), tokenizer_config.json and special_tokens_map.json. */
  save(dir: string, options: SaveOptions = {}): void {
    mkdirSync(dir, { recursive: true });
    writeFileAtomic(join(dir, 'tokenizer.json'), this.tokenizerJson());

    const { bos, eos, unk } = this.specialNames;
    const config: Record<string, unknown> = {
      ...this.config,
      tokenizer_class: typeof this.config.tokenizer_class === 'string' ? this.config.tokenizer_class : 'PreTrainedTokenizerFast',
      add_bos_token: this.addBos,
      add_eos_token: this.addEos,
      bos_token: bos,
      eos_token: eos,
      unk_token: unk,
    };
    if (!('clean_up_tokenization_spaces' in config)) config.clean_up_tokenization_spaces = false;
    if (this.chatTemplate !== undefined) config.chat_template = this.chatTemplate;
    writeTokenizerConfigFiles(dir, config, options.modelMaxLength, { bos, eos, unk });
  }

  /** tokenizer.json with the loaded pipeline and model settings; the vocabulary written in id order. */
  private tokenizerJson(): string {
    const model = this.json.model as Record<string, unknown>;
    const vocabJson = orderedJsonObject([...this.vocab].sort((x, y) => x[1] - y[1]));
    const modelLines = Object.entries(model).map(([k, v]) => `    ${JSON.stringify(k)}: ${k === 'vocab' ? vocabJson : JSON.stringify(v)}`);
    const top = (key: string, fallback: unknown = null): string => `  ${JSON.stringify(key)}: ${JSON.stringify(this.json[key] ?? fallback)}`;
    const lines = [
      '{',
      `${top('version', '1.0')},`,
      `${top('truncation')},`,
      `${top('padding')},`,
      `  "added_tokens": ${JSON.stringify(this.addedTokens)},`,
      `${top('normalizer')},`,
      `${top('pre_tokenizer')},`,
      `${top('post_processor')},`,
      `${top('decoder')},`,
      '  "model": {',
      modelLines.join(',\n'),
      '  }',
      '}',
    ];
    return `${lines.join('\n')}\n`;
  }
}
