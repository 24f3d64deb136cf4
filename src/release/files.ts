// Files shared by open releases and closed bundles: which files of a model folder are the model, its content
// hash, SHA-256 helpers, and the staging folder every release is written into before one rename publishes it.
import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync, constants as fsConstants, existsSync, fsyncSync, mkdirSync, openSync, readdirSync,
  renameSync, rmdirSync, rmSync, statSync, writeSync,
} from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { syncDir } from '../io/atomic.js';
import { entryExists, readRegularFile, readRegularJson } from '../io/safe-read.js';
import { AjarError } from '../tensor/errors.js';

/**
 * The files of a model folder that make up the model, as ajar and transformers read them: config, weights,
 * tokenizer, generation defaults, chat template. Everything else (README.md, ajar_results.json, checkpoint/,
 * metrics.jsonl) is the model's history, not the model.
 */
export const MODEL_FILE_NAMES = [
  'config.json',
  'generation_config.json',
  'model.safetensors',
  'model.safetensors.index.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'tokenizer.json',
  'vocab.json',
  'merges.txt',
  'chat_template.jinja',
] as const;

const INDEX = 'model.safetensors.index.json';

export function sha256Hex(bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function describe(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  return code ?? (e instanceof Error ? e.message : String(e));
}

/** A file name the release code will join onto a folder: one plain name, no separators or dot-names. */
export function isPlainFileName(name: string): boolean {
  return name !== '' && name !== '.' && name !== '..' && !/[/\\\0]/.test(name) && name.length <= 255;
}

/** The shard names listed by model.safetensors.index.json, sorted; refuses names that leave the folder. */
function shardNames(dir: string): string[] {
  const path = join(dir, INDEX);
  const index = readRegularJson(path, { code: 'bad_weights', kind: 'index', root: dir });
  const map = (index as { weight_map?: unknown } | null)?.weight_map;
  if (typeof map !== 'object' || map === null) throw new AjarError('bad_weights', `${path}: weight_map must be an object`);
  const names = new Set<string>();
  for (const shard of Object.values(map as Record<string, unknown>)) {
    if (typeof shard !== 'string' || !isPlainFileName(shard)) {
      throw new AjarError('bad_weights', `${path}: weight_map names ${JSON.stringify(shard)}, which is not a file in the folder`);
    }
    names.add(shard);
  }
  return [...names].sort();
}

/** The model files present in a folder, sorted by name (byte order): the set a content hash and a bundle cover. */
export function modelFiles(dir: string): string[] {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new AjarError('model_not_found', `model folder ${dir} does not exist`);
  }
  const names = new Set<string>(MODEL_FILE_NAMES.filter((n) => entryExists(join(dir, n))));
  if (names.has(INDEX) && !names.has('model.safetensors')) {
    for (const shard of shardNames(dir)) {
      if (!entryExists(join(dir, shard))) {
        throw new AjarError('bad_weights', `${join(dir, INDEX)} lists ${shard}, but ${join(dir, shard)} does not exist`);
      }
      names.add(shard);
    }
  }
  if (!names.has('config.json')) throw new AjarError('bad_config', `${dir} has no config.json; pass a model folder`);
  if (!names.has('model.safetensors') && !names.has(INDEX)) {
    throw new AjarError('bad_weights', `${dir} has no model.safetensors or ${INDEX}; pass a model folder`);
  }
  return sortByBytes([...names]);
}

export function sortByBytes(names: string[]): string[] {
  return [...names].sort((a, b) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8')));
}

/** sha256sum's text format, one line per file: "<64 hex>  <name>\n", in the order given. */
export function sumsText(entries: ReadonlyArray<{ name: string; sha256: string }>): string {
  return entries.map((e) => `${e.sha256}  ${e.name}\n`).join('');
}

/**
 * The model's content hash: SHA-256 of the sha256sum lines of its model files sorted by name, so
 * `sha256sum $(files) | sha256sum` (files in C-locale order) reproduces it outside ajar.
 */
export function contentHashOfFiles(files: ReadonlyMap<string, Uint8Array>): string {
  const names = sortByBytes([...files.keys()]);
  return sha256Hex(sumsText(names.map((name) => ({ name, sha256: sha256Hex(files.get(name)!) }))));
}

/** The bytes of a folder's model files, by name. */
export function readModelFiles(dir: string): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  for (const name of modelFiles(dir)) {
    out.set(name, readRegularFile(join(dir, name), { code: 'model_not_found', kind: 'whole', root: dir }));
  }
  return out;
}

export function contentHash(dir: string): string {
  return contentHashOfFiles(readModelFiles(dir));
}

/** Write bytes to a new file (never over an existing one) and fsync it. */
export function writeNewFile(path: string, bytes: Uint8Array | string, mode = 0o644): void {
  const fd = openSync(path, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, mode);
  try {
    const buf = typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : bytes;
    let done = 0;
    while (done < buf.length) done += writeSync(fd, buf, done, buf.length - done);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * The output folder of a release must not exist yet, or be an empty folder: a release never mixes with other
 * files and never overwrites one.
 */
export function checkOutFree(out: string, what: string): void {
  let st;
  try {
    st = statSync(out);
  } catch {
    return;
  }
  if (!st.isDirectory()) throw new AjarError('out_exists', `${out} exists and is not a folder; choose a new --out for the ${what}`);
  const entries = readdirSync(out);
  if (entries.length > 0) {
    throw new AjarError('out_exists', `${out} is not empty (it holds ${entries.length} entr${entries.length === 1 ? 'y' : 'ies'}, `
      + `e.g. ${entries[0]}); a ${what} goes into a new or empty folder: choose another --out or empty it`);
  }
}

/**
 * A staging folder beside `out` (same file system, so the final rename is atomic): the release is written there
 * and appears under its real name only once complete. `publish()` renames it; `discard()` removes it.
 */
export class Staging {
  readonly dir: string;
  private done = false;

  constructor(readonly out: string, what: string) {
    checkOutFree(out, what);
    const parent = dirname(resolve(out));
    try {
      mkdirSync(parent, { recursive: true });
    } catch (e) {
      throw new AjarError('write_failed', `cannot create ${parent} (${describe(e)})`);
    }
    this.dir = join(parent, `.${basename(resolve(out))}.ajar-staging-${randomBytes(4).toString('hex')}`);
    try {
      mkdirSync(this.dir, { mode: 0o755 });
    } catch (e) {
      throw new AjarError('write_failed', `cannot create a staging folder beside ${out} (${describe(e)})`);
    }
  }

  path(name: string): string {
    return join(this.dir, name);
  }

  publish(what: string): void {
    // NOTE: checked again: another process may have filled the folder since the constructor looked.
    checkOutFree(this.out, what);
    try {
      if (existsSync(this.out)) rmdirSync(this.out); // empty, checked above; rename over a folder fails on Windows
      renameSync(this.dir, this.out);
    } catch (e) {
      throw new AjarError('write_failed', `cannot move the finished ${what} to ${this.out} (${describe(e)})`);
    }
    this.done = true;
    syncDir(dirname(resolve(this.out)));
  }

  discard(): void {
    if (!this.done) rmSync(this.dir, { recursive: true, force: true });
  }
}

