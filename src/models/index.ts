// Model architectures behind the registry, and loading from Hugging Face folders.
export * from './adapter.js';
export * from './gpt2.js';
export * from './llama.js';
export * from './load.js';
export * from './merge.js';
export * from './quantize.js';
export * from './quantize-folder.js';
export * from './registry.js';
export * from './save.js';
export * from './types.js';
