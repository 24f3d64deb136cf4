// Tokenizers: the Tokenizer interface, GPT-2 byte-level BPE (identical to OpenAI's encoder.py), character-level
// (nanoGPT's *_char datasets), loadTokenizer(dir) for model folders, and StreamDecoder for streaming output.
export type { SaveOptions, Tokenizer, TokenizerKind } from './types.js';
export { Gpt2BpeTokenizer, ENDOFTEXT, parseMergesTxt, parseVocabJson } from './bpe.js';
export type { AddedToken, BpeOptions } from './bpe.js';
export { CharTokenizer, CHAR_TOKENIZER_CLASS } from './char.js';
export { loadTokenizer } from './load.js';
export { StreamDecoder } from './stream.js';
export { gpt2PreTokenize } from './pretokenize.js';
