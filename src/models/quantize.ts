// Weight-only int8 quantisation of a model (`ajar quantize`) and the folder format that stores it. Every Linear,
// Conv1D and Embedding weight whose rows split into groups of 32 inputs is stored as llama.cpp's Q8_0 does it
// (tensor/quant.ts): int8 values and one float32 scale per group of 32; norms, biases and other weights stay float32.
// The folder is a Hugging Face folder in which config.json carries
//   "quantization_config": { "quant_method": "ajar_q8_0", "bits": 8, "group_size": 32, "scale_dtype": "float32",
//                            "modules": ["transformer.h.0.attn.c_attn.weight", ...] }
// and model.safetensors holds, for each listed weight "P.weight", "P.qweight" (I8, (out, in): GPT-2's Conv1D weights
// transposed) and "P.scales" (F32, (out, in / group_size)) instead of it; every other tensor is F32 under its name.
import { openWeights, readConfig, type WeightFiles } from '../io/folder.js';
import type { Int8Tensor, WeightTensor } from '../io/safetensors.js';
import { Conv1D, Embedding, Linear, releaseParameter, type TensorSource } from '../nn/index.js';
import { AjarError } from '../tensor/errors.js';
import { Q8_GROUP, q8Fits, quantizeQ8, type Q8Matrix } from '../tensor/quant.js';
import { fmtShape, shapeEq, type Shape } from '../tensor/shape.js';
import type { AnyModel } from './types.js';

/** config.json's quantization_config.quant_method for this format. */
export const Q8_METHOD = 'ajar_q8_0';

/** config.json's "quantization_config" of a quantised folder. */
export interface QuantizationConfig {
  quant_method: typeof Q8_METHOD;
  bits: 8;
  group_size: number; // 32 // Q8_0's block
  scale_dtype: 'float32';
  modules: string[]; // the weights stored as int8, by parameter name
}

type QuantLayer = Linear | Conv1D | Embedding;

/** A weight that can be stored as int8: its parameter name, the stem of its int8 tensors' names, its layer. */
interface Target {
  name: string; // 'transformer.h.0.attn.c_attn.weight'
  stem: string; // 'transformer.h.0.attn.c_attn'
  layer: QuantLayer;
  rows: number; // outputs (an embedding's rows)
  cols: number; // inputs (an embedding's width)
}

/** Every Linear, Conv1D and Embedding weight of the model whose inputs split into groups of `group`. */
function targets(model: AnyModel, group: number): Target[] {
  const out: Target[] = [];
  for (const [stem, m] of model.module.namedModules()) {
    let rows: number;
    let cols: number;
    if (m instanceof Linear || m instanceof Conv1D) [rows, cols] = [m.outFeatures, m.inFeatures];
    else if (m instanceof Embedding) [rows, cols] = [m.num, m.dim];
    else continue;
    if (q8Fits(cols, group)) out.push({ name: `${stem}.weight`, stem, layer: m, rows, cols });
  }
  return out;
}

/** GPT-2's Conv1D weight (in, out) as (out, in); other layers' weights are (out, in) already. */
function rowsByOutput(t: Target): Float32Array {
  const w = t.layer.weight.data;
  if (!(t.layer instanceof Conv1D)) return w;
  const out = new Float32Array(w.length);
  for (let i = 0; i < t.cols; i++) for (let o = 0; o < t.rows; o++) out[o * t.cols + i] = w[i * t.rows + o];
  return out;
}

/**
 * Quantise the model's weights in place: each target layer gets its int8 copy and gives back its float32 weight.
 * Returns the quantization_config that describes the result.
 */
export function quantizeModel(model: AnyModel, group = Q8_GROUP): QuantizationConfig {
  const modules: string[] = [];
  for (const t of targets(model, group)) {
    if (t.layer.quant) continue;
    t.layer.quant = quantizeQ8(rowsByOutput(t), t.rows, t.cols, group);
    releaseParameter(t.layer.weight);
    modules.push(t.name);
  }
  if (modules.length === 0) {
    throw new AjarError('nothing_to_quantize', `${model.architecture}: no weight has inputs that split into groups of ${group}`);
  }
  return { quant_method: Q8_METHOD, bits: 8, group_size: group, scale_dtype: 'float32', modules };
}

/** The tensors of a quantised model's folder: its float32 tensors, and each int8 weight as qweight and scales. */
export function quantizedTensors(model: AnyModel, qc: QuantizationConfig): Map<string, WeightTensor | Int8Tensor> {
  const listed = new Set(qc.modules);
  const out = new Map<string, WeightTensor | Int8Tensor>();
  for (const [name, t] of model.stateDict()) if (!listed.has(name)) out.set(name, t);
  for (const t of targets(model, qc.group_size)) {
    const q = t.layer.quant;
    if (!q || !listed.has(t.name)) continue;
    out.set(`${t.stem}.qweight`, { shape: [q.rows, q.cols], data: q.q });
    out.set(`${t.stem}.scales`, { shape: [q.rows, q.cols / q.group], data: q.scales });
  }
  return out;
}

const MAX_GROUP = 4096;

/** config.json's quantization_config, checked; null when the folder is not quantised. */
export function readQuantizationConfig(config: Record<string, unknown>, label: string): QuantizationConfig | null {
  const raw = config.quantization_config;
  if (raw === undefined || raw === null) return null;
  const bad = (why: string): AjarError => new AjarError('bad_config', `${label}: quantization_config ${why}`);
  if (typeof raw !== 'object' || Array.isArray(raw)) throw bad('must be an object');
  const q = raw as Record<string, unknown>;
  if (q.quant_method !== Q8_METHOD) {
    throw bad(`quant_method ${JSON.stringify(q.quant_method)} is not supported: ajar loads "${Q8_METHOD}" (written by ajar quantize)`);
  }
  if (q.bits !== 8) throw bad(`bits must be 8, got ${JSON.stringify(q.bits)}`);
  const g = q.group_size;
  if (typeof g !== 'number' || !Number.isInteger(g) || g < 16 || g > MAX_GROUP || g % 16 !== 0) {
    throw bad(`group_size must be a multiple of 16 from 16 to ${MAX_GROUP}, got ${JSON.stringify(g)}`);
  }
  if (q.scale_dtype !== 'float32') throw bad(`scale_dtype must be "float32", got ${JSON.stringify(q.scale_dtype)}`);
  if (!Array.isArray(q.modules) || q.modules.length === 0 || !q.modules.every((m) => typeof m === 'string')) {
    throw bad('modules must list the names of the int8 weights');
  }
  return { quant_method: Q8_METHOD, bits: 8, group_size: g, scale_dtype: 'float32', modules: q.modules as string[] };
}

/** The listed weights as targets of this model; a name that is not a quantisable weight of it is an error. */
function listedTargets(model: AnyModel, qc: QuantizationConfig, label: string): Target[] {
  const byName = new Map(targets(model, qc.group_size).map((t) => [t.name, t]));
  return qc.modules.map((name) => {
    const t = byName.get(name);
    if (!t) {
      throw new AjarError('bad_config', `${label}: quantization_config lists ${JSON.stringify(name)}, which is not a ` +
        `${model.architecture} weight whose inputs split into groups of ${qc.group_size}`);
    }
    return t;
  });
}

/**
 * Check a quantised folder's int8 tensors against the model (a shapes-only build is enough): each listed weight's
 * qweight (I8, (out, in)) and scales (F32, (out, in / group)) are there with those shapes.
 */
export function checkQuantizedWeights(plan: AnyModel, weights: WeightFiles, qc: QuantizationConfig, label: string): void {
  for (const t of listedTargets(plan, qc, label)) {
    const want: [string, string, Shape][] = [
      [`${t.stem}.qweight`, 'I8', [t.rows, t.cols]],
      [`${t.stem}.scales`, 'F32', [t.rows, t.cols / qc.group_size]],
    ];
    for (const [name, dtype, shape] of want) {
      const stored = weights.shapeOf(name);
      if (stored === undefined) throw new AjarError('bad_weights', `${label}: tensor '${name}' is missing (quantization_config lists ${t.name})`);
      if (weights.dtypeOf(name) !== dtype || !shapeEq(stored, shape)) {
        throw new AjarError('bad_weights', `${label}: tensor '${name}' is ${weights.dtypeOf(name)} ${fmtShape(stored)}, ` +
          `expected ${dtype} ${fmtShape(shape)}`);
      }
    }
  }
}

/**
 * The folder's tensors as the float32 model expects them: each listed weight appears under its own name with the
 * model's declared shape and reads as nothing (its int8 copy is attached after loading, by attachQuantized); its
 * qweight and scales are hidden.
 */
export function quantizedSource(plan: AnyModel, weights: WeightFiles, qc: QuantizationConfig, label: string): TensorSource {
  const listed = new Map(listedTargets(plan, qc, label).map((t) => [t.name, t]));
  const hidden = new Set([...listed.values()].flatMap((t) => [`${t.stem}.qweight`, `${t.stem}.scales`]));
  const declared = new Map(plan.module.namedParameterShapes());
  return {
    keys: () => [...new Set([...[...weights.keys()].filter((k) => !hidden.has(k)), ...listed.keys()])],
    shapeOf: (name) => (listed.has(name) ? declared.get(name) : hidden.has(name) ? undefined : weights.shapeOf(name)),
    readInto: (name, out) => {
      if (!listed.has(name)) weights.readInto(name, out);
    },
  };
}

/** Read the listed weights' int8 tensors into their layers, releasing the float32 placeholders. */
export function attachQuantized(model: AnyModel, weights: WeightFiles, qc: QuantizationConfig, label: string): void {
  for (const t of listedTargets(model, qc, label)) {
    const q = new Int8Array(t.rows * t.cols);
    const scales = new Float32Array((t.rows * t.cols) / qc.group_size);
    weights.readInt8Into(`${t.stem}.qweight`, q);
    weights.readInto(`${t.stem}.scales`, scales);
    const m: Q8Matrix = { rows: t.rows, cols: t.cols, group: qc.group_size, q, scales };
    t.layer.quant = m;
    releaseParameter(t.layer.weight);
  }
}

/** Open a folder's weights, I8 tensors accepted when its config says it is quantised. */
export function openFolderWeights(dir: string, qc: QuantizationConfig | null): WeightFiles {
  return openWeights(dir, { int8: qc !== null });
}

/** Whether a model folder holds int8 weights (its config.json has a quantization_config). */
export function isQuantizedFolder(dir: string): boolean {
  return readQuantizationConfig(readConfig(dir), `${dir}/config.json`) !== null;
}
