// Hugging Face model folders: config.json plus model.safetensors, or model.safetensors.index.json and its shards.
// openWeights reads only the files' headers (names, dtypes, shapes) and reads a tensor when asked, straight into
// the caller's array; readWeights reads them all. Errors name the path: 'model_not_found' (no such folder),
// 'bad_config' (config.json), 'bad_weights' (weights).
import { statSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { AjarError } from '../tensor/errors.js';
import { entryExists, readRegularJson, type FileKind } from './safe-read.js';
import {
  checkLoadable, oneLine, readInt8Into, readSafetensorsHeader, readTensorInto, type SafeTensor, type TensorLocation, type WeightTensor,
} from './safetensors.js';

export interface ModelFolder {
  dir: string;
  config: Record<string, unknown>;
  weights: Map<string, WeightTensor>;
}

const CONFIG = 'config.json';
const SINGLE = 'model.safetensors';
const INDEX = 'model.safetensors.index.json';
const PICKLES = ['pytorch_model.bin', 'pytorch_model.bin.index.json'];

/** An error for the user, kept to one line (a JSON parse message can quote a newline from the file). */
function fail(code: string, message: string): AjarError {
  return new AjarError(code, oneLine(message));
}

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** The folder must exist and be a folder; anything else is 'model_not_found'. */
function checkFolder(dir: string): void {
  let st: Stats;
  try {
    st = statSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      throw fail('model_not_found', `model folder ${dir} does not exist`);
    }
    throw fail('model_not_found', `cannot open model folder ${dir} (${describe(e)})`);
  }
  if (!st.isDirectory()) {
    throw fail('model_not_found', `${dir} is not a folder; pass the Hugging Face model folder that holds `
      + `${CONFIG} and ${SINGLE}`);
  }
}

/** Read and parse a JSON file of the folder `dir` (a regular file inside it, within the limit of its kind). */
function readJson(path: string, dir: string, code: string, kind: FileKind): unknown {
  return readRegularJson(path, { code, kind, root: dir });
}

function kindOf(v: unknown): string {
  if (v === null) return 'null';
  return Array.isArray(v) ? 'an array' : `a ${typeof v}`;
}

/** config.json of a model folder, as a plain JSON object. */
export function readConfig(dir: string): Record<string, unknown> {
  checkFolder(dir);
  const path = join(dir, CONFIG);
  if (!entryExists(path)) {
    throw fail('bad_config', `${dir} has no ${CONFIG}; a Hugging Face model folder holds ${CONFIG} beside its weights`);
  }
  const config = readJson(path, dir, 'bad_config', 'config');
  if (typeof config !== 'object' || config === null || Array.isArray(config)) {
    throw fail('bad_config', `${path} must hold a JSON object, not ${kindOf(config)}`);
  }
  return config as Record<string, unknown>;
}

/** A shard named by the index must be a plain file name inside the folder (no path, no '..'). */
function checkShardName(indexPath: string, tensor: string, shard: string): void {
  if (shard === '' || shard === '.' || shard === '..' || /[/\\\0]/.test(shard)) {
    throw fail('bad_weights', `${indexPath}: weight_map sends tensor ${JSON.stringify(tensor)} to `
      + `${JSON.stringify(shard)}, which is not a file name inside the model folder`);
  }
}

/** The weight_map of model.safetensors.index.json, grouped by shard (shards in sorted order). */
function readIndex(indexPath: string, dir: string): Map<string, string[]> {
  const index = readJson(indexPath, dir, 'bad_weights', 'index');
  if (typeof index !== 'object' || index === null || Array.isArray(index)) {
    throw fail('bad_weights', `${indexPath} must hold a JSON object, not ${kindOf(index)}`);
  }
  const weightMap = (index as Record<string, unknown>).weight_map;
  if (typeof weightMap !== 'object' || weightMap === null || Array.isArray(weightMap)) {
    throw fail('bad_weights', `${indexPath}: weight_map must be an object mapping tensor names to shard files`);
  }
  const byShard = new Map<string, string[]>();
  for (const [tensor, shard] of Object.entries(weightMap)) {
    if (typeof shard !== 'string') {
      throw fail('bad_weights', `${indexPath}: weight_map entry for ${JSON.stringify(tensor)} must be a file name`);
    }
    checkShardName(indexPath, tensor, shard);
    const list = byShard.get(shard) ?? [];
    list.push(tensor);
    byShard.set(shard, list);
  }
  if (byShard.size === 0) throw fail('bad_weights', `${indexPath}: weight_map lists no tensors`);
  return new Map([...byShard.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** Where a tensor of a model folder lives: its file and its place in that file. */
interface Placed {
  path: string;
  location: TensorLocation;
}

/**
 * The tensors of a model folder as their safetensors headers describe them; nothing is read until readInto or
 * read asks for one tensor. Every header was checked when the folder was opened, and every dtype is loadable.
 */
export class WeightFiles {
  constructor(readonly dir: string, private readonly placed: Map<string, Placed>) {}

  get size(): number {
    return this.placed.size;
  }

  keys(): IterableIterator<string> {
    return this.placed.keys();
  }

  /** The stored shape of a tensor, or undefined when the folder has no such tensor. */
  shapeOf(name: string): readonly number[] | undefined {
    return this.placed.get(name)?.location.shape;
  }

  /** The stored dtype (F32, F16 or BF16), or undefined when the folder has no such tensor. */
  dtypeOf(name: string): string | undefined {
    return this.placed.get(name)?.location.dtype;
  }

  /** Read one tensor, widened to float32, into `out` (numel(shape) values) in bounded chunks. */
  readInto(name: string, out: Float32Array): void {
    const p = this.placed.get(name);
    if (p === undefined) throw fail('bad_weights', `${this.dir} holds no tensor ${JSON.stringify(name)}`);
    readTensorInto(p.path, name, p.location, out);
  }

  /** Read one I8 tensor (a quantised weight; folders opened with { int8: true }) into `out`. */
  readInt8Into(name: string, out: Int8Array): void {
    const p = this.placed.get(name);
    if (p === undefined) throw fail('bad_weights', `${this.dir} holds no tensor ${JSON.stringify(name)}`);
    readInt8Into(p.path, name, p.location, out);
  }

  /** One tensor in a new float32 array. */
  read(name: string): SafeTensor {
    const p = this.placed.get(name);
    if (p === undefined) throw fail('bad_weights', `${this.dir} holds no tensor ${JSON.stringify(name)}`);
    const data = new Float32Array(p.location.shape.reduce((a, b) => a * b, 1));
    readTensorInto(p.path, name, p.location, data);
    return { dtype: p.location.dtype, shape: p.location.shape, data };
  }

  /** Every tensor in new float32 arrays (holds the whole checkpoint: prefer readInto for big models). */
  readAll(): Map<string, SafeTensor> {
    const out = new Map<string, SafeTensor>();
    for (const name of this.placed.keys()) out.set(name, this.read(name));
    return out;
  }
}

/** Options of openWeights. */
export interface OpenWeightsOptions {
  /** Accept I8 tensors besides the float dtypes (a quantised folder, models/quantize.ts); read them with readInt8Into. */
  int8?: boolean;
}

/** Refuse a tensor ajar cannot load: only float dtypes, and I8 when the folder is quantised. */
function checkPlaced(path: string, name: string, location: TensorLocation, opts: OpenWeightsOptions): void {
  if (!(opts.int8 === true && location.dtype === 'I8')) checkLoadable(path, name, location);
}

/** One file's tensors, each checked loadable. */
function placeFile(path: string, dir: string, opts: OpenWeightsOptions): Map<string, Placed> {
  const header = readSafetensorsHeader(path, dir);
  const placed = new Map<string, Placed>();
  for (const [name, location] of header.tensors) {
    checkPlaced(path, name, location, opts);
    placed.set(name, { path, location });
  }
  return placed;
}

function placeSharded(dir: string, opts: OpenWeightsOptions): Map<string, Placed> {
  const indexPath = join(dir, INDEX);
  const byShard = readIndex(indexPath, dir);
  // Check every shard is there before loading any: a missing shard should not cost reading the others.
  for (const [shard, names] of byShard) {
    const path = join(dir, shard);
    if (!entryExists(path)) {
      const more = names.length > 1 ? ` and ${names.length - 1} more` : '';
      throw fail('bad_weights', `${indexPath} puts tensor ${JSON.stringify(names[0])}${more} in ${shard}, `
        + `but ${path} does not exist; download the missing shard`);
    }
  }
  const placed = new Map<string, Placed>();
  for (const [shard, names] of byShard) {
    const path = join(dir, shard);
    const { tensors } = readSafetensorsHeader(path, dir);
    const listed = new Set(names);
    for (const name of names) {
      const location = tensors.get(name);
      if (location === undefined) {
        throw fail('bad_weights', `${indexPath} puts tensor ${JSON.stringify(name)} in ${shard}, but ${path} does not hold it`);
      }
      checkPlaced(path, name, location, opts);
      placed.set(name, { path, location });
    }
    // NOTE: an unlisted tensor means the index and shards come from different saves; refuse rather than guess.
    for (const name of tensors.keys()) {
      if (!listed.has(name)) {
        throw fail('bad_weights', `${path} holds tensor ${JSON.stringify(name)}, which ${indexPath} does not `
          + 'list for it; the index and the shards do not match');
      }
    }
  }
  return placed;
}

/**
 * Open a model folder's weights, model.safetensors or the shards of model.safetensors.index.json, reading and
 * checking every header but no tensor data.
 */
export function openWeights(dir: string, opts: OpenWeightsOptions = {}): WeightFiles {
  checkFolder(dir);
  const single = join(dir, SINGLE);
  if (entryExists(single)) return new WeightFiles(dir, placeFile(single, dir, opts));
  if (entryExists(join(dir, INDEX))) return new WeightFiles(dir, placeSharded(dir, opts));
  const pickle = PICKLES.find((name) => entryExists(join(dir, name)));
  if (pickle !== undefined) {
    throw fail('bad_weights', `${dir} holds ${pickle} but no ${SINGLE}: ajar does not load PyTorch pickle files `
      + 'because unpickling can run arbitrary code. Convert the checkpoint to safetensors, e.g. in Python: '
      + 'AutoModelForCausalLM.from_pretrained(dir).save_pretrained(out_dir, safe_serialization=True)');
  }
  throw fail('bad_weights', `${dir} has no ${SINGLE} or ${INDEX}; a Hugging Face model folder holds its weights in one of them`);
}

/** All weights of a model folder as float32 in memory (small models; loadPretrained streams instead). */
export function readWeights(dir: string): Map<string, WeightTensor> {
  return openWeights(dir).readAll();
}

/** A model folder's config and all its weights in memory (small models; loadPretrained streams instead). */
export function loadModelFolder(dir: string): ModelFolder {
  const config = readConfig(dir);
  const weights = readWeights(dir);
  return { dir, config, weights };
}
