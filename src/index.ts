// ajar's library entry: the tensor engine, models, tokenizers, training, evaluation, generation and releases; it
// loads no HTTP server and no database (those are 'ajar/serve', see docs/serving.md). Importing it installs the
// default backend (AJAR_BACKEND, else native where the C addon loads, else wasm where WebAssembly SIMD exists, else
// js) unless one is already set; selectBackend(name) chooses.
import { selectBackend } from './backends/select.js';
import { hasBackend } from './tensor/backend.js';

if (!hasBackend()) selectBackend();

export * from './tensor/index.js';
export { selectBackend, backendChoice, BACKEND_NAMES, defaultBackendName } from './backends/select.js';
export { Module, Linear, Conv1D, Embedding, LayerNorm, RMSNorm, KVCache } from './nn/index.js';
export { readSafetensors, writeSafetensors, parseSafetensors, serializeSafetensors } from './io/safetensors.js';
export { loadModelFolder, openWeights, readConfig, readWeights, WeightFiles } from './io/folder.js';
export { convertLlama2c, readLlama2cCheckpoint, readLlama2cTokenizer } from './io/llama2c.js';
export { pull as pullFromHub, resolveModelDir, parseHubRef, hubSettings, type HubRef, type PullOptions, type PullResult } from './io/hub.js';
export { loadTokenizer, CharTokenizer, Gpt2BpeTokenizer, HfBpeTokenizer, StreamDecoder, type Tokenizer } from './io/tokenizer/index.js';
export {
  buildModel, loadPretrained, loadCausalLM, saveModelFolder, GPT2LMHeadModel, GPT2ForSequenceClassification,
  type CausalLM, type SequenceClassifier, type AnyModel,
  attachLora, loadAdapter, saveAdapter, mergeAdapterFolder, type LoraSet, type LoraSpec,
} from './models/index.js';
export { loadDataset, splitValidation, StreamBatcher, ExampleBatcher, type DataSpec, type Dataset } from './data/index.js';
export { generate, generateStream, type GenerateOptions, type GenerationResult } from './generate/index.js';
export { evaluateLM, evaluateClassifier, classificationReport, regressionReport } from './eval/index.js';
export { Trainer, type TrainSummary } from './train/trainer.js';
export { DEFAULTS as TRAIN_DEFAULTS, PRESETS, applyOverrides, validateConfig, type TrainConfig } from './train/config.js';
export { AdamW, SGD, clipGradNorm, decayGroups } from './train/optim.js';
export { lrAt } from './train/schedule.js';
export { DEFAULT_ORDERS as RDP_ORDERS, computeRdp, epsilonOf, noiseMultiplierFor, privacySpent } from './train/accountant.js';
export { releaseOpen, sealBundle, releaseHybrid, loadBundledModel, loadAdapterBundle, verifyRelease } from './release/index.js';
