// Tokenising data: a growable id buffer, long texts encoded in chunks (for progress and memory) where the chunking
// provably gives the same ids, tokenizer errors tagged with file:line, and a tokenizer fingerprint for the cache key.
import { createHash } from 'node:crypto';
import { AjarError, isAjarError } from '../tensor/errors.js';
import type { TokenizerLike } from './types.js';

/** An Int32 array that grows by doubling. */
export class IdBuffer {
  private buf: Int32Array;
  length = 0;

  constructor(capacity = 1024) {
    this.buf = new Int32Array(Math.max(16, capacity));
  }

  push(id: number): void {
    if (this.length === this.buf.length) this.grow(this.length + 1);
    this.buf[this.length++] = id;
  }

  pushAll(ids: ArrayLike<number>): void {
    if (this.length + ids.length > this.buf.length) this.grow(this.length + ids.length);
    for (let i = 0; i < ids.length; i++) this.buf[this.length + i] = ids[i];
    this.length += ids.length;
  }

  /** The ids so far, trimmed to length (a copy). */
  toArray(): Int32Array {
    return this.buf.slice(0, this.length);
  }

  private grow(min: number): void {
    let cap = this.buf.length * 2;
    while (cap < min) cap *= 2;
    const next = new Int32Array(cap);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
  }
}

/** tok.encode(text), with a tokenizer error (an unknown character, say) prefixed by where the text came from. */
export function encodeAt(tok: TokenizerLike, text: string, where: string): number[] {
  try {
    return tok.encode(text);
  } catch (e) {
    if (isAjarError(e)) throw new AjarError(e.code, `${where}: ${e.message}`);
    throw e;
  }
}

/** Tokenizer kinds whose encoding of a text equals the concatenation of the encodings of its safe chunks (below). */
const CHUNKABLE_KINDS = new Set(['char', 'gpt2-bpe']);

function isAsciiAlnum(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
}

/**
 * The first index >= from where the text may be cut, or -1: just after a "\n" that follows a visible ASCII character
 * and precedes an ASCII letter or digit.
 * NOTE: why this is safe for GPT-2's pre-tokenizer ('s|'t|...| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+):
 * the lone "\n" between two non-space characters is always its own piece (no pattern joins "\n" to a letter, and
 * \s+(?!\S) cannot take a longer run), in the whole text and at the end of a chunk alike, so pieces never cross the
 * cut. A cut elsewhere can change ids: "a\n\nb" splits "\n" + "\nb" whole but gives "\n\n" at a chunk end.
 * A char tokenizer can be cut anywhere. Other kinds (SentencePiece adds a prefix space per call) are never cut.
 */
export function nextSafeCut(text: string, from: number): number {
  let i = text.indexOf('\n', Math.max(1, from - 1));
  while (i !== -1 && i + 1 < text.length) {
    const before = text.charCodeAt(i - 1);
    if (before > 32 && before < 127 && isAsciiAlnum(text.charCodeAt(i + 1))) return i + 1;
    i = text.indexOf('\n', i + 1);
  }
  return -1;
}

export const TEXT_CHUNK_CHARS = 1 << 20;

/**
 * Encodes a long text into out, reporting progress in characters. The ids equal tok.encode(text) (see nextSafeCut);
 * chunkChars is the target chunk size (tests use small ones).
 */
export function encodeLongText(
  tok: TokenizerLike,
  text: string,
  out: IdBuffer,
  where: string,
  onProgress?: (done: number, total: number) => void,
  chunkChars = TEXT_CHUNK_CHARS,
): void {
  const chunkable = CHUNKABLE_KINDS.has(tok.kind);
  let start = 0;
  while (start < text.length) {
    let end = text.length;
    if (chunkable && text.length - start > chunkChars) {
      const cut = nextSafeCut(text, start + chunkChars);
      if (cut !== -1) end = cut;
    }
    out.pushAll(encodeAt(tok, text.slice(start, end), where));
    start = end;
    onProgress?.(start, text.length);
  }
}

/** A fixed text run through the tokenizer when it has no fingerprint(): letters, digits, punctuation, spacing, non-ASCII. */
const PROBE_WORDS = [
  'The', ' quick', ' brown', ' fox', ' jumps', ' over', ' the', ' lazy', ' dog', '.', '\n', 'Hello', ',', ' world', '!',
  " it's", ' 12345', ' 3.14', ' naïve', ' café', ' 東京', ' 🙂', '  ', '\t', ' tokenization', ' antidisestablishmentarianism',
];

/**
 * A stable identity of a tokenizer for the cache key: its fingerprint() when it has one; else a sha256 of its kind, vocab
 * size, special tokens, every token's bytes (when it has tokenBytes) and the ids of a probe text, word by word.
 * NOTE: word by word, because a char tokenizer throws on characters outside its vocabulary; those count as null.
 */
export function tokenizerFingerprint(tok: TokenizerLike): string {
  if (typeof tok.fingerprint === 'function') return tok.fingerprint();
  const h = createHash('sha256');
  h.update(JSON.stringify({ kind: tok.kind, vocabSize: tok.vocabSize, eos: tok.eosTokenId, bos: tok.bosTokenId, addBos: tok.addBos }));
  if (typeof tok.tokenBytes === 'function') {
    const len = new Uint8Array(4);
    const view = new DataView(len.buffer);
    for (let id = 0; id < tok.vocabSize; id++) {
      let bytes: Uint8Array;
      try {
        bytes = tok.tokenBytes(id);
      } catch {
        bytes = new Uint8Array(0); // a hole in the vocabulary
      }
      view.setUint32(0, bytes.length, true);
      h.update(len);
      h.update(bytes);
    }
  }
  const probe = PROBE_WORDS.map((w) => {
    try {
      return tok.encode(w);
    } catch {
      return null;
    }
  });
  h.update(JSON.stringify(probe));
  return h.digest('hex');
}
