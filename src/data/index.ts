// The data layer: data files (plain text, JSONL, CSV) -> token streams or examples, cached beside the file;
// validation splits; and the batchers the trainer draws from (random windows, shuffled padded epochs).
export type {
  CacheInfo, DataFormat, DataSpec, Dataset, Example, ExampleBatch, ExampleData, LMBatch, LoadOptions, StreamData, Task, TokenizerLike,
} from './types.js';
export { IGNORE_INDEX } from './types.js';
export { loadDataset, sortedLabels } from './load.js';
export { loadTrainAndValidation, splitValidation } from './split.js';
export type { TrainValOptions } from './split.js';
export { ExampleBatcher, StreamBatcher, checkBlockSize, epochPermutation } from './batch.js';
export type { ExampleBatcherOptions, ExampleBatcherState } from './batch.js';
export { CACHE_SUFFIX } from './cache.js';
export { tokenizerFingerprint } from './tokenize.js';
export { instructExample, loadRecordExamples, textExample } from './load.js';
export {
  DEFAULT_CANARY_FORMAT, canaryCharacters, canaryFilePath, drawCanaries, matchesFormat, parseCanaryFormat, plantCanaries,
  readCanaryFile, referenceCandidates, secretOf, secretSteps, writeCanaryFile,
} from './canaries.js';
export type { CanaryFile, CanaryFormat, SecretStep } from './canaries.js';
