// The training configuration: every key with its default, the presets, and parsing of YAML/JSON files and
// --key value overrides into one validated TrainConfig. Keys are spelled as on the command line
// (`max-iters`); files may use `max_iters` or `max-iters`.
import { fileURLToPath } from 'node:url';
import { DEFAULT_CANARY_FORMAT, parseCanaryFormat } from '../data/index.js';
import { AjarError } from '../tensor/errors.js';

export interface TrainConfig {
  // data
  data: string; // training data file (required)
  val_data: string | null; // separate validation file; null = split val_fraction off the training data
  val_fraction: number; // 0.1 // nanoGPT: first 90% / last 10% of a single text
  format: 'text' | 'jsonl' | 'csv' | null; // null = from the file extension
  task: 'lm' | 'instruct' | 'classification' | 'regression' | null; // null = inferred from the data's fields
  text_field: string; // 'text'
  label_field: string; // 'label'
  prompt_field: string; // 'prompt'
  completion_field: string; // 'completion'
  // canaries (data/canaries.ts): random secrets planted in the training data for `ajar audit`, kept in OUT.canaries.json
  canaries: number; // 0 // how many distinct secrets
  canary_format: string; // 'my PIN is {digits:6}' // placeholders {digits:N} and {letters:N}
  canary_repeats: number; // 1 // copies of each secret in the training data
  // model
  init_from: string; // 'scratch' or a Hugging Face folder to fine-tune
  tokenizer: string; // for scratch: 'char' (built from the training text), 'gpt2' (GPT-2's BPE) or a folder
  arch: 'gpt2' | 'llama'; // 'gpt2' // architecture of a model from scratch (a fine-tune keeps its own)
  n_kv_head: number | null; // null = n_head // llama: key/value heads (fewer is grouped-query attention)
  intermediate_size: number | null; // null = 8/3 n_embd rounded up to a multiple of 8 // llama: SwiGLU width
  rope_theta: number; // 10000 // llama: RoPE base
  n_layer: number; // 4
  n_head: number; // 4
  n_embd: number; // 128
  dropout: number; // 0.0
  activation: string; // 'gelu_new' (GPT-2's tanh form); 'gelu' is the exact form nanoGPT's nn.GELU() uses
  bias: boolean; // true; false = nanoGPT's bias=False: biases stay 0 and are not trained (the folder keeps them, as zeros)
  block_size: number; // 64 // context length in tokens
  // LoRA (train/lora.ts): a frozen --init-from base with low-rank adapters, saved as a PEFT adapter folder
  lora: boolean; // false
  lora_r: number; // 8 // adapter rank
  lora_alpha: number | null; // null = 2 * lora_r // scaling is alpha / r (alpha / sqrt(r) with use_rslora)
  lora_dropout: number; // 0.0 // dropout on the adapter's input
  lora_targets: string | null; // null = per architecture: gpt2 c_attn,c_proj,c_fc; llama q,k,v,o,gate,up,down_proj
  use_rslora: boolean; // false // rank-stabilised LoRA's scaling alpha / sqrt(r)
  // DP-SGD (train/dp.ts): Poisson batches at rate batch_size / N, per-example clipping, Gaussian noise (Opacus's semantics)
  dp: boolean; // false
  dp_noise_multiplier: number | null; // null = solved from dp_target_epsilon over max_iters steps // noise std / max grad norm
  dp_target_epsilon: number | null; // null = dp_noise_multiplier is given
  dp_delta: number | null; // null = the largest power of ten below 1/N
  dp_max_grad_norm: number; // 1.0 // per-example clipping norm C
  // The unit of privacy in plain text: each line, each blank-line-separated paragraph, or each file of a --data
  // folder; null for JSONL/CSV, whose records are the units (plain text under --dp must choose one).
  dp_unit: 'line' | 'paragraph' | 'file' | null; // null
  // optimisation
  optimizer: 'adamw' | 'sgd'; // 'adamw'
  max_iters: number; // 2000
  batch_size: number; // 12
  grad_accum: number; // 1 // micro-batches per optimizer step
  lr: number; // 1e-3 // peak learning rate
  min_lr: number | null; // null = lr / 10 (nanoGPT's advice)
  warmup_iters: number; // 100
  lr_decay_iters: number | null; // null = max_iters
  decay_lr: boolean; // true: cosine decay; false: constant after warmup
  beta1: number; // 0.9
  beta2: number; // 0.99
  weight_decay: number; // 0.1
  momentum: number; // 0.9 (sgd)
  grad_clip: number; // 1.0 // 0 disables
  // evaluation, logging, checkpoints
  eval_interval: number; // 250
  eval_iters: number; // 20 // validation batches per evaluation
  log_interval: number; // 10
  checkpoint_interval: number | null; // null = eval_interval
  keep_best: boolean; // true: the saved model is the one with the best validation loss
  out: string; // 'out/run'
  resume: boolean; // false
  seed: number; // 1337
  sample_tokens: number; // 200 // characters/tokens of sample text printed at the end (LM only; 0 = none)
}

export const DEFAULTS: TrainConfig = {
  data: '',
  val_data: null,
  val_fraction: 0.1,
  format: null,
  task: null,
  text_field: 'text',
  label_field: 'label',
  prompt_field: 'prompt',
  completion_field: 'completion',
  canaries: 0,
  canary_format: DEFAULT_CANARY_FORMAT,
  canary_repeats: 1,
  init_from: 'scratch',
  tokenizer: 'char',
  arch: 'gpt2',
  n_kv_head: null,
  intermediate_size: null,
  rope_theta: 10000,
  n_layer: 4,
  n_head: 4,
  n_embd: 128,
  dropout: 0,
  activation: 'gelu_new',
  bias: true,
  block_size: 64,
  lora: false,
  lora_r: 8,
  lora_alpha: null,
  lora_dropout: 0,
  lora_targets: null,
  use_rslora: false,
  dp: false,
  dp_noise_multiplier: null,
  dp_target_epsilon: null,
  dp_delta: null,
  dp_max_grad_norm: 1.0,
  dp_unit: null,
  optimizer: 'adamw',
  max_iters: 2000,
  batch_size: 12,
  grad_accum: 1,
  lr: 1e-3,
  min_lr: null,
  warmup_iters: 100,
  lr_decay_iters: null,
  decay_lr: true,
  beta1: 0.9,
  beta2: 0.99,
  weight_decay: 0.1,
  momentum: 0.9,
  grad_clip: 1.0,
  eval_interval: 250,
  eval_iters: 20,
  log_interval: 10,
  checkpoint_interval: null,
  keep_best: true,
  out: 'out/run',
  resume: false,
  seed: 1337,
  sample_tokens: 200,
};

/**
 * A data set that ships in the package's examples/data/, as an absolute path.
 * NOTE: resolved from this file (dist/src/train/config.js -> the package root), not from the current folder, so
 * `npx ajar train --preset shakespeare-char` works from any folder of a project that installed ajar.
 */
export function shippedDataPath(rel: string): string {
  return fileURLToPath(new URL(`../../../examples/data/${rel}`, import.meta.url));
}

/** Presets: named partial configs, applied before the file and the command line. Their data ships with ajar. */
export const PRESETS: Record<string, { about: string; config: Partial<TrainConfig> }> = {
  'shakespeare-char': {
    about: "nanoGPT's CPU recipe: character-level Tiny Shakespeare, 4 layers, 4 heads, width 128, block 64, batch 12, 2000 iterations",
    config: {
      data: shippedDataPath('tinyshakespeare.txt'),
      tokenizer: 'char',
      n_layer: 4,
      n_head: 4,
      n_embd: 128,
      dropout: 0,
      activation: 'gelu', // nanoGPT's MLP uses nn.GELU(), the exact form
      bias: false, // nanoGPT's default bias=False
      block_size: 64,
      batch_size: 12,
      max_iters: 2000,
      lr: 1e-3,
      min_lr: 1e-4,
      warmup_iters: 100,
      lr_decay_iters: 2000,
      beta2: 0.99,
      weight_decay: 0.1,
      grad_clip: 1.0,
      eval_interval: 250,
      eval_iters: 20,
      log_interval: 10,
      out: 'out/shakespeare-char',
      sample_tokens: 300,
    },
  },
  'sentiment': {
    about: 'a small GPT-2 classifier from scratch on the synthetic review set in examples/data/sentiment',
    config: {
      data: shippedDataPath('sentiment/train.jsonl'),
      val_data: shippedDataPath('sentiment/val.jsonl'),
      task: 'classification',
      tokenizer: 'char',
      n_layer: 2,
      n_head: 4,
      n_embd: 64,
      dropout: 0,
      block_size: 128,
      batch_size: 16,
      max_iters: 600,
      lr: 2e-3,
      min_lr: 2e-4,
      warmup_iters: 30,
      eval_interval: 100,
      eval_iters: 20,
      log_interval: 10,
      out: 'out/sentiment',
      sample_tokens: 0,
    },
  },
};

type Kind = 'string' | 'number' | 'int' | 'bool' | 'nullable-string' | 'nullable-number' | 'nullable-int';

const KINDS: Record<keyof TrainConfig, Kind | string[]> = {
  data: 'string', val_data: 'nullable-string', val_fraction: 'number', format: ['text', 'jsonl', 'csv'],
  task: ['lm', 'instruct', 'classification', 'regression'], text_field: 'string', label_field: 'string',
  prompt_field: 'string', completion_field: 'string',
  canaries: 'int', canary_format: 'string', canary_repeats: 'int',
  init_from: 'string', tokenizer: 'string',
  arch: ['gpt2', 'llama'], n_kv_head: 'nullable-int', intermediate_size: 'nullable-int', rope_theta: 'number',
  n_layer: 'int', n_head: 'int', n_embd: 'int', dropout: 'number', activation: ['gelu_new', 'gelu', 'relu', 'silu', 'gelu_pytorch_tanh'], bias: 'bool', block_size: 'int',
  lora: 'bool', lora_r: 'int', lora_alpha: 'nullable-number', lora_dropout: 'number', lora_targets: 'nullable-string',
  use_rslora: 'bool',
  dp: 'bool', dp_noise_multiplier: 'nullable-number', dp_target_epsilon: 'nullable-number', dp_delta: 'nullable-number',
  dp_max_grad_norm: 'number', dp_unit: ['line', 'paragraph', 'file'],
  optimizer: ['adamw', 'sgd'], max_iters: 'int', batch_size: 'int', grad_accum: 'int', lr: 'number',
  min_lr: 'nullable-number', warmup_iters: 'int', lr_decay_iters: 'nullable-int', decay_lr: 'bool',
  beta1: 'number', beta2: 'number', weight_decay: 'number', momentum: 'number', grad_clip: 'number',
  eval_interval: 'int', eval_iters: 'int', log_interval: 'int', checkpoint_interval: 'nullable-int',
  keep_best: 'bool', out: 'string', resume: 'bool', seed: 'int', sample_tokens: 'int',
};

export const CONFIG_KEYS = Object.keys(KINDS) as (keyof TrainConfig)[];

function bad(where: string, key: string, msg: string): never {
  throw new AjarError('bad_config', `${where}: ${key.replace(/_/g, '-')} ${msg}`);
}

/** Coerce one value (from YAML/JSON or a command-line string) to the key's type. */
function coerce(key: keyof TrainConfig, value: unknown, where: string): unknown {
  const kind = KINDS[key];
  // YAML may list LoRA targets as a sequence.
  if (key === 'lora_targets' && Array.isArray(value) && value.every((v) => typeof v === 'string')) value = value.join(',');
  const fromString = typeof value === 'string';
  if (Array.isArray(kind)) {
    if (value === null && (key === 'format' || key === 'task' || key === 'dp_unit')) return null;
    if (typeof value !== 'string' || !kind.includes(value)) bad(where, key, `must be one of ${kind.join(', ')}, got ${JSON.stringify(value)}`);
    return value;
  }
  const nullable = kind.startsWith('nullable-');
  if (nullable && (value === null || value === 'null' || value === 'none')) return null;
  const base = nullable ? kind.slice('nullable-'.length) : kind;
  switch (base) {
    case 'string':
      if (typeof value !== 'string' || value === '') bad(where, key, `must be a non-empty string, got ${JSON.stringify(value)}`);
      return value;
    case 'bool':
      if (typeof value === 'boolean') return value;
      if (value === 'true' || value === '1' || value === 'yes') return true;
      if (value === 'false' || value === '0' || value === 'no') return false;
      return bad(where, key, `must be true or false, got ${JSON.stringify(value)}`);
    default: {
      const n = fromString && (value as string).trim() !== '' ? Number(value) : value;
      if (typeof n !== 'number' || !Number.isFinite(n)) bad(where, key, `must be a number, got ${JSON.stringify(value)}`);
      if (base === 'int' && !Number.isInteger(n)) bad(where, key, `must be an integer, got ${JSON.stringify(value)}`);
      return n;
    }
  }
}

/** Apply a partial config given as an object (file contents or parsed flags), checking every key. */
export function applyOverrides(base: TrainConfig, raw: Record<string, unknown>, where: string): TrainConfig {
  const out: TrainConfig = { ...base };
  for (const [k, v] of Object.entries(raw)) {
    const key = k.replace(/-/g, '_') as keyof TrainConfig;
    if (!(key in KINDS)) {
      const near = CONFIG_KEYS.filter((c) => c.startsWith(key.slice(0, 3))).map((c) => c.replace(/_/g, '-'));
      throw new AjarError('bad_config', `${where}: unknown key '${k}'${near.length ? ` (did you mean ${near.join(', ')}?)` : ''}`);
    }
    (out as unknown as Record<string, unknown>)[key] = coerce(key, v, where);
  }
  return out;
}

export function presetConfig(name: string): Partial<TrainConfig> {
  const p = PRESETS[name];
  if (!p) throw new AjarError('bad_config', `unknown preset '${name}' (presets: ${Object.keys(PRESETS).join(', ')})`);
  return p.config;
}

/** Check ranges and relations between keys; returns the config with derived defaults filled in. */
export function validateConfig(c: TrainConfig): TrainConfig {
  const where = 'train config';
  if (!c.data) bad(where, 'data', 'is required (a text, JSONL or CSV file)');
  const positive: (keyof TrainConfig)[] = ['n_layer', 'n_head', 'n_embd', 'block_size', 'batch_size', 'grad_accum',
    'eval_interval', 'eval_iters', 'log_interval'];
  for (const k of positive) if ((c[k] as number) < 1) bad(where, k, `must be at least 1, got ${c[k]}`);
  if (c.max_iters < 0) bad(where, 'max_iters', `must be >= 0, got ${c.max_iters}`);
  if (c.block_size < 2) bad(where, 'block_size', `must be at least 2, got ${c.block_size}`);
  if (c.n_embd % c.n_head !== 0) bad(where, 'n_embd', `(${c.n_embd}) must be divisible by n-head (${c.n_head})`);
  if (c.n_kv_head !== null && (c.n_kv_head < 1 || c.n_head % c.n_kv_head !== 0)) {
    bad(where, 'n_kv_head', `(${c.n_kv_head}) must divide n-head (${c.n_head})`);
  }
  if (c.arch === 'llama' && (c.n_embd / c.n_head) % 2 !== 0) {
    bad(where, 'n_embd', `/ n-head (${c.n_embd / c.n_head}) must be even for llama's rotary embedding`);
  }
  if (c.intermediate_size !== null && c.intermediate_size < 1) bad(where, 'intermediate_size', `must be at least 1, got ${c.intermediate_size}`);
  if (!(c.rope_theta > 0)) bad(where, 'rope_theta', `must be > 0, got ${c.rope_theta}`);
  if (!(c.lr > 0)) bad(where, 'lr', `must be > 0, got ${c.lr}`);
  if (!(c.dropout >= 0 && c.dropout < 1)) bad(where, 'dropout', `must be in [0, 1), got ${c.dropout}`);
  if (!(c.val_fraction > 0 && c.val_fraction < 1)) bad(where, 'val_fraction', `must be in (0, 1), got ${c.val_fraction}`);
  if (!(c.beta1 >= 0 && c.beta1 < 1)) bad(where, 'beta1', `must be in [0, 1), got ${c.beta1}`);
  if (!(c.beta2 >= 0 && c.beta2 < 1)) bad(where, 'beta2', `must be in [0, 1), got ${c.beta2}`);
  if (c.weight_decay < 0) bad(where, 'weight_decay', `must be >= 0, got ${c.weight_decay}`);
  if (c.grad_clip < 0) bad(where, 'grad_clip', `must be >= 0, got ${c.grad_clip}`);
  if (c.warmup_iters < 0) bad(where, 'warmup_iters', `must be >= 0, got ${c.warmup_iters}`);
  const minLr = c.min_lr ?? c.lr / 10;
  if (minLr < 0 || minLr > c.lr) bad(where, 'min_lr', `must be in [0, lr], got ${minLr}`);
  const decayIters = c.lr_decay_iters ?? c.max_iters;
  if (c.decay_lr && decayIters <= c.warmup_iters && c.max_iters > c.warmup_iters) {
    bad(where, 'lr_decay_iters', `(${decayIters}) must exceed warmup-iters (${c.warmup_iters})`);
  }
  if (c.lora && c.init_from === 'scratch') {
    throw new AjarError('bad_config', `${where}: --lora adapts a pretrained model: give --init-from BASE (a Hugging Face folder or ORG/NAME)`);
  }
  if (c.lora_r < 1) bad(where, 'lora_r', `must be at least 1, got ${c.lora_r}`);
  if (!(c.lora_dropout >= 0 && c.lora_dropout < 1)) bad(where, 'lora_dropout', `must be in [0, 1), got ${c.lora_dropout}`);
  if (c.lora_targets !== null && c.lora_targets.split(',').some((t) => t.trim() === '')) {
    bad(where, 'lora_targets', `must be module names separated by commas, got ${JSON.stringify(c.lora_targets)}`);
  }
  if (c.dp) validateDp(c);
  else if (c.dp_unit !== null) bad(where, 'dp_unit', `chooses the unit of privacy of --dp; add --dp, or leave it out`);
  if (c.canaries < 0) bad(where, 'canaries', `must be >= 0, got ${c.canaries}`);
  if (c.canary_repeats < 1) bad(where, 'canary_repeats', `must be at least 1, got ${c.canary_repeats}`);
  if (c.canaries > 0) parseCanaryFormat(c.canary_format);
  const ckpt = c.checkpoint_interval ?? c.eval_interval;
  if (ckpt < 1) bad(where, 'checkpoint_interval', `must be at least 1, got ${ckpt}`);
  return { ...c, min_lr: minLr, lr_decay_iters: decayIters, checkpoint_interval: ckpt, lora_alpha: c.lora_alpha ?? 2 * c.lora_r };
}

/** DP-SGD's keys: one of noise multiplier and target epsilon, and what Opacus's semantics need. */
function validateDp(c: TrainConfig): void {
  const where = 'train config';
  if ((c.dp_noise_multiplier === null) === (c.dp_target_epsilon === null)) {
    throw new AjarError('bad_config', `${where}: --dp needs exactly one of --dp-noise-multiplier S and --dp-target-epsilon E`);
  }
  if (c.dp_noise_multiplier !== null && c.dp_noise_multiplier < 0) bad(where, 'dp_noise_multiplier', `must be >= 0, got ${c.dp_noise_multiplier}`);
  if (c.dp_target_epsilon !== null && !(c.dp_target_epsilon > 0)) bad(where, 'dp_target_epsilon', `must be > 0, got ${c.dp_target_epsilon}`);
  if (c.dp_delta !== null && !(c.dp_delta > 0 && c.dp_delta < 1)) bad(where, 'dp_delta', `must be in (0, 1), got ${c.dp_delta}`);
  if (!(c.dp_max_grad_norm > 0)) bad(where, 'dp_max_grad_norm', `must be > 0, got ${c.dp_max_grad_norm}`);
  if (c.grad_accum !== 1) bad(where, 'grad_accum', `must be 1 with --dp (each step is one Poisson-sampled batch), got ${c.grad_accum}`);
}
