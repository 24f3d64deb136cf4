// The model card (README.md) of an open release: YAML front matter as the Hub's model card metadata spec writes
// it (language, license, library_name, tags, datasets, metrics, base_model, pipeline_tag, model-index) and a body with the
// model's details, how to load it, training details, evaluation results, intended use and limitations.
// Spec: https://github.com/huggingface/hub-docs/blob/main/modelcard.md
import { basename } from 'node:path';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import type { TokenizerKind } from '../io/tokenizer/types.js';
import { AjarError } from '../tensor/errors.js';
import type { AuditRecord } from './audit.js';
import type { ResolvedLicense } from './licenses.js';
import type { ResultRecord } from './results.js';

export interface CardModelInfo {
  architecture: string;
  task: 'causal-lm' | 'sequence-classification';
  config: Record<string, unknown>;
  parameters: number;
  contextLength: number;
  vocabSize: number;
  tokenizerKind: TokenizerKind;
}

/** The card's words for each tokenizer kind, given the formatted vocabulary size. */
const TOKENIZER_WORDS: Record<TokenizerKind, (size: string) => string> = {
  'char': (n) => `a ${n}-character vocabulary (character-level)`,
  'gpt2-bpe': (n) => `GPT-2's byte-level BPE (${n} tokens)`,
  'byte-level-bpe': (n) => `a byte-level BPE (${n} tokens, tokenizer.json)`,
  'sentencepiece-bpe': (n) => `a SentencePiece-style BPE with byte fallback (${n} tokens, tokenizer.json)`,
};

export interface CardInput {
  name: string;
  model: CardModelInfo;
  license: ResolvedLicense;
  results: ResultRecord[];
  trainingArgs: Record<string, unknown> | null;
  /** DP-SGD's privacy record (privacy.json), carried into the front matter as `privacy:`. */
  privacy?: Record<string, unknown> | null;
  /** The recorded privacy audit (privacy_audit.json from 'ajar audit --record'), carried as `privacy_audit:`. */
  privacyAudit?: AuditRecord | null;
  /** Hub dataset ids (--dataset); model-index's results name the first. */
  datasets: string[];
  /** ISO 639-1 language codes (--language). */
  languages?: string[];
  /** Hub id of the base model (--base-model). */
  baseModel?: string;
  /** The publisher's own card (--card): front matter merged over ours (licence keys excepted), body under the title. */
  userCard?: string;
  date: Date;
}

export interface ModelIndexMetric {
  type: string;
  value: number;
  name: string;
}

/** Hub task ids by ajar's task names. */
function hubTask(task: string): { type: string; name: string } {
  if (task === 'classification' || task === 'regression') return { type: 'text-classification', name: 'Text Classification' };
  return { type: 'text-generation', name: 'Text Generation' };
}

function round(v: number): number {
  return Number(v.toPrecision(6));
}

/** A result record's metrics as model-index entries (types from the Hub's metric ids). */
export function indexMetrics(rec: ResultRecord): ModelIndexMetric[] {
  const m = rec.metrics;
  const lm = rec.task === 'lm' || rec.task === 'instruct';
  const out: ModelIndexMetric[] = [];
  const loss = m.loss ?? m.val_loss ?? null;
  if (loss !== null) {
    out.push({ type: 'loss', value: round(loss), name: m.loss != null ? 'loss (nats per token)' : 'validation loss' });
    const ppl = m.perplexity ?? (lm ? Math.exp(loss) : null);
    if (lm && ppl !== null) out.push({ type: 'perplexity', value: round(ppl), name: 'perplexity' });
  }
  if (m.accuracy != null) out.push({ type: 'accuracy', value: round(m.accuracy), name: lm ? 'next-token accuracy' : 'accuracy' });
  if (m.macro_f1 != null) out.push({ type: 'f1', value: round(m.macro_f1), name: 'macro F1' });
  if (m.mse != null) out.push({ type: 'mse', value: round(m.mse), name: 'mean squared error' });
  if (m.mae != null) out.push({ type: 'mae', value: round(m.mae), name: 'mean absolute error' });
  return out;
}

/**
 * The dataset of a record as the card shows it: the file's name without its folder (a local path says nothing to a
 * reader and can reveal the publisher's directories) and the held-out note the trainer adds.
 */
export function datasetLabel(dataset: string): string {
  const m = /^(.*?)( \(held-out [^)]*\))?$/.exec(dataset)!;
  return `${basename(m[1])}${m[2] ?? ''}`;
}

/**
 * The Hub id of a model folder in huggingface_hub's cache (.../models--ORG--NAME/snapshots/REV), as `ajar train
 * --init-from ORG/NAME` records it; undefined for any other path.
 */
export function hubIdOfCachePath(path: unknown): string | undefined {
  if (typeof path !== 'string') return undefined;
  const m = /(?:^|[\\/])models--([^\\/]+?)--([^\\/]+)[\\/]snapshots[\\/]/.exec(path);
  return m ? `${m[1]}/${m[2]}` : undefined;
}

/**
 * model-index's dataset of a record: `type` is a Hub dataset id (the spec's required field), the first --dataset;
 * `name` says which file it was measured on, `split` "validation" for data held out from training.
 * NOTE: without a Hub id a result has no valid dataset entry, so it is left out of model-index (transformers'
 * Trainer drops such results too, "to avoid the model card being rejected") and shown only in the card's table.
 */
function indexDataset(rec: ResultRecord, hubIds: string[]): Record<string, string> | null {
  if (hubIds.length === 0) return null;
  const heldOut = / \(held-out [^)]*\)$/.test(rec.dataset) || rec.source === 'ajar train';
  return { name: datasetLabel(rec.dataset), type: hubIds[0], ...(heldOut ? { split: 'validation' } : {}) };
}

/** Split a Markdown file into its YAML front matter (an object) and body. */
export function splitFrontMatter(text: string, label: string): { meta: Record<string, unknown>; body: string } {
  const normalized = text.replace(/\r\n/g, '\n');
  if (!normalized.startsWith('---\n')) return { meta: {}, body: normalized };
  const end = normalized.indexOf('\n---', 4);
  if (end < 0) throw new AjarError('bad_card', `${label}: the front matter that starts with '---' has no closing '---' line`);
  let meta: unknown;
  try {
    meta = parseYaml(normalized.slice(4, end));
  } catch (e) {
    throw new AjarError('bad_card', `${label}: the front matter is not valid YAML (${(e as Error).message.split('\n')[0]})`);
  }
  if (meta !== null && (typeof meta !== 'object' || Array.isArray(meta))) {
    throw new AjarError('bad_card', `${label}: the front matter must be a YAML mapping of keys to values`);
  }
  const rest = normalized.slice(end + 4);
  return { meta: (meta ?? {}) as Record<string, unknown>, body: rest.replace(/^[^\n]*\n/, '') };
}

/** The front matter object (key order as the Hub's template). */
export function cardMetadata(input: CardInput): Record<string, unknown> {
  const { model, results } = input;
  const task = model.task === 'causal-lm' ? 'text-generation' : 'text-classification';
  const tags = ['ajar', String(model.config.model_type ?? model.architecture).toLowerCase(), task];
  if (model.tokenizerKind === 'char') tags.push('character-level');
  const metricTypes = [...new Set(results.flatMap((r) => indexMetrics(r).map((m) => m.type)))];
  const meta: Record<string, unknown> = {};
  if ((input.languages ?? []).length > 0) meta.language = input.languages;
  Object.assign(meta, input.license.metadata, { library_name: 'transformers', tags });
  if (input.datasets.length > 0) meta.datasets = input.datasets;
  if (metricTypes.length > 0) meta.metrics = metricTypes;
  if (input.baseModel !== undefined) meta.base_model = input.baseModel;
  meta.pipeline_tag = task;
  if (input.privacy) meta.privacy = input.privacy;
  if (input.privacyAudit) meta.privacy_audit = input.privacyAudit;
  const indexed = results.map((r) => ({ r, metrics: indexMetrics(r), dataset: indexDataset(r, input.datasets) }))
    .filter((x) => x.metrics.length > 0 && x.dataset !== null);
  if (indexed.length > 0) {
    meta['model-index'] = [{
      name: input.name,
      results: indexed.map(({ r, metrics, dataset }) => ({ task: hubTask(r.task), dataset, metrics })),
    }];
  }
  return meta;
}

function fmt(v: number): string {
  if (Number.isInteger(v)) return v.toLocaleString('en-US');
  return Math.abs(v) >= 0.01 ? v.toFixed(4) : v.toPrecision(4);
}

function millions(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}K` : String(n);
}

/** max_new_tokens for the card's example: `wanted`, or what fits after a prompt of `prompt` tokens. */
function newTokens(model: CardModelInfo, wanted: number, prompt: number): number {
  return Math.max(1, Math.min(wanted, model.contextLength - prompt));
}

function usageSection(input: CardInput): string[] {
  const { model } = input;
  const cls = model.task === 'causal-lm' ? 'AutoModelForCausalLM' : 'AutoModelForSequenceClassification';
  const lines = ['## How to use', ''];
  if (model.tokenizerKind === 'char') {
    lines.push(
      'The tokenizer is character-level: one token per character of the training text (`tokenizer.json`: a WordLevel',
      'model over the characters, each character split off on its own; `vocab.json` holds the same map). It has no',
      'special tokens (no BOS, EOS or padding), so `special_tokens_map.json` is `{}`; start generation from any text,',
      'e.g. a newline, as nanoGPT\'s `sample.py` does.',
      '',
      '```python',
      `from transformers import AutoTokenizer, ${cls}`,
      '',
      'tokenizer = AutoTokenizer.from_pretrained("path/to/this/folder")',
      `model = ${cls}.from_pretrained("path/to/this/folder")`,
      'ids = tokenizer("To be", return_tensors="pt").input_ids',
    );
    if (model.task === 'causal-lm') {
      // NOTE: prompt + new tokens stay within the context (GPT-2's learned positions end there).
      lines.push(`print(tokenizer.decode(model.generate(ids, max_new_tokens=${newTokens(model, 50, 5)}, do_sample=True)[0]))`);
    }
    lines.push('```');
  } else {
    lines.push(
      '```python',
      `from transformers import AutoTokenizer, ${cls}`,
      '',
      'tokenizer = AutoTokenizer.from_pretrained("path/to/this/folder")',
      `model = ${cls}.from_pretrained("path/to/this/folder")`,
    );
    if (model.task === 'causal-lm') {
      lines.push(
        'ids = tokenizer("Once upon a time", return_tensors="pt").input_ids',
        `print(tokenizer.decode(model.generate(ids, max_new_tokens=${newTokens(model, 40, 8)}, do_sample=False)[0]))`,
      );
    }
    lines.push('```');
  }
  lines.push('', 'With ajar: `ajar generate --model path/to/this/folder --prompt "..."` and `ajar eval --model path/to/this/folder --data FILE`.');
  return lines;
}

const TRAINING_KEYS: Array<[string, string]> = [
  ['data', 'training data'], ['val_data', 'validation data'], ['val_fraction', 'validation share (when no validation file)'],
  ['task', 'task'], ['init_from', 'initialised from'], ['tokenizer', 'tokenizer'], ['n_layer', 'layers'], ['n_head', 'heads'],
  ['n_embd', 'width'], ['block_size', 'block size (tokens)'], ['dropout', 'dropout'], ['optimizer', 'optimizer'],
  ['max_iters', 'steps'], ['batch_size', 'batch size'], ['grad_accum', 'gradient accumulation'], ['lr', 'peak learning rate'],
  ['min_lr', 'final learning rate'], ['warmup_iters', 'warmup steps'], ['decay_lr', 'cosine decay'], ['weight_decay', 'weight decay'],
  ['beta1', 'Adam beta1'], ['beta2', 'Adam beta2'], ['grad_clip', 'gradient clipping'], ['seed', 'seed'],
];

const PATH_KEYS = new Set(['data', 'val_data', 'init_from', 'tokenizer']);

function trainingSection(input: CardInput): string[] {
  const args = input.trainingArgs;
  const lines = ['## Training details', ''];
  if (args === null) {
    lines.push('This folder carries no `training_args.json`: it was not trained by `ajar train`, or its training record was removed.',
      'See the base model\'s card for how it was trained.');
    return lines;
  }
  lines.push('Trained with `ajar train` (AdamW or SGD with linear warmup and cosine decay, as nanoGPT does). Settings:', '',
    '| setting | value |', '|---|---|');
  for (const [key, label] of TRAINING_KEYS) {
    let v = args[key];
    if (v === undefined || v === null) continue;
    if (key === 'val_fraction' && typeof args.val_data === 'string') continue;
    if (PATH_KEYS.has(key) && typeof v === 'string' && v !== 'scratch' && v !== 'char' && v !== 'gpt2') v = basename(v);
    lines.push(`| ${label} | ${typeof v === 'number' ? String(v) : escapeCell(String(v))} |`);
  }
  const p = input.privacy;
  if (p && typeof p.epsilon === 'number' && typeof p.delta === 'number') {
    lines.push('', `Trained with differential privacy (${String(p.mechanism)}): (epsilon ${p.epsilon.toFixed(3)}, delta ${p.delta})-DP per training example, ` +
      `by the ${String(p.accountant).toUpperCase()} accountant over ${String(p.steps)} steps (noise multiplier ${String(p.noise_multiplier)}, ` +
      `clipping norm ${String(p.max_grad_norm)}, sampling rate ${String(p.sample_rate)}); the \`privacy\` front matter holds the record.`);
  }
  const train = input.results.find((r) => r.source === 'ajar train' && r.iters !== null);
  if (train) lines.push('', `The run took ${fmt(train.iters!)} steps and finished on ${train.date.slice(0, 10)}.`);
  return lines;
}

/** The card's section on a recorded privacy audit. */
function auditSection(a: AuditRecord): string[] {
  const m = a.membership;
  const lines = [`Measured by \`ajar audit\` on ${a.date.slice(0, 10)}: a loss-threshold membership inference attack on ${m.members} training `
    + `and ${m.non_members} held-out examples reaches ROC AUC ${m.auc.toFixed(3)} (0.5 is guessing) and advantage ${m.advantage.toFixed(3)}.`];
  const c = a.canaries;
  if (c) {
    lines.push(`${c.count} canaries of the format "${escapeCell(c.format)}", planted ${c.repeats} time(s) each, have exposure ${c.exposure_mean.toFixed(2)} bits `
      + `on average and ${c.exposure_max.toFixed(2)} at most (of ${c.exposure_max_possible.toFixed(2)} possible; ${c.method === 'enumerate' ? 'every other secret ranked' : c.method === 'search' ? 'the secrets at least as likely counted exactly' : `ranked against ${c.references} sampled secrets`}); `
      + `${c.extracted} reproduced verbatim.`);
  }
  const e = a.extraction;
  if (e) lines.push(`Greedy decoding from ${e.prefix_tokens}-token prefixes of ${e.examples} training examples reproduces the next ${e.continuation_tokens} tokens for ${(100 * e.rate).toFixed(1)}% of them.`);
  lines.push('The `privacy_audit` front matter holds the record.');
  return ['## Privacy audit', '', lines.join(' ')];
}

function escapeCell(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

function resultsSection(input: CardInput): string[] {
  const lines = ['## Evaluation results', ''];
  const rows = input.results.flatMap((r) => indexMetrics(r).map((m) => ({ r, m })));
  if (rows.length === 0) {
    lines.push('**No evaluation results were recorded.** The publisher released this model without evaluating it',
      '(`--no-eval`); measure it on your own data before relying on it, e.g. with `ajar eval`.');
    return lines;
  }
  lines.push('Recorded by `ajar train` (on held-out validation data) and `ajar eval --record`. Loss is the mean cross-entropy',
    'in nats per predicted token; perplexity is its exponential.', '',
    '| data | metric | value | by | date |', '|---|---|---:|---|---|');
  for (const { r, m } of rows) {
    lines.push(`| ${escapeCell(datasetLabel(r.dataset))} | ${m.name} | ${fmt(m.value)} | ${r.source} | ${r.date.slice(0, 10)} |`);
  }
  return lines;
}

function intendedUse(model: CardModelInfo): string[] {
  const what = model.task === 'causal-lm' ? 'text generation in the style and domain of its training data'
    : 'classifying text like its training data into the labels it was trained on';
  return ['## Intended use', '',
    `Research, teaching and experiments: ${what}, and a starting point for fine-tuning.`,
    'It is a small model: not meant for decisions about people, for factual answers, or for any use where an error',
    'causes harm.'];
}

function limitations(model: CardModelInfo): string[] {
  const lines = ['## Limitations', '',
    `- With ${millions(model.parameters)} parameters and a ${model.contextLength}-token context it has no knowledge beyond its training`,
    '  data and makes fluent-looking mistakes; do not trust its output as fact.',
    '- It reproduces the biases, errors and any personal data of its training text. It has no safety tuning.',
    '- The evaluation numbers above hold for the data they were measured on; other text can score very differently.'];
  if (model.tokenizerKind === 'char') {
    lines.push('- Its character vocabulary is the characters of its training text: any other character cannot be encoded.');
  }
  return lines;
}

/** True when the publisher's body already has a section with this heading (then ours is left out). */
function hasHeading(body: string, heading: string): boolean {
  return new RegExp(`^#{1,3}\\s+${heading}\\s*$`, 'im').test(body);
}

/** The README.md text of an open release. */
export function renderCard(input: CardInput): string {
  const { model } = input;
  let meta = cardMetadata(input);
  let userBody = '';
  if (input.userCard !== undefined) {
    const user = splitFrontMatter(input.userCard, '--card');
    // NOTE: the licence fields always come from --license, so the card cannot disagree with LICENSE.
    meta = { ...meta, ...user.meta, ...input.license.metadata };
    userBody = user.body.trim();
    // NOTE: a leading "# Title" of the publisher's replaces ours rather than stacking two titles.
    if (/^#\s/.test(userBody)) userBody = userBody.replace(/^#\s[^\n]*\n*/, '').trim();
  }
  const c = model.config;
  const arch = model.task === 'causal-lm' ? 'causal language model' : 'text classifier';
  const count = (v: unknown, one: string): string => (typeof v === 'number' ? `${v} ${one}${v === 1 ? '' : 's'}` : '');
  // GPT-2's config names, else the Llama family's (transformers' LlamaConfig).
  const layers = c.n_layer ?? c.num_hidden_layers;
  const heads = c.n_head ?? c.num_attention_heads;
  const width = c.n_embd ?? c.hidden_size;
  const kvHeads = c.num_key_value_heads !== undefined && c.num_key_value_heads !== heads ? count(c.num_key_value_heads, 'key/value head') : '';
  const shape = [count(layers, 'layer'), count(heads, 'head'), kvHeads, typeof width === 'number' ? `width ${width}` : '']
    .filter((s) => s !== '').join(', ');
  const tok = TOKENIZER_WORDS[model.tokenizerKind](fmt(model.vocabSize));
  const tied = c.tie_word_embeddings !== false;
  const lines: string[] = ['---', stringifyYaml(meta, { lineWidth: 0 }).trimEnd(), '---', '', `# ${input.name}`, ''];
  if (userBody !== '') lines.push(userBody, '');
  lines.push('## Model details', '',
    `- A ${model.architecture} ${arch} (${shape}), ${millions(model.parameters)} parameters (${fmt(model.parameters)}).`,
    `- Context: ${model.contextLength} tokens. Tokenizer: ${tok}.`,
    tied ? '- Weights: float32 in `model.safetensors`, stored as transformers saves them (the output layer tied to the\n' +
      '  token embedding and stored once).' : '- Weights: float32 in `model.safetensors`, stored as transformers saves them.',
    `- Released with ajar (\`ajar release open\`) on ${input.date.toISOString().slice(0, 10)}.`,
    '', ...usageSection(input), '', ...trainingSection(input), '', ...resultsSection(input), '');
  if (input.privacyAudit) lines.push(...auditSection(input.privacyAudit), '');
  if (!hasHeading(userBody, 'Intended use')) lines.push(...intendedUse(model), '');
  if (!hasHeading(userBody, 'Limitations')) lines.push(...limitations(model), '');
  lines.push('## Licence', '',
    `Released under ${input.license.title} (\`${input.license.metadata.license}\`${input.license.metadata.license_name ? `, \`${input.license.metadata.license_name}\`` : ''}). `
      + `The full text is in \`LICENSE\` (${input.license.source}).`,
    '', '## Files and checksums', '',
    '`SHA256SUMS` lists the SHA-256 of every other file here. Check them with `sha256sum -c SHA256SUMS` or `ajar verify .`.', '');
  return lines.join('\n');
}
