// Neural-network building blocks: Module with checkpoint-exact names, layers, attention and the KV cache.
export * from './attention.js';
export * from './layers.js';
export * from './lora.js';
export * from './module.js';
