// The architecture registry: config.json's "architectures" / "model_type" -> a builder.
// CLI, training, evaluation and serving reach models only through here; a new architecture adds one entry.
import { AjarError } from '../tensor/errors.js';
import { GPT2ForSequenceClassification, GPT2LMHeadModel } from './gpt2.js';
import { LlamaForCausalLM } from './llama.js';
import type { AnyModel, CausalLM } from './types.js';

interface ArchitectureEntry {
  architectures: string[]; // config.json "architectures" values
  modelTypes: string[]; // config.json "model_type" values
  build(config: Record<string, unknown>, label: string): AnyModel;
}

const entries: ArchitectureEntry[] = [
  {
    architectures: ['GPT2LMHeadModel', 'GPT2Model'],
    modelTypes: ['gpt2'],
    build: (config, label) => new GPT2LMHeadModel(config, label),
  },
  {
    architectures: ['GPT2ForSequenceClassification'],
    modelTypes: [],
    build: (config, label) => new GPT2ForSequenceClassification(config, label),
  },
  {
    architectures: ['LlamaForCausalLM'],
    modelTypes: ['llama'],
    build: (config, label) => new LlamaForCausalLM(config, 'LlamaForCausalLM', 'llama', label),
  },
  {
    architectures: ['MistralForCausalLM'],
    modelTypes: ['mistral'],
    build: (config, label) => new LlamaForCausalLM(config, 'MistralForCausalLM', 'mistral', label),
  },
  {
    architectures: ['Qwen2ForCausalLM'],
    modelTypes: ['qwen2'],
    build: (config, label) => new LlamaForCausalLM(config, 'Qwen2ForCausalLM', 'qwen2', label),
  },
];

export function knownArchitectures(): string[] {
  return entries.flatMap((e) => e.architectures);
}

/** Build an (uninitialised) model from a config.json object. */
export function buildModel(config: Record<string, unknown>, label = 'config.json'): AnyModel {
  const archs = Array.isArray(config.architectures) ? (config.architectures as unknown[]).map(String) : [];
  const modelType = typeof config.model_type === 'string' ? config.model_type : undefined;
  const entry = entries.find((e) => archs.some((a) => e.architectures.includes(a))) ??
    (archs.length === 0 && modelType ? entries.find((e) => e.modelTypes.includes(modelType)) : undefined);
  if (!entry) {
    const what = archs.length > 0 ? `architecture ${archs.join(', ')}` : modelType ? `model_type "${modelType}"` :
      'no "architectures" or "model_type"';
    throw new AjarError('unknown_architecture',
      `${label}: ${what} is not supported (supported: ${knownArchitectures().join(', ')})`);
  }
  return entry.build(config, label);
}

/** Build a model that must be a causal language model (generation, perplexity, serving). */
export function asCausalLM(model: AnyModel, label: string): CausalLM {
  if (model.task !== 'causal-lm') {
    throw new AjarError('wrong_model_task',
      `${label}: ${model.architecture} is a sequence classifier, not a language model; it cannot generate text`);
  }
  return model;
}
