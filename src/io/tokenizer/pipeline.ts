// The text-side steps of a Hugging Face tokenizer.json, parsed and runnable: normalizer, pre-tokenizer, decoder and
// post-processor, each following the Rust `tokenizers` crate. A type ajar does not implement is a bad_tokenizer error.
import { AjarError } from '../../tensor/errors.js';
import { BYTE_TO_CHAR, CHAR_TO_BYTE } from './bytes.js';
import { isRecord } from './files.js';
import { forEachGpt2Piece } from './pretokenize.js';
import { escapeRegexLiteral, onigToJsRegex } from './regex.js';

const utf8 = new TextEncoder();
const SPIECE = '\u2581'; // ▁, SentencePiece's space

/** A piece of the input on its way through the pipeline; atStart: it begins at offset 0 of the original text. */
export interface Piece {
  text: string;
  atStart: boolean;
}

export type Normalizer = (text: string) => string;
/** Splits one piece, calling emit for each resulting piece in order (no arrays: this runs once per word). */
export type PreTokenizer = (text: string, atStart: boolean, emit: Emit) => void;
export type Emit = (text: string, atStart: boolean) => void;

function fail(where: string, message: string): never {
  throw new AjarError('bad_tokenizer', `${where}: ${message}`);
}

function str(v: Record<string, unknown>, key: string, where: string, fallback?: string): string {
  const x = v[key];
  if (typeof x === 'string') return x;
  if (x === undefined && fallback !== undefined) return fallback;
  return fail(where, `"${key}" must be a string, got ${JSON.stringify(x)}`);
}

function list(v: Record<string, unknown>, key: string, where: string): unknown[] {
  const x = v[key];
  if (!Array.isArray(x)) fail(where, `"${key}" must be a list`);
  return x as unknown[];
}

function typeOf(v: unknown, where: string): string {
  if (!isRecord(v) || typeof v.type !== 'string') return fail(where, `expected an object with a "type", got ${JSON.stringify(v)?.slice(0, 80)}`);
  return v.type;
}

/** A Split/Replace pattern: {"String": s} (literal) or {"Regex": onig} -> a global JS regex. */
function parsePattern(v: unknown, where: string): RegExp {
  const p = parseReplacePattern(v, where);
  return typeof p === 'string' ? new RegExp(escapeRegexLiteral(p), 'gu') : p;
}

/** A Replace pattern: the literal string itself (replaceAll is faster), or a global JS regex. */
function parseReplacePattern(v: unknown, where: string): string | RegExp {
  if (isRecord(v) && typeof v.String === 'string') {
    if (v.String === '') fail(where, 'an empty "String" pattern');
    return v.String;
  }
  if (isRecord(v) && typeof v.Regex === 'string') return onigToJsRegex(v.Regex, where);
  return fail(where, `"pattern" must be {"String": ...} or {"Regex": ...}, got ${JSON.stringify(v)}`);
}

function replaceAll(text: string, pattern: string | RegExp, content: string): string {
  if (typeof pattern === 'string') return text.includes(pattern) ? text.replaceAll(pattern, () => content) : text;
  return text.replace(pattern, () => content);
}

// ---------------------------------------------------------------------------------------------------------------
// Normalizers

const UNICODE_FORMS = new Set(['NFC', 'NFD', 'NFKC', 'NFKD']);

/** tokenizer.json's "normalizer" (null -> null). */
export function parseNormalizer(v: unknown, where: string): Normalizer | null {
  if (v === null || v === undefined) return null;
  const type = typeOf(v, where);
  const n = v as Record<string, unknown>;
  if (type === 'Sequence') {
    const steps = list(n, 'normalizers', where).map((s, i) => parseNormalizer(s, `${where}.normalizers[${i}]`)).filter((s) => s !== null);
    return (text) => steps.reduce((t, step) => step(t), text);
  }
  if (type === 'Prepend') {
    const prepend = str(n, 'prepend', where);
    // HF's Prepend leaves an empty string empty.
    return (text) => (text === '' ? text : prepend + text);
  }
  if (type === 'Replace') {
    const pattern = parseReplacePattern(n.pattern, `${where}.pattern`);
    const content = str(n, 'content', where);
    return (text) => replaceAll(text, pattern, content);
  }
  if (UNICODE_FORMS.has(type)) {
    // NOTE: Node's ICU may be a newer Unicode version than the Rust crate's tables; only new characters differ.
    return (text) => text.normalize(type);
  }
  return fail(where, `normalizer type ${JSON.stringify(type)} is not supported by ajar (supported: Sequence, Prepend, Replace, NFC, NFD, NFKC, NFKD)`);
}

// ---------------------------------------------------------------------------------------------------------------
// Pre-tokenizers

type SplitBehavior = 'Removed' | 'Isolated' | 'MergedWithPrevious' | 'MergedWithNext' | 'Contiguous';
const BEHAVIORS = new Set<string>(['Removed', 'Isolated', 'MergedWithPrevious', 'MergedWithNext', 'Contiguous']);

interface Span { start: number; end: number; isMatch: boolean }

/** The pattern's matches and the gaps between them, covering text (tokenizers' Pattern::find_matches). */
function findMatches(re: RegExp, text: string): Span[] {
  if (text === '') return [{ start: 0, end: 0, isMatch: false }];
  const spans: Span[] = [];
  const r = new RegExp(re); // own lastIndex
  let prev = 0;
  let m: RegExpExecArray | null;
  while ((m = r.exec(text)) !== null) {
    const start = m.index;
    const end = start + m[0].length;
    if (end === start) {
      // An empty match splits nothing; step over one code point so the scan moves on.
      r.lastIndex = start + (text.codePointAt(start)! > 0xffff ? 2 : 1);
      continue;
    }
    if (prev !== start) spans.push({ start: prev, end: start, isMatch: false });
    spans.push({ start, end, isMatch: true });
    prev = end;
  }
  if (prev !== text.length) spans.push({ start: prev, end: text.length, isMatch: false });
  return spans;
}

/** NormalizedString::split: the spans after applying the delimiter behaviour; empty ones are dropped later. */
function applyBehavior(spans: Span[], behavior: SplitBehavior): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  if (behavior === 'Removed') {
    for (const s of spans) if (!s.isMatch) out.push([s.start, s.end]);
  } else if (behavior === 'Isolated') {
    for (const s of spans) out.push([s.start, s.end]);
  } else if (behavior === 'MergedWithPrevious') {
    let previousMatch = false;
    for (const s of spans) {
      if (s.isMatch && !previousMatch && out.length > 0) out[out.length - 1][1] = s.end;
      else out.push([s.start, s.end]);
      previousMatch = s.isMatch;
    }
  } else if (behavior === 'MergedWithNext') {
    let previousMatch = false;
    for (let i = spans.length - 1; i >= 0; i--) {
      const s = spans[i];
      if (s.isMatch && !previousMatch && out.length > 0) out[out.length - 1][0] = s.start;
      else out.push([s.start, s.end]);
      previousMatch = s.isMatch;
    }
    out.reverse();
  } else {
    let previousMatch = false;
    for (const s of spans) {
      if (s.isMatch === previousMatch && out.length > 0) out[out.length - 1][1] = s.end;
      else out.push([s.start, s.end]);
      previousMatch = s.isMatch;
    }
  }
  return out;
}

function splitPiece(text: string, atStart: boolean, emit: Emit, re: RegExp, behavior: SplitBehavior, invert: boolean): void {
  if (behavior === 'Isolated' && !invert) {
    // The common case (Llama 3, Qwen2): every match and every gap is a piece, in order.
    re.lastIndex = 0;
    let prev = 0;
    let m: RegExpExecArray | null;
    while ((m = re.exec(text)) !== null) {
      const start = m.index;
      if (m[0].length === 0) {
        re.lastIndex = start + (text.codePointAt(start)! > 0xffff ? 2 : 1);
        continue;
      }
      if (prev !== start) emit(text.slice(prev, start), atStart && prev === 0);
      emit(m[0], atStart && start === 0);
      prev = start + m[0].length;
    }
    if (prev < text.length) emit(text.slice(prev), atStart && prev === 0);
    return;
  }
  let spans = findMatches(re, text);
  if (invert) spans = spans.map((sp) => ({ ...sp, isMatch: !sp.isMatch }));
  for (const [a, b] of applyBehavior(spans, behavior)) {
    if (b > a) emit(text.slice(a, b), atStart && a === 0);
  }
}

/** Each UTF-8 byte of text as GPT-2's byte character. */
export function toByteChars(text: string): string {
  let ascii = true;
  for (let i = 0; i < text.length; i++) {
    if (text.charCodeAt(i) >= 0x80) {
      ascii = false;
      break;
    }
  }
  // NOTE: an ASCII character is its own UTF-8 byte; skipping TextEncoder there halves pre-tokenization time.
  if (ascii) {
    let out = '';
    for (let i = 0; i < text.length; i++) out += BYTE_TO_CHAR[text.charCodeAt(i)];
    return out;
  }
  const bytes = utf8.encode(text);
  let out = '';
  for (let i = 0; i < bytes.length; i++) out += BYTE_TO_CHAR[bytes[i]];
  return out;
}

type PrependScheme = 'always' | 'first' | 'never';

function metaspaceScheme(n: Record<string, unknown>, where: string): PrependScheme {
  const scheme = n.prepend_scheme;
  if (scheme === 'always' || scheme === 'first' || scheme === 'never') return scheme;
  if (scheme === undefined) return n.add_prefix_space === false ? 'never' : 'always'; // the older spelling
  return fail(where, `prepend_scheme must be "always", "first" or "never", got ${JSON.stringify(scheme)}`);
}

/** tokenizer.json's "pre_tokenizer" (null -> null). */
export function parsePreTokenizer(v: unknown, where: string): PreTokenizer | null {
  if (v === null || v === undefined) return null;
  const type = typeOf(v, where);
  const p = v as Record<string, unknown>;
  if (type === 'Sequence') {
    const steps = list(p, 'pretokenizers', where).map((s, i) => parsePreTokenizer(s, `${where}.pretokenizers[${i}]`)).filter((s) => s !== null);
    // Each step feeds the next; the last emits to the caller.
    return (text, atStart, emit) => {
      const run = (i: number, t: string, s0: boolean): void => {
        if (i === steps.length) emit(t, s0);
        else steps[i](t, s0, (u, s1) => run(i + 1, u, s1));
      };
      run(0, text, atStart);
    };
  }
  if (type === 'ByteLevel') {
    const addPrefixSpace = p.add_prefix_space === true;
    const useRegex = p.use_regex !== false;
    return (text, atStart, emit) => {
      const t = addPrefixSpace && !text.startsWith(' ') ? ` ${text}` : text;
      if (!useRegex) {
        emit(toByteChars(t), atStart);
        return;
      }
      let first = true;
      forEachGpt2Piece(t, (part) => {
        emit(toByteChars(part), atStart && first);
        first = false;
      });
    };
  }
  if (type === 'Split') {
    const re = parsePattern(p.pattern, `${where}.pattern`);
    const behavior = str(p, 'behavior', where);
    if (!BEHAVIORS.has(behavior)) fail(where, `Split behavior ${JSON.stringify(behavior)} is not one of ${[...BEHAVIORS].join(', ')}`);
    const invert = p.invert === true;
    return (text, atStart, emit) => splitPiece(text, atStart, emit, re, behavior as SplitBehavior, invert);
  }
  if (type === 'Metaspace') {
    const replacement = str(p, 'replacement', where, SPIECE);
    const scheme = metaspaceScheme(p, where);
    const split = p.split !== false;
    const marker = new RegExp(escapeRegexLiteral(replacement), 'gu');
    return (text, atStart, emit) => {
      let t = text.replaceAll(' ', replacement);
      if (!t.startsWith(replacement) && (scheme === 'always' || (scheme === 'first' && atStart))) t = replacement + t;
      if (split) splitPiece(t, atStart, emit, marker, 'MergedWithNext', false);
      else emit(t, atStart);
    };
  }
  if (type === 'Digits') {
    const re = p.individual_digits === true ? /\p{N}/gu : /\p{N}+/gu;
    return (text, atStart, emit) => splitPiece(text, atStart, emit, re, 'Isolated', false);
  }
  return fail(where, `pre-tokenizer type ${JSON.stringify(type)} is not supported by ajar (supported: Sequence, ByteLevel, Split, Metaspace, Digits)`);
}

// ---------------------------------------------------------------------------------------------------------------
// Decoders

export type DecoderStep =
  | { kind: 'replace'; pattern: string | RegExp; content: string }
  | { kind: 'byteFallback' }
  | { kind: 'fuse' }
  | { kind: 'strip'; content: string; start: number; stop: number }
  | { kind: 'byteLevel' }
  | { kind: 'metaspace'; replacement: string; stripFirst: boolean };

function nonNegativeInt(v: unknown, key: string, where: string): number {
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0) return v;
  return fail(where, `"${key}" must be a whole number >= 0, got ${JSON.stringify(v)}`);
}

/** tokenizer.json's "decoder" as a flat list of steps. */
export function parseDecoder(v: unknown, where: string): DecoderStep[] {
  if (v === null || v === undefined) {
    return fail(where, 'the tokenizer has no decoder (Hugging Face would join tokens with spaces); ajar needs a ByteLevel, Metaspace or SentencePiece-style decoder');
  }
  const type = typeOf(v, where);
  const d = v as Record<string, unknown>;
  switch (type) {
    case 'Sequence':
      return list(d, 'decoders', where).flatMap((s, i) => parseDecoder(s, `${where}.decoders[${i}]`));
    case 'Replace':
      return [{ kind: 'replace', pattern: parseReplacePattern(d.pattern, `${where}.pattern`), content: str(d, 'content', where) }];
    case 'ByteFallback':
      return [{ kind: 'byteFallback' }];
    case 'Fuse':
      return [{ kind: 'fuse' }];
    case 'Strip':
      return [{ kind: 'strip', content: str(d, 'content', where), start: nonNegativeInt(d.start, 'start', where), stop: nonNegativeInt(d.stop, 'stop', where) }];
    case 'ByteLevel':
      return [{ kind: 'byteLevel' }];
    case 'Metaspace':
      return [{ kind: 'metaspace', replacement: str(d, 'replacement', where, SPIECE), stripFirst: metaspaceScheme(d, where) !== 'never' }];
    default:
      return fail(where, `decoder type ${JSON.stringify(type)} is not supported by ajar (supported: Sequence, Replace, ByteFallback, Fuse, Strip, ByteLevel, Metaspace)`);
  }
}

function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48; // 0-9
  if (c >= 65 && c <= 70) return c - 55; // A-F
  if (c >= 97 && c <= 102) return c - 87; // a-f
  return -1;
}

/** "<0x0A>" -> 10; anything else -> undefined (tokenizers' ByteFallback test: six characters, <0x..>). */
export function byteFallbackValue(token: string): number | undefined {
  // Character codes, not slices and regexes: decode calls this once per token.
  if (token.length !== 6 || token.charCodeAt(0) !== 60 || token.charCodeAt(1) !== 48 || token.charCodeAt(2) !== 120 || token.charCodeAt(5) !== 62) {
    return undefined;
  }
  const hi = hexDigit(token.charCodeAt(3));
  const lo = hexDigit(token.charCodeAt(4));
  return hi < 0 || lo < 0 ? undefined : hi * 16 + lo;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const lossyUtf8 = new TextDecoder('utf-8', { ignoreBOM: true });

function byteLevelBytes(token: string): Uint8Array {
  const bytes = new Uint8Array(token.length);
  for (let i = 0; i < token.length; i++) {
    const b = CHAR_TO_BYTE.get(token[i]);
    if (b === undefined) return utf8.encode(token); // not a byte-level token: its text is its UTF-8, as tokenizers does
    bytes[i] = b;
  }
  return bytes;
}

/** Strip decoder on one token: up to `start` leading and `stop` trailing copies of the content character. */
function stripToken(token: string, content: string, start: number, stop: number): string {
  const w = content.length; // 1, or 2 for a character outside the BMP
  let a = 0;
  for (let n = 0; n < start && token.startsWith(content, a); n++) a += w;
  let b = token.length;
  for (let n = 0; n < stop && b - w >= a && token.startsWith(content, b - w); n++) b -= w;
  return a === 0 && b === token.length ? token : token.slice(a, b);
}

/** Runs the decoder chain over token strings (tokenizers' Decoder::decode_chain, step by step) and joins the result. */
export function runDecoder(steps: readonly DecoderStep[], tokens: string[]): string {
  let toks = tokens;
  for (const step of steps) {
    switch (step.kind) {
      case 'replace':
        toks = toks.map((t) => replaceAll(t, step.pattern, step.content));
        break;
      case 'byteFallback': {
        const out: string[] = [];
        let pending: number[] = [];
        const flush = (): void => {
          if (pending.length === 0) return;
          try {
            out.push(strictUtf8.decode(new Uint8Array(pending)));
          } catch {
            // NOTE: tokenizers writes one U+FFFD per byte token of an invalid run (not per maximal invalid sequence).
            for (let i = 0; i < pending.length; i++) out.push('\uFFFD');
          }
          pending = [];
        };
        for (const t of toks) {
          const b = byteFallbackValue(t);
          if (b !== undefined) {
            pending.push(b);
          } else {
            flush();
            out.push(t);
          }
        }
        flush();
        toks = out;
        break;
      }
      case 'fuse':
        toks = [toks.join('')];
        break;
      case 'strip':
        toks = toks.map((t) => stripToken(t, step.content, step.start, step.stop));
        break;
      case 'byteLevel': {
        const parts = toks.map(byteLevelBytes);
        const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
        let at = 0;
        for (const p of parts) {
          all.set(p, at);
          at += p.length;
        }
        toks = [lossyUtf8.decode(all)];
        break;
      }
      case 'metaspace':
        // NOTE: as tokenizers (Rust) does, every ▁ of the first token is dropped when a prefix was prepended.
        toks = toks.map((t, i) => t.split(step.replacement).join(i === 0 && step.stripFirst ? '' : ' '));
        break;
    }
  }
  return toks.join('');
}

/**
 * The bytes one token contributes in the middle of a text: the decoder chain applied to the token alone, without
 * the steps that act on the start of the whole text (a Strip after Fuse, the Metaspace first-token rule).
 */
export function decodeTokenBytes(steps: readonly DecoderStep[], token: string): Uint8Array {
  let t = token;
  let fused = false;
  for (const step of steps) {
    switch (step.kind) {
      case 'replace':
        t = replaceAll(t, step.pattern, step.content);
        break;
      case 'byteFallback': {
        const b = byteFallbackValue(t);
        if (b !== undefined) return Uint8Array.of(b);
        break;
      }
      case 'fuse':
        fused = true;
        break;
      case 'strip':
        // Before a Fuse, Strip acts on every token; after it, only on the start and end of the whole text.
        if (!fused) t = stripToken(t, step.content, step.start, step.stop);
        break;
      case 'byteLevel':
        return byteLevelBytes(t);
      case 'metaspace':
        t = t.split(step.replacement).join(' ');
        break;
    }
  }
  return utf8.encode(t);
}

// ---------------------------------------------------------------------------------------------------------------
// Post-processor

/** The special tokens a TemplateProcessing puts around a single sequence ($A). */
export interface Template {
  prefix: string[];
  suffix: string[];
}

/**
 * tokenizer.json's "post_processor": ByteLevel (offsets only) and TemplateProcessing, alone or in a Sequence.
 * Returns the single-sequence template, or null when none adds tokens.
 */
export function parsePostProcessor(v: unknown, where: string): Template | null {
  if (v === null || v === undefined) return null;
  const type = typeOf(v, where);
  const p = v as Record<string, unknown>;
  if (type === 'ByteLevel') return null;
  if (type === 'Sequence') {
    const templates = list(p, 'processors', where).map((s, i) => parsePostProcessor(s, `${where}.processors[${i}]`)).filter((t) => t !== null);
    if (templates.length > 1) fail(where, 'more than one TemplateProcessing in the Sequence');
    return templates[0] ?? null;
  }
  if (type === 'TemplateProcessing') {
    const single = list(p, 'single', where);
    const prefix: string[] = [];
    const suffix: string[] = [];
    let seenA = false;
    single.forEach((item, i) => {
      const at = `${where}.single[${i}]`;
      if (isRecord(item) && isRecord(item.SpecialToken) && typeof item.SpecialToken.id === 'string') {
        (seenA ? suffix : prefix).push(item.SpecialToken.id);
      } else if (isRecord(item) && isRecord(item.Sequence) && item.Sequence.id === 'A' && !seenA) {
        seenA = true;
      } else {
        fail(at, `expected {"SpecialToken": {"id": ...}} or one {"Sequence": {"id": "A"}}, got ${JSON.stringify(item)}`);
      }
    });
    if (!seenA) fail(where, 'the single template has no {"Sequence": {"id": "A"}}');
    return { prefix, suffix };
  }
  return fail(where, `post-processor type ${JSON.stringify(type)} is not supported by ajar (supported: ByteLevel, TemplateProcessing, Sequence)`);
}
