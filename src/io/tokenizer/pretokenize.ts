// GPT-2's pre-tokenizer: splits text into the pieces BPE runs on, exactly as OpenAI's encoder.py regex does.
// Input must be well-formed UTF-16 (no lone surrogates); the pieces concatenate back to the input.
import { LETTER_RANGES, NUMBER_RANGES, SPACE_RANGES } from './unicode-tables.js';

function classBody(ranges: readonly number[]): string {
  let body = '';
  for (let i = 0; i < ranges.length; i += 2) {
    const a = ranges[i];
    const b = ranges[i + 1];
    body += a === b ? `\\u{${a.toString(16)}}` : `\\u{${a.toString(16)}}-\\u{${b.toString(16)}}`;
  }
  return body;
}

const L = classBody(LETTER_RANGES);
const N = classBody(NUMBER_RANGES);
const S = classBody(SPACE_RANGES);

/**
 * The reference pattern  's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * NOTE: with \p{L}, \p{N} and \s spelled out as the code point sets Python's `regex` (the reference's engine,
 * Unicode 15.0) uses. JavaScript's own \s differs (it holds U+FEFF and lacks U+0085) and its \p{L} grows with each
 * Node release's ICU, which would change token ids for the same text between Node versions.
 */
export const GPT2_SPLIT_SOURCE =
  `'s|'t|'re|'ve|'m|'ll|'d| ?[${L}]+| ?[${N}]+| ?[^${S}${L}${N}]+|[${S}]+(?![^${S}])|[${S}]+`;

const GPT2_SPLIT = new RegExp(GPT2_SPLIT_SOURCE, 'gu');

/** Calls onPiece for each pre-token of text, in order. */
export function forEachGpt2Piece(text: string, onPiece: (piece: string) => void): void {
  const re = new RegExp(GPT2_SPLIT); // own lastIndex, so re-entrant calls cannot disturb each other
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) onPiece(m[0]);
}

/** The pre-tokens of text (useful for tests and debugging). */
export function gpt2PreTokenize(text: string): string[] {
  const out: string[] = [];
  forEachGpt2Piece(text, (p) => out.push(p));
  return out;
}
