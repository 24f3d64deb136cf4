// Evaluation: language-model loss, perplexity and accuracy (classification metrics come with training), and privacy audits' statistics.
export * from './classification.js';
export * from './examples.js';
export * from './lm.js';
export * from './privacy.js';
export * from './audit.js';
