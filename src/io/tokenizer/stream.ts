// StreamDecoder: turns token ids arriving one at a time into text, emitting only complete characters, so a
// multi-byte character split across tokens (an emoji is often 2-4 GPT-2 tokens) is never printed half-made.
import type { Tokenizer } from './types.js';

export class StreamDecoder {
  private readonly tokenizer: Pick<Tokenizer, 'tokenBytes'>;
  // NOTE: ignoreBOM keeps a leading U+FEFF in the text, as Tokenizer.decode does.
  private decoder = new TextDecoder('utf-8', { ignoreBOM: true });

  private readonly stripPrefixSpace: boolean;
  private atStart = true;

  /**
   * stripPrefixSpace: drop one space at the very start, as a SentencePiece-style decode() does (its normalizer put
   * it there). Leave it false (the default) when the ids continue a prompt: there the space is part of the text.
   */
  constructor(tokenizer: Pick<Tokenizer, 'tokenBytes'>, options: { stripPrefixSpace?: boolean } = {}) {
    this.tokenizer = tokenizer;
    this.stripPrefixSpace = options.stripPrefixSpace === true;
  }

  /** Adds one token; returns the text that became complete (often '', while a character is still partial). */
  push(id: number): string {
    return this.start(this.decoder.decode(this.tokenizer.tokenBytes(id), { stream: true }));
  }

  private start(text: string): string {
    if (!this.atStart || text === '') return text;
    this.atStart = false;
    return this.stripPrefixSpace && text.startsWith(' ') ? text.slice(1) : text;
  }

  /**
   * Ends the stream: returns what is still held (an unfinished character becomes U+FFFD) and resets for reuse.
   * The concatenation of every push() and the final flush() equals tokenizer.decode(allIds) (for a SentencePiece-style
   * tokenizer, with stripPrefixSpace; and where decode() writes one U+FFFD per bad byte token, this writes one per
   * maximal invalid sequence, as TextDecoder does).
   */
  flush(): string {
    const rest = this.start(this.decoder.decode());
    this.decoder = new TextDecoder('utf-8', { ignoreBOM: true });
    this.atStart = true;
    return rest;
  }
}
