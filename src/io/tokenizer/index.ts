// Tokenizers: the Tokenizer interface, GPT-2 byte-level BPE (identical to OpenAI's encoder.py), Hugging Face
// tokenizer.json BPE (Llama 2/3, Mistral, Qwen2, SmolLM2), character-level (nanoGPT's *_char datasets),
// loadTokenizer(dir) for model folders, and StreamDecoder for streaming output.
export type { SaveOptions, Tokenizer, TokenizerKind } from './types.js';
export { Gpt2BpeTokenizer, ENDOFTEXT, parseMergesTxt, parseVocabJson } from './bpe.js';
export type { AddedToken, BpeOptions } from './bpe.js';
export { HfBpeTokenizer } from './hf-bpe.js';
export type { HfBpeKind, HfBpeOptions } from './hf-bpe.js';
export { CharTokenizer, CHAR_TOKENIZER_CLASS } from './char.js';
export { loadTokenizer, tokenizerFromJson } from './load.js';
export { StreamDecoder } from './stream.js';
export { gpt2PreTokenize } from './pretokenize.js';
export { onigToJsSource } from './regex.js';
