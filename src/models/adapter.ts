// LoRA adapters in Hugging Face PEFT's format on any model: attach fresh adapters to named linear layers, read and
// write an adapter folder (adapter_config.json, adapter_model.safetensors with PEFT's keys), and merge into the base.
// Format: peft/tuners/lora (LoraConfig, lora.Linear) and peft/utils/save_and_load.py (get_peft_model_state_dict).
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../io/atomic.js';
import { entryExists, oneLine, readRegularJson, readRegularText } from '../io/safe-read.js';
import { readSafetensors, readSafetensorsHeader, writeSafetensors } from '../io/safetensors.js';
import { Conv1D, Linear, LoraAdapter, declaredShape, type Module } from '../nn/index.js';
import { AjarError, tensor, type Rng, type Tensor } from '../tensor/index.js';
import { uniformFill } from '../tensor/random.js';
import { fmtShape } from '../tensor/shape.js';
import type { AnyModel } from './types.js';

/** What a LoRA adapter is, as LoraConfig names it. */
export interface LoraSpec {
  r: number; // 8
  lora_alpha: number; // 2r in ajar train (PEFT's own default is 8)
  lora_dropout: number; // 0
  /** Module names (a layer matches when its path ends in ".name") or, as a string, a regular expression over the path. */
  target_modules: string[] | string;
  use_rslora: boolean; // false: scaling alpha / r; true: alpha / sqrt(r)
  /** Modules trained in full and saved beside the adapter (a classifier's "score" head). */
  modules_to_save: string[] | null;
}

/** The key prefix PEFT's PeftModel gives every tensor of the wrapped model. */
const PREFIX = 'base_model.model.';

/** Default targets per architecture: the attention and MLP projections. */
export function defaultLoraTargets(model: AnyModel): string[] {
  if (model.architecture.startsWith('GPT2')) return ['c_attn', 'c_proj', 'c_fc'];
  return ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];
}

export function loraScaling(spec: Pick<LoraSpec, 'r' | 'lora_alpha' | 'use_rslora'>): number {
  return spec.use_rslora ? spec.lora_alpha / Math.sqrt(spec.r) : spec.lora_alpha / spec.r;
}

export interface LoraEntry {
  /** The layer's dotted path in the model, e.g. transformer.h.0.attn.c_attn. */
  path: string;
  layer: Linear | Conv1D;
  adapter: LoraAdapter;
}

function isTarget(path: string, targets: string[] | string): boolean {
  if (typeof targets === 'string') return new RegExp(`^(?:${targets})$`).test(path); // PEFT: re.fullmatch
  return targets.some((t) => path === t || path.endsWith(`.${t}`));
}

/** The adapters attached to one model, with PEFT's naming for saving and loading them. */
export class LoraSet {
  constructor(readonly model: AnyModel, readonly spec: LoraSpec, readonly entries: LoraEntry[]) {}

  get scaling(): number {
    return loraScaling(this.spec);
  }

  /** modules_to_save parameters under their model names (e.g. score.weight). */
  savedModuleParams(): [string, Tensor][] {
    const names = this.spec.modules_to_save ?? [];
    return this.model.module.namedParameters().filter(([n]) => names.some((m) => n.startsWith(`${m}.`)));
  }

  /** Every tensor an adapter file holds: A, B and the modules_to_save parameters. */
  trainableParameters(): Tensor[] {
    return [...this.entries.flatMap((e) => [e.adapter.A, e.adapter.B]), ...this.savedModuleParams().map(([, t]) => t)];
  }

  /** The adapter's tensors under PEFT's saved names (get_peft_model_state_dict drops the adapter name). */
  stateDict(): Map<string, { shape: readonly number[]; data: Float32Array }> {
    const out = new Map<string, { shape: readonly number[]; data: Float32Array }>();
    for (const e of this.entries) {
      out.set(`${PREFIX}${e.path}.lora_A.weight`, { shape: e.adapter.A.shape, data: e.adapter.A.data });
      out.set(`${PREFIX}${e.path}.lora_B.weight`, { shape: e.adapter.B.shape, data: e.adapter.B.data });
    }
    for (const [n, t] of this.savedModuleParams()) out.set(`${PREFIX}${n}`, { shape: t.shape, data: t.data });
    return out;
  }

  /** Each stored tensor's name -> the adapter tensor it fills (A, B, modules_to_save parameters). */
  private wanted(): Map<string, Tensor> {
    const wanted = new Map<string, Tensor>();
    for (const e of this.entries) {
      wanted.set(`${PREFIX}${e.path}.lora_A.weight`, e.adapter.A);
      wanted.set(`${PREFIX}${e.path}.lora_B.weight`, e.adapter.B);
    }
    for (const [n, t] of this.savedModuleParams()) wanted.set(`${PREFIX}${n}`, t);
    return wanted;
  }

  /** Refuse stored tensors (name -> shape) that are missing, extra or misshapen; reads no values. */
  checkShapes(shapes: Map<string, readonly number[]>, label: string): void {
    const wanted = this.wanted();
    const extra = [...shapes.keys()].filter((k) => !wanted.has(k));
    if (extra.length > 0) {
      throw new AjarError('bad_adapter', `${label}: tensor '${extra[0]}' matches no targeted module of the base` +
        `${extra.length > 1 ? ` (and ${extra.length - 1} more)` : ''}; is the adapter for this base model?`);
    }
    for (const [key, t] of wanted) {
      const stored = shapes.get(key);
      if (!stored) throw new AjarError('bad_adapter', `${label}: tensor '${key}' is missing`);
      const shape = declaredShape(t);
      if (stored.length !== shape.length || stored.some((d, i) => d !== shape[i])) {
        throw new AjarError('bad_adapter', `${label}: tensor '${key}' has shape ${fmtShape(stored)}, ` +
          `the base model and r ${this.spec.r} imply ${fmtShape(shape)}; is the adapter for this base model?`);
      }
    }
  }

  /** Read every tensor of stateDict()'s names from `tensors`; a missing, extra or misshapen one is refused. */
  loadStateDict(tensors: Map<string, { shape: readonly number[]; data: Float32Array }>, label: string): void {
    this.checkShapes(new Map([...tensors].map(([k, v]) => [k, v.shape])), label);
    for (const [key, t] of this.wanted()) t.data.set(tensors.get(key)!.data);
  }

  /** Fold every adapter into its layer's weight (W + scaling B A; transposed for Conv1D) and detach it. */
  merge(): void {
    for (const e of this.entries) {
      const { A, B, scaling } = e.adapter;
      const [r, nIn] = A.shape;
      const nOut = B.shape[0];
      const W = e.layer.weight.data; // Linear (out, in); Conv1D (in, out)
      const conv = e.layer instanceof Conv1D;
      for (let o = 0; o < nOut; o++) {
        for (let i = 0; i < nIn; i++) {
          let s = 0;
          for (let k = 0; k < r; k++) s += B.data[o * r + k] * A.data[k * nIn + i];
          W[conv ? i * nOut + o : o * nIn + i] += scaling * s;
        }
      }
      e.layer.lora = null;
    }
  }

  /** Dropout source for every adapter while training (null: no adapter dropout). */
  setRng(rng: Rng | null): void {
    for (const e of this.entries) e.adapter.rng = rng;
  }
}

/**
 * Attach a LoRA adapter to every linear layer whose path matches spec.target_modules: A drawn as PEFT draws it
 * (nn.init.kaiming_uniform_(A, a=sqrt(5)): U(-1/sqrt(in), 1/sqrt(in))) from `rng`, or zeros without one, B zeros.
 * A target that matches no layer, or matches something that is not a linear layer, is refused.
 */
export function attachLora(model: AnyModel, spec: LoraSpec, rng: Rng | null, label = 'lora'): LoraSet {
  checkSpec(spec, label);
  const modules: [string, Module][] = model.module.namedModules();
  const entries: LoraEntry[] = [];
  for (const [path, m] of modules) {
    if (path === '' || !isTarget(path, spec.target_modules)) continue;
    if (spec.modules_to_save?.some((s) => path === s || path.startsWith(`${s}.`))) continue;
    if (!(m instanceof Linear || m instanceof Conv1D)) {
      throw new AjarError('bad_adapter', `${label}: target module '${path}' is not a linear layer (LoRA adapts Linear and Conv1D layers)`);
    }
    if (m.lora) throw new AjarError('bad_adapter', `${label}: '${path}' already has an adapter`);
    const { inFeatures: nIn, outFeatures: nOut } = m;
    const A = tensor(new Float32Array(spec.r * nIn), [spec.r, nIn]).requireGrad(); // (r, in)
    const B = tensor(new Float32Array(nOut * spec.r), [nOut, spec.r]).requireGrad(); // (out, r)
    if (rng) {
      const bound = 1 / Math.sqrt(nIn); // gain sqrt(2 / (1 + 5)) * sqrt(3 / fan_in)
      uniformFill(A.data, rng, -bound, bound);
    }
    const adapter = new LoraAdapter(A, B, loraScaling(spec), spec.lora_dropout);
    m.lora = adapter;
    entries.push({ path, layer: m, adapter });
  }
  const targets = typeof spec.target_modules === 'string' ? [spec.target_modules] : spec.target_modules;
  for (const t of targets) {
    if (!entries.some((e) => isTarget(e.path, typeof spec.target_modules === 'string' ? t : [t]))) {
      throw new AjarError('bad_adapter', `${label}: target module '${t}' is absent from ${model.architecture} ` +
        `(its linear layers end in ${[...new Set(modules.filter(([, m]) => m instanceof Linear || m instanceof Conv1D).map(([p]) => p.split('.').pop()))].join(', ')})`);
    }
  }
  for (const s of spec.modules_to_save ?? []) {
    if (!modules.some(([p]) => p === s)) {
      throw new AjarError('bad_adapter', `${label}: modules_to_save '${s}' is absent from ${model.architecture}`);
    }
  }
  return new LoraSet(model, spec, entries);
}

function checkSpec(spec: LoraSpec, label: string): void {
  if (!(Number.isInteger(spec.r) && spec.r >= 1)) throw new AjarError('bad_adapter', `${label}: r must be a positive integer, got ${spec.r}`);
  if (!Number.isFinite(spec.lora_alpha)) throw new AjarError('bad_adapter', `${label}: lora_alpha must be a number, got ${spec.lora_alpha}`);
  if (!(spec.lora_dropout >= 0 && spec.lora_dropout < 1)) {
    throw new AjarError('bad_adapter', `${label}: lora_dropout must be in [0, 1), got ${spec.lora_dropout}`);
  }
  if (Array.isArray(spec.target_modules) ? spec.target_modules.length === 0 : spec.target_modules === '') {
    throw new AjarError('bad_adapter', `${label}: target_modules is empty`);
  }
}

export const ADAPTER_CONFIG = 'adapter_config.json';
/**
 * ajar's own file beside a classifier adapter trained over a language model: the config.json fields of the head
 * (architectures, id2label, label2id, num_labels, problem_type, pad_token_id). PEFT leaves these to the caller
 * (AutoModelForSequenceClassification.from_pretrained(base, num_labels=...)); ajar reads them from here.
 */
export const ADAPTER_HEAD = 'ajar_head_config.json';
export const ADAPTER_WEIGHTS = 'adapter_model.safetensors';

/** PEFT's task_type for a model. */
function taskType(model: AnyModel): string {
  return model.task === 'causal-lm' ? 'CAUSAL_LM' : 'SEQ_CLS';
}

/** adapter_config.json as PEFT's LoraConfig.save_pretrained writes it (the fields of PEFT 0.10+, defaults as there). */
export function adapterConfigJson(set: LoraSet, baseModel: string): Record<string, unknown> {
  const s = set.spec;
  return {
    alpha_pattern: {},
    auto_mapping: null,
    base_model_name_or_path: baseModel,
    bias: 'none',
    fan_in_fan_out: set.entries.some((e) => e.layer instanceof Conv1D),
    inference_mode: true,
    init_lora_weights: true,
    layers_pattern: null,
    layers_to_transform: null,
    loftq_config: {},
    lora_alpha: s.lora_alpha,
    lora_dropout: s.lora_dropout,
    megatron_config: null,
    megatron_core: 'megatron.core',
    modules_to_save: s.modules_to_save,
    peft_type: 'LORA',
    r: s.r,
    rank_pattern: {},
    revision: null,
    target_modules: s.target_modules,
    task_type: taskType(set.model),
    use_dora: false,
    use_rslora: s.use_rslora,
  };
}

/** Write adapter_config.json and adapter_model.safetensors (and a classifier's head config) into dir, atomically. */
export function saveAdapter(dir: string, set: LoraSet, baseModel: string): void {
  mkdirSync(dir, { recursive: true });
  if (set.model.task === 'sequence-classification') {
    const c = set.model.config;
    const head = Object.fromEntries(['id2label', 'label2id', 'num_labels', 'problem_type', 'pad_token_id']
      .filter((k) => c[k] !== undefined).map((k) => [k, c[k]]));
    writeFileAtomic(join(dir, ADAPTER_HEAD), `${JSON.stringify({ architectures: [set.model.architecture], ...head }, null, 2)}\n`);
  }
  writeSafetensors(join(dir, ADAPTER_WEIGHTS), set.stateDict(), { format: 'pt' });
  writeFileAtomic(join(dir, ADAPTER_CONFIG), `${JSON.stringify(adapterConfigJson(set, baseModel), null, 2)}\n`);
}

export type AdapterConfig = LoraSpec & { base_model_name_or_path: string | null; task_type: string | null };

/** Read and check adapter_config.json: a LoRA adapter ajar can apply, or one line saying what is not. */
export function readAdapterConfig(dir: string): AdapterConfig {
  const path = join(dir, ADAPTER_CONFIG);
  if (!entryExists(path)) throw new AjarError('bad_adapter', `${dir}: no ${ADAPTER_CONFIG} (is it a PEFT adapter folder?)`);
  return parseAdapterConfig(readRegularText(path, { code: 'bad_adapter', kind: 'config', root: dir }), path);
}

/** The largest LoRA rank accepted; a real adapter's r is at most a few hundred, and a larger one is refused early. */
const MAX_LORA_RANK = 65536;

/** adapter_config.json's text checked as readAdapterConfig checks it; `path` names it in errors. */
export function parseAdapterConfig(text: string, path: string): AdapterConfig {
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(text) as Record<string, unknown>;
  } catch (e) {
    throw new AjarError('bad_adapter', oneLine(`${path} is not valid JSON: ${(e as Error).message}`));
  }
  const bad = (msg: string): never => {
    throw new AjarError('bad_adapter', `${path}: ${msg}`);
  };
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) bad('must hold a JSON object');
  if (raw.peft_type !== 'LORA') bad(`peft_type ${JSON.stringify(raw.peft_type)} is not supported (ajar applies "LORA" adapters)`);
  const r = raw.r ?? 8;
  if (typeof r !== 'number' || !Number.isInteger(r) || r < 1 || r > MAX_LORA_RANK) {
    bad(`r must be an integer from 1 to ${MAX_LORA_RANK}, got ${JSON.stringify(raw.r)}`);
  }
  const alpha = raw.lora_alpha ?? 8;
  if (typeof alpha !== 'number' || !Number.isFinite(alpha)) bad(`lora_alpha must be a number, got ${JSON.stringify(raw.lora_alpha)}`);
  const targets = raw.target_modules;
  const targetsOk = typeof targets === 'string' || (Array.isArray(targets) && targets.length > 0 && targets.every((t) => typeof t === 'string'));
  if (!targetsOk) bad(`target_modules must be a list of module names or a regular expression, got ${JSON.stringify(targets)}`);
  if (raw.bias !== undefined && raw.bias !== 'none') bad(`bias ${JSON.stringify(raw.bias)} is not supported (only "none")`);
  if (raw.use_dora === true) bad('use_dora (DoRA) is not supported');
  for (const k of ['rank_pattern', 'alpha_pattern']) {
    const v = raw[k];
    if (v && typeof v === 'object' && Object.keys(v).length > 0) bad(`${k} is not supported (one r and lora_alpha for every layer)`);
  }
  if (raw.layers_to_transform !== undefined && raw.layers_to_transform !== null) bad('layers_to_transform is not supported');
  const mts = raw.modules_to_save ?? null;
  if (mts !== null && !(Array.isArray(mts) && mts.every((m) => typeof m === 'string'))) bad(`modules_to_save must be a list or null`);
  const dropout = raw.lora_dropout ?? 0;
  if (typeof dropout !== 'number') bad(`lora_dropout must be a number`);
  return {
    r: r as number,
    lora_alpha: alpha as number,
    lora_dropout: dropout as number,
    target_modules: targets as string[] | string,
    use_rslora: raw.use_rslora === true,
    modules_to_save: mts as string[] | null,
    base_model_name_or_path: typeof raw.base_model_name_or_path === 'string' ? raw.base_model_name_or_path : null,
    task_type: typeof raw.task_type === 'string' ? raw.task_type : null,
  };
}

/** The head config a classifier adapter carries (ADAPTER_HEAD), or null. */
export function readAdapterHead(dir: string): Record<string, unknown> | null {
  const path = join(dir, ADAPTER_HEAD);
  if (!entryExists(path)) return null;
  const head = readRegularJson(path, { code: 'bad_adapter', kind: 'config', root: dir });
  if (head === null || typeof head !== 'object' || Array.isArray(head)) throw new AjarError('bad_adapter', `${path} must hold a JSON object`);
  return head as Record<string, unknown>;
}

/**
 * Check the adapter in `dir` against a model without reading any tensor values (config, targets, every stored
 * name and shape); works on a buildShapesOnly model, so a bad adapter is refused before a large base is loaded.
 */
export function checkAdapter(model: AnyModel, dir: string): void {
  const spec = readAdapterConfig(dir);
  const weights = adapterWeightsPath(dir);
  const set = attachLora(model, spec, null, join(dir, ADAPTER_CONFIG));
  try {
    set.checkShapes(new Map([...readSafetensorsHeader(weights, dir).tensors].map(([k, t]) => [k, t.shape])), weights);
  } finally {
    for (const e of set.entries) e.layer.lora = null;
  }
}

function adapterWeightsPath(dir: string): string {
  const weights = join(dir, ADAPTER_WEIGHTS);
  if (!entryExists(weights)) {
    const bin = entryExists(join(dir, 'adapter_model.bin'));
    throw new AjarError('bad_adapter', `${dir}: no ${ADAPTER_WEIGHTS}${bin ? ' (adapter_model.bin is pickle; save it with safe_serialization=True)' : ''}`);
  }
  return weights;
}

/** Attach the adapter in `dir` (PEFT format) to `model`: checked against the model before any value is read. */
export function loadAdapter(model: AnyModel, dir: string): LoraSet {
  const spec = readAdapterConfig(dir);
  const weights = adapterWeightsPath(dir);
  return applyAdapter(model, spec, () => readSafetensors(weights, dir).tensors, join(dir, ADAPTER_CONFIG), weights);
}

/**
 * Attach an adapter from its parsed config and its tensors (read only once the config fits the model): the core of
 * loadAdapter, shared with adapters held in memory (release/hybrid.ts). On any refusal the base is unchanged.
 */
export function applyAdapter(model: AnyModel, spec: AdapterConfig,
  tensors: () => Map<string, { shape: readonly number[]; data: Float32Array }>, configLabel: string, weightsLabel: string): LoraSet {
  if (spec.task_type === 'SEQ_CLS' && model.task !== 'sequence-classification') {
    throw new AjarError('bad_adapter', `${configLabel}: a SEQ_CLS (classifier) adapter needs a sequence-classification base, not ${model.architecture}`);
  }
  const set = attachLora(model, { ...spec, lora_dropout: spec.lora_dropout }, null, configLabel);
  try {
    set.loadStateDict(tensors(), weightsLabel);
  } catch (e) {
    for (const en of set.entries) en.layer.lora = null; // leave the base as it was
    throw e;
  }
  return set;
}
