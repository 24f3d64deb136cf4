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
export type PreTokenizer = (piece: Piece) => Piece[];

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
  if (isRecord(v) && typeof v.String === 'string') return new RegExp(escapeRegexLiteral(v.String), 'gu');
  if (isRecord(v) && typeof v.Regex === 'string') return onigToJsRegex(v.Regex, where);
  return fail(where, `"pattern" must be {"String": ...} or {"Regex": ...}, got ${JSON.stringify(v)}`);
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
    const pattern = parsePattern(n.pattern, `${where}.pattern`);
    const content = str(n, 'content', where);
    return (text) => text.replace(pattern, () => content);
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

function splitPiece(piece: Piece, re: RegExp, behavior: SplitBehavior, invert: boolean): Piece[] {
  let spans = findMatches(re, piece.text);
  if (invert) spans = spans.map((s) => ({ ...s, isMatch: !s.isMatch }));
  return applyBehavior(spans, behavior)
    .filter(([a, b]) => b > a)
    .map(([a, b]) => ({ text: piece.text.slice(a, b), atStart: piece.atStart && a === 0 }));
}

/** Each UTF-8 byte of text as GPT-2's byte character. */
export function toByteChars(text: string): string {
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
    return (piece) => steps.reduce<Piece[]>((pieces, step) => pieces.flatMap(step), [piece]);
  }
  if (type === 'ByteLevel') {
    const addPrefixSpace = p.add_prefix_space === true;
    const useRegex = p.use_regex !== false;
    return (piece) => {
      const text = addPrefixSpace && !piece.text.startsWith(' ') ? ` ${piece.text}` : piece.text;
      const parts: string[] = [];
      if (useRegex) forEachGpt2Piece(text, (part) => parts.push(part));
      else parts.push(text);
      return parts.map((part, i) => ({ text: toByteChars(part), atStart: piece.atStart && i === 0 }));
    };
  }
  if (type === 'Split') {
    const re = parsePattern(p.pattern, `${where}.pattern`);
    const behavior = str(p, 'behavior', where);
    if (!BEHAVIORS.has(behavior)) fail(where, `Split behavior ${JSON.stringify(behavior)} is not one of ${[...BEHAVIORS].join(', ')}`);
    const invert = p.invert === true;
    return (piece) => splitPiece(piece, re, behavior as SplitBehavior, invert);
  }
  if (type === 'Metaspace') {
    const replacement = str(p, 'replacement', where, SPIECE);
    const scheme = metaspaceScheme(p, where);
    const split = p.split !== false;
    const marker = new RegExp(escapeRegexLiteral(replacement), 'gu');
    return (piece) => {
      let text = piece.text.replaceAll(' ', replacement);
      if (!text.startsWith(replacement) && (scheme === 'always' || (scheme === 'first' && piece.atStart))) text = replacement + text;
      const out: Piece = { text, atStart: piece.atStart };
      return split ? splitPiece(out, marker, 'MergedWithNext', false) : [out];
    };
  }
  if (type === 'Digits') {
    const re = p.individual_digits === true ? /\p{N}/gu : /\p{N}+/gu;
    return (piece) => splitPiece(piece, re, 'Isolated', false);
  }
  return fail(where, `pre-tokenizer type ${JSON.stringify(type)} is not supported by ajar (supported: Sequence, ByteLevel, Split, Metaspace, Digits)`);
}

// ---------------------------------------------------------------------------------------------------------------
// Decoders

export type DecoderStep =
  | { kind: 'replace'; pattern: RegExp; content: string }
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
      return [{ kind: 'replace', pattern: parsePattern(d.pattern, `${where}.pattern`), content: str(d, 'content', where) }];
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

/** "<0x0A>" -> 10; anything else -> undefined (tokenizers' ByteFallback test: six characters, <0x..>). */
export function byteFallbackValue(token: string): number | undefined {
  if (token.length !== 6 || !token.startsWith('<0x') || !token.endsWith('>')) return undefined;
  const hex = token.slice(3, 5);
  return /^[0-9a-fA-F]{2}$/.test(hex) ? parseInt(hex, 16) : undefined;
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

function stripToken(token: string, content: string, start: number, stop: number): string {
  const chars = [...token];
  let a = 0;
  while (a < start && a < chars.length && chars[a] === content) a++;
  let b = chars.length;
  while (chars.length - b < stop && b > a && chars[b - 1] === content) b--;
  return chars.slice(a, b).join('');
}

/** Runs the decoder chain over token strings (tokenizers' Decoder::decode_chain, step by step) and joins the result. */
export function runDecoder(steps: readonly DecoderStep[], tokens: string[]): string {
  let toks = tokens;
  for (const step of steps) {
    switch (step.kind) {
      case 'replace':
        toks = toks.map((t) => t.replace(step.pattern, () => step.content));
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
        t = t.replace(step.pattern, () => step.content);
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
