// Evaluation: language-model loss, perplexity and accuracy (classification metrics come with training).
export * from './classification.js';
export * from './examples.js';
export * from './lm.js';
