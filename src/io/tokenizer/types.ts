// The Tokenizer contract every ajar tokenizer meets: text <-> token ids, the raw bytes of one token (for streaming),
// and saving itself into a model folder that loadTokenizer (and, for GPT-2, Hugging Face) can read back.

/**
 * gpt2-bpe: GPT-2's byte-level BPE (OpenAI's encoder.py); char: one id per character (nanoGPT's *_char);
 * byte-level-bpe: a tokenizer.json byte-level BPE with its own pre-tokenizer and added tokens (Llama 3, Qwen2, SmolLM2);
 * sentencepiece-bpe: a tokenizer.json SentencePiece-style BPE with byte fallback (Llama 2, TinyLlama, Mistral).
 */
export type TokenizerKind = 'gpt2-bpe' | 'char' | 'byte-level-bpe' | 'sentencepiece-bpe';

export interface SaveOptions {
  /** Written as tokenizer_config.json's model_max_length (the model's context length); omitted when not given. */
  modelMaxLength?: number;
}

export interface Tokenizer {
  readonly kind: TokenizerKind;
  /** One more than the largest token id (GPT-2: 50257). */
  readonly vocabSize: number;
  readonly eosTokenId: number | null;
  readonly bosTokenId: number | null;
  /**
   * tokenizer_config.json's add_bos_token (default false). NOTE: encode() never adds special tokens; code that
   * builds model inputs prepends bosTokenId itself when this is true.
   */
  readonly addBos: boolean;
  /** tokenizer_config.json's add_eos_token (absent: false). Like addBos, callers append eosTokenId themselves. */
  readonly addEos?: boolean;
  /**
   * Text -> ids. Lone UTF-16 surrogates (not representable in UTF-8) are encoded as U+FFFD, as TextEncoder does.
   * NOTE: special-token text ("<|im_start|>") becomes its id for the tokenizer.json kinds, as Hugging Face's
   * tokenizers does (chat templates depend on it); 'gpt2-bpe' reads it as plain text, as OpenAI's encoder.py does.
   */
  encode(text: string): number[];
  /** Ids -> text; byte sequences that are not valid UTF-8 (a cut multi-byte character) decode to U+FFFD. */
  decode(ids: readonly number[]): string;
  /** The raw UTF-8 bytes of one token; a token may hold part of a multi-byte character. */
  tokenBytes(id: number): Uint8Array;
  /** Writes the tokenizer's files into dir (created if missing); each file is written to a temp file, then renamed. */
  save(dir: string, options?: SaveOptions): void;
}
