// StreamDecoder: turns token ids arriving one at a time into text, emitting only complete characters, so a
// multi-byte character split across tokens (an emoji is often 2-4 GPT-2 tokens) is never printed half-made.
import type { Tokenizer } from './types.js';

export class StreamDecoder {
  private readonly tokenizer: Pick<Tokenizer, 'tokenBytes'>;
  // NOTE: ignoreBOM keeps a leading U+FEFF in the text, as Tokenizer.decode does.
  private decoder = new TextDecoder('utf-8', { ignoreBOM: true });

  constructor(tokenizer: Pick<Tokenizer, 'tokenBytes'>) {
    this.tokenizer = tokenizer;
  }

  /** Adds one token; returns the text that became complete (often '', while a character is still partial). */
  push(id: number): string {
    return this.decoder.decode(this.tokenizer.tokenBytes(id), { stream: true });
  }

  /**
   * Ends the stream: returns what is still held (an unfinished character becomes U+FFFD) and resets for reuse.
   * The concatenation of every push() and the final flush() equals tokenizer.decode(allIds).
   */
  flush(): string {
    const rest = this.decoder.decode();
    this.decoder = new TextDecoder('utf-8', { ignoreBOM: true });
    return rest;
  }
}
