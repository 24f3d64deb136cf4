// The tokenised-ids cache beside a data file: <file>.<key16>.ajar-ids, where the key is a sha256 of the file's bytes,
// the data spec and the tokenizer's fingerprint, so a changed file or tokenizer misses. Written atomically (temp file +
// rename); a cache that cannot be read or does not match is ignored (and rebuilt); an unwritable folder skips caching.
//
// File layout (all little endian):
//   8 bytes   magic "AJARIDS1"
//   4 bytes   uint32 H, the header's length in bytes
//   H bytes   JSON header: { version, key, dataSha256, kind, task, labels?, sections: [{ name, dtype, length }] }
//   0-3 bytes zero padding to a multiple of 4
//   sections, in header order: dtype i32 = Int32 (4 bytes each), f64 = Float64 (8 bytes each), `length` elements.
// A stream has one section, ids. Examples have lengths (per example), ids (all examples' ids joined), lines, and
// targets (instruct, parallel to ids), labels (classification) or values (regression).
import { closeSync, fsyncSync, openSync, readFileSync, readSync, readdirSync, renameSync, rmSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { endianness } from 'node:os';
import type { Dataset, Example, Task } from './types.js';

const MAGIC = 'AJARIDS1';
const VERSION = 1;
export const CACHE_SUFFIX = '.ajar-ids';

type DType = 'i32' | 'f64';
interface Section {
  name: string;
  dtype: DType;
  length: number;
}
interface Header {
  version: number;
  key: string;
  dataSha256: string;
  kind: 'stream' | 'examples';
  task: Task;
  labels?: string[];
  sections: Section[];
}

type SectionArray = Int32Array | Float64Array;

// NOTE: sections are the in-memory bytes of typed arrays, which are little endian only on little-endian hosts
// (every platform Node ships for today); elsewhere caching is off rather than wrong.
const HOST_LE = endianness() === 'LE';

export function cachePathFor(dataPath: string, key: string): string {
  return `${dataPath}.${key.slice(0, 16)}${CACHE_SUFFIX}`;
}

function bytesOf(a: SectionArray): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

function datasetSections(ds: Dataset): { sections: Section[]; arrays: SectionArray[] } {
  if (ds.kind === 'stream') return { sections: [{ name: 'ids', dtype: 'i32', length: ds.ids.length }], arrays: [ds.ids] };
  const n = ds.examples.length;
  const lengths = new Int32Array(n);
  const lines = new Int32Array(n);
  let total = 0;
  ds.examples.forEach((ex, i) => {
    lengths[i] = ex.ids.length;
    lines[i] = ex.line ?? 0;
    total += ex.ids.length;
  });
  const ids = new Int32Array(total);
  const hasTargets = ds.examples.every((ex) => ex.targets !== undefined);
  const targets = hasTargets ? new Int32Array(total) : null;
  let off = 0;
  for (const ex of ds.examples) {
    ids.set(ex.ids, off);
    if (targets !== null) targets.set(ex.targets!, off);
    off += ex.ids.length;
  }
  const sections: Section[] = [{ name: 'lengths', dtype: 'i32', length: n }, { name: 'ids', dtype: 'i32', length: total }, { name: 'lines', dtype: 'i32', length: n }];
  const arrays: SectionArray[] = [lengths, ids, lines];
  if (targets !== null) {
    sections.push({ name: 'targets', dtype: 'i32', length: total });
    arrays.push(targets);
  }
  if (ds.examples.every((ex) => ex.label !== undefined)) {
    sections.push({ name: 'labels', dtype: 'i32', length: n });
    arrays.push(Int32Array.from(ds.examples, (ex) => ex.label!));
  }
  if (ds.examples.every((ex) => ex.value !== undefined)) {
    sections.push({ name: 'values', dtype: 'f64', length: n });
    arrays.push(Float64Array.from(ds.examples, (ex) => ex.value!));
  }
  return { sections, arrays };
}

/**
 * Writes ds to cachePath via a temp file and a rename, then removes caches of the same data file made from other file
 * contents (they can never hit again). Returns false, leaving nothing behind, when the folder cannot be written.
 */
export function writeCache(cachePath: string, key: string, dataSha256: string, ds: Dataset): boolean {
  if (!HOST_LE) return false;
  const { sections, arrays } = datasetSections(ds);
  const header: Header = { version: VERSION, key, dataSha256, kind: ds.kind, task: ds.task, sections };
  if (ds.kind === 'examples' && ds.labels !== undefined) header.labels = ds.labels;
  const headerBytes = Buffer.from(JSON.stringify(header), 'utf8');
  const prefix = Buffer.alloc(align4(12 + headerBytes.length));
  prefix.write(MAGIC, 0, 'latin1');
  prefix.writeUInt32LE(headerBytes.length, 8);
  headerBytes.copy(prefix, 12);

  const tmp = `${cachePath}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    const fd = openSync(tmp, 'w');
    try {
      writeAll(fd, prefix);
      for (const a of arrays) writeAll(fd, bytesOf(a));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, cachePath);
  } catch {
    // NOTE: the cache is only a speed-up; a read-only or full data folder must not stop training.
    rmSync(tmp, { force: true });
    return false;
  }
  removeStaleCaches(cachePath, dataSha256);
  return true;
}

function writeAll(fd: number, buf: Buffer): void {
  let off = 0;
  while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
}

function align4(n: number): number {
  return (n + 3) & ~3;
}

function parseHeader(buf: Buffer): { header: Header; dataStart: number } | null {
  if (buf.length < 12 || buf.toString('latin1', 0, 8) !== MAGIC) return null;
  const h = buf.readUInt32LE(8);
  if (12 + h > buf.length) return null;
  let header: Header;
  try {
    header = JSON.parse(buf.toString('utf8', 12, 12 + h)) as Header;
  } catch {
    return null;
  }
  if (typeof header !== 'object' || header === null || header.version !== VERSION || !Array.isArray(header.sections)) return null;
  return { header, dataStart: align4(12 + h) };
}

/** Reads just the header of a cache file, or null. */
function readHeaderOnly(path: string): Header | null {
  let fd: number | null = null;
  try {
    fd = openSync(path, 'r');
    const head = Buffer.alloc(12);
    if (readSync(fd, head, 0, 12, 0) !== 12 || head.toString('latin1', 0, 8) !== MAGIC) return null;
    const h = head.readUInt32LE(8);
    if (h > 1 << 26) return null;
    const buf = Buffer.alloc(12 + h);
    if (readSync(fd, buf, 0, 12 + h, 0) !== 12 + h) return null;
    return parseHeader(buf)?.header ?? null;
  } catch {
    return null;
  } finally {
    if (fd !== null) closeSync(fd);
  }
}

function removeStaleCaches(cachePath: string, dataSha256: string): void {
  const dir = dirname(cachePath);
  const keep = basename(cachePath);
  const stem = keep.slice(0, keep.length - CACHE_SUFFIX.length - 16); // "<file>."
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    if (name === keep || !name.startsWith(stem) || !name.endsWith(CACHE_SUFFIX)) continue;
    if (!/^[0-9a-f]{16}$/.test(name.slice(stem.length, name.length - CACHE_SUFFIX.length))) continue;
    const header = readHeaderOnly(join(dir, name));
    if (header !== null && header.dataSha256 !== dataSha256) rmSync(join(dir, name), { force: true });
  }
}

/**
 * The dataset stored at cachePath if it exists, was written for this key, is whole, and its ids fit the vocabulary;
 * otherwise null (the caller tokenises again and overwrites it).
 */
export function readCache(cachePath: string, key: string, vocabSize: number, source: string): Dataset | null {
  if (!HOST_LE) return null;
  let buf: Buffer;
  try {
    buf = readFileSync(cachePath);
  } catch {
    return null;
  }
  const parsed = parseHeader(buf);
  if (parsed === null || parsed.header.key !== key) return null;
  const { header } = parsed;
  const arrays = new Map<string, SectionArray>();
  let off = parsed.dataStart;
  for (const s of header.sections) {
    const width = s.dtype === 'f64' ? 8 : 4;
    if ((s.dtype !== 'i32' && s.dtype !== 'f64') || !Number.isInteger(s.length) || s.length < 0) return null;
    const end = off + s.length * width;
    if (end > buf.length) return null;
    const copy = buf.buffer.slice(buf.byteOffset + off, buf.byteOffset + end); // a copy, aligned
    arrays.set(s.name, s.dtype === 'f64' ? new Float64Array(copy) : new Int32Array(copy));
    off = end;
  }
  if (off !== buf.length) return null;
  const ids = arrays.get('ids');
  if (!(ids instanceof Int32Array) || !idsInRange(ids, vocabSize)) return null;
  if (header.kind === 'stream') {
    return header.task === 'lm' ? { kind: 'stream', task: 'lm', ids, source } : null;
  }
  return examplesFrom(header, arrays, ids, source);
}

function idsInRange(ids: Int32Array, vocabSize: number): boolean {
  for (let i = 0; i < ids.length; i++) if (ids[i] < 0 || ids[i] >= vocabSize) return false;
  return true;
}

function examplesFrom(header: Header, arrays: Map<string, SectionArray>, ids: Int32Array, source: string): Dataset | null {
  const lengths = arrays.get('lengths');
  const lines = arrays.get('lines');
  const targets = arrays.get('targets');
  const labels = arrays.get('labels');
  const values = arrays.get('values');
  if (!(lengths instanceof Int32Array) || !(lines instanceof Int32Array) || lines.length !== lengths.length) return null;
  if (targets !== undefined && targets.length !== ids.length) return null;
  if (labels !== undefined && labels.length !== lengths.length) return null;
  if (values !== undefined && values.length !== lengths.length) return null;
  const examples: Example[] = [];
  let off = 0;
  for (let i = 0; i < lengths.length; i++) {
    const end = off + lengths[i];
    if (lengths[i] < 0 || end > ids.length) return null;
    const ex: Example = { ids: ids.subarray(off, end), line: lines[i] };
    if (targets instanceof Int32Array) ex.targets = targets.subarray(off, end);
    if (labels !== undefined) ex.label = labels[i];
    if (values !== undefined) ex.value = values[i];
    examples.push(ex);
    off = end;
  }
  if (off !== ids.length) return null;
  const ds: Dataset = { kind: 'examples', task: header.task, examples, source };
  if (Array.isArray(header.labels)) ds.labels = header.labels;
  return ds;
}
