// Generation: samplers, the KV-cached generation loop and streaming.
export * from './generate.js';
export * from './sampling.js';
