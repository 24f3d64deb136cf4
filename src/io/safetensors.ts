// safetensors files: a strict parser (F32, F16, BF16 widened to Float32Array; any malformed byte is an
// AjarError('bad_weights') naming the file), a header-only reader with chunked reads of one tensor straight into
// a caller's Float32Array (loading without holding the file), and an F32 writer laid out as the reference library writes.
// Format: https://github.com/huggingface/safetensors#format (u64 LE header length, JSON header, data area).
import { randomBytes } from 'node:crypto';
import { closeSync, constants as fsConstants, fsyncSync, openSync, readSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { AjarError } from '../tensor/errors.js';
import { syncDir } from './atomic.js';
import { oneLine, openRegularFile } from './safe-read.js';

/** A named tensor as ajar holds it: row-major float32 data. */
export interface WeightTensor {
  shape: readonly number[];
  data: Float32Array; // (numel(shape),)
}

/** A tensor read from a file, with the dtype it was stored in (F32, F16 or BF16). */
export interface SafeTensor extends WeightTensor {
  dtype: string;
}

export interface SafeTensors {
  tensors: Map<string, SafeTensor>;
  metadata: Record<string, string>;
}

/** An int8 tensor (a quantised weight, models/quantize.ts), written and read as the I8 dtype. */
export interface Int8Tensor {
  shape: readonly number[];
  data: Int8Array; // (numel(shape),)
}

export type TensorInput = Map<string, WeightTensor | Int8Tensor> | Record<string, WeightTensor | Int8Tensor>;

/** The reference implementation refuses headers longer than this (safetensors' MAX_HEADER_SIZE). */
export const MAX_HEADER_BYTES = 100_000_000;

// Every dtype of the specification, with its width in bits (the reference library's Dtype::bitsize).
const DTYPE_BITS = new Map<string, number>([
  ['BOOL', 8], ['F4', 4], ['F6_E2M3', 6], ['F6_E3M2', 6], ['U8', 8], ['I8', 8], ['F8_E5M2', 8], ['F8_E4M3', 8],
  ['F8_E8M0', 8], ['I16', 16], ['U16', 16], ['F16', 16], ['BF16', 16], ['I32', 32], ['U32', 32], ['F32', 32],
  ['C64', 64], ['F64', 64], ['I64', 64], ['U64', 64],
]);
const LOADABLE = ['F32', 'F16', 'BF16'];

const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function bad(label: string, problem: string): AjarError {
  return new AjarError('bad_weights', oneLine(`${label}: ${problem}`));
}

export { oneLine };

/** A name as it appears in a one-line message: JSON-quoted (no raw newlines), and cut if very long. */
function quote(name: string): string {
  const q = JSON.stringify(name);
  return q.length <= 80 ? q : `${q.slice(0, 77)}..."`;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isIndex(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

interface Entry {
  name: string;
  dtype: string;
  shape: number[];
  begin: number; // byte offsets into the data area
  end: number;
}

/** Validate one header entry; the byte count is checked here, placement in checkEntriesTile. */
function parseEntry(label: string, name: string, value: unknown, dataBytes: number): Entry {
  const where = `tensor ${quote(name)}`;
  if (!isPlainObject(value)) throw bad(label, `${where}: header entry must be an object with dtype, shape and data_offsets`);
  const { dtype, shape, data_offsets: offsets } = value;
  if (typeof dtype !== 'string') throw bad(label, `${where}: dtype must be a string`);
  const bits = DTYPE_BITS.get(dtype);
  if (bits === undefined) throw bad(label, `${where}: unknown dtype ${quote(dtype)}`);
  if (!Array.isArray(shape)) throw bad(label, `${where}: shape must be an array of dimensions`);
  for (const d of shape) {
    if (!isIndex(d)) throw bad(label, `${where}: shape ${JSON.stringify(shape)} has a dimension that is not a non-negative integer`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !isIndex(offsets[0]) || !isIndex(offsets[1])) {
    throw bad(label, `${where}: data_offsets must be [begin, end], two non-negative integers`);
  }
  const [begin, end] = offsets as [number, number];
  if (begin > end) throw bad(label, `${where}: data_offsets [${begin}, ${end}] begin after they end`);
  if (end > dataBytes) {
    throw bad(label, `${where}: data_offsets [${begin}, ${end}] run past the data area (${dataBytes} bytes)`);
  }
  // NOTE: BigInt, because a crafted shape can multiply past 2^53 and a float product would round to a match.
  let numel = 1n;
  for (const d of shape as number[]) numel *= BigInt(d);
  const nbits = numel * BigInt(bits);
  if (nbits % 8n !== 0n) throw bad(label, `${where}: ${numel} ${dtype} elements do not fill whole bytes`);
  if (nbits / 8n !== BigInt(end - begin)) {
    throw bad(label, `${where}: shape ${JSON.stringify(shape)} of ${dtype} needs ${nbits / 8n} bytes `
      + `but data_offsets [${begin}, ${end}] hold ${end - begin}`);
  }
  return { name, dtype, shape: shape as number[], begin, end };
}

/** The spec requires the tensors to tile the data area exactly: no overlaps and no holes. */
function checkEntriesTile(label: string, entries: Entry[], dataBytes: number): void {
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  let previous: Entry | undefined;
  for (const e of sorted) {
    if (e.begin < cursor) {
      throw bad(label, `tensor ${quote(e.name)} at bytes [${e.begin}, ${e.end}] overlaps tensor `
        + `${quote(previous!.name)} at [${previous!.begin}, ${previous!.end}]`);
    }
    if (e.begin > cursor) {
      throw bad(label, `bytes [${cursor}, ${e.begin}) of the data area belong to no tensor (a hole before ${quote(e.name)})`);
    }
    cursor = e.end;
    previous = e;
  }
  if (cursor !== dataBytes) {
    throw bad(label, `bytes [${cursor}, ${dataBytes}) at the end of the data area belong to no tensor`);
  }
}

function parseMetadata(label: string, value: unknown): Record<string, string> {
  if (!isPlainObject(value)) throw bad(label, '__metadata__ must be an object mapping strings to strings');
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== 'string') throw bad(label, `__metadata__ value for ${quote(k)} must be a string, got ${typeof v}`);
  }
  // NOTE: Object.fromEntries defines own properties, so a "__proto__" key stays a key instead of a prototype.
  return Object.fromEntries(Object.entries(value as Record<string, string>));
}

// F16 -> F32 bit patterns for all 65536 halves, built on first use.
let f16Table: Uint32Array | undefined;

function halfToFloatBits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >> 10) & 0x1f;
  let mant = h & 0x3ff;
  if (exp === 0x1f) {
    // NOTE: a NaN keeps its payload and gets the quiet bit, as PyTorch's (and the F16C instruction's) conversion does.
    return (sign | 0x7f800000 | (mant << 13) | (mant !== 0 ? 0x00400000 : 0)) >>> 0;
  }
  if (exp !== 0) return (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0; // rebias 15 -> 127
  if (mant === 0) return sign >>> 0; // +-0
  // Subnormal: mant * 2^-24. Shift the leading 1 up to the implicit-bit position, lowering the exponent.
  let e = 113; // biased exponent of 2^-14
  while ((mant & 0x400) === 0) {
    mant <<= 1;
    e -= 1;
  }
  return (sign | (e << 23) | ((mant & 0x3ff) << 13)) >>> 0;
}

function f16ToF32Table(): Uint32Array {
  if (f16Table === undefined) {
    f16Table = new Uint32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = halfToFloatBits(h);
  }
  return f16Table;
}

/** Refuse a dtype ajar cannot widen to float32 (only F32, F16 and BF16 load). */
function checkLoadableDtype(label: string, name: string, dtype: string): void {
  if (!LOADABLE.includes(dtype)) {
    throw bad(label, `tensor ${quote(name)} has dtype ${dtype}, which ajar does not load `
      + `(supported: ${LOADABLE.join(', ')}); convert the checkpoint's weights to a float dtype first`);
  }
}

/** Widen little-endian `bytes` of a loadable dtype into `out` (bytes / element size values). */
function widenInto(dtype: string, bytes: Uint8Array, out: Float32Array): void {
  const numel = out.length;
  // Writing bit patterns through a Uint32Array view is exact (NaN payloads, -0) on either host byte order.
  const outBits = new Uint32Array(out.buffer, out.byteOffset, numel);
  if (dtype === 'F32') {
    if (HOST_LITTLE_ENDIAN) {
      new Uint8Array(out.buffer, out.byteOffset, out.byteLength).set(bytes);
    } else {
      for (let i = 0; i < numel; i++) {
        const j = 4 * i;
        outBits[i] = (bytes[j] | (bytes[j + 1] << 8) | (bytes[j + 2] << 16) | (bytes[j + 3] << 24)) >>> 0;
      }
    }
  } else if (HOST_LITTLE_ENDIAN && bytes.byteOffset % 2 === 0) {
    // NOTE: reading whole halves through a Uint16Array is about 1.6x faster than byte by byte (64M BF16 values:
    // 80 against 130 ms here; a 1B checkpoint has a billion); the halves are little endian, as the host.
    const halves = new Uint16Array(bytes.buffer, bytes.byteOffset, numel);
    if (dtype === 'F16') {
      const table = f16ToF32Table();
      for (let i = 0; i < numel; i++) outBits[i] = table[halves[i]];
    } else {
      for (let i = 0; i < numel; i++) outBits[i] = halves[i] << 16;
    }
  } else if (dtype === 'F16') {
    const table = f16ToF32Table();
    for (let i = 0; i < numel; i++) outBits[i] = table[bytes[2 * i] | (bytes[2 * i + 1] << 8)];
  } else {
    // BF16 is the top half of a float32 (PyTorch's conversion is this shift, NaNs untouched).
    for (let i = 0; i < numel; i++) outBits[i] = ((bytes[2 * i] << 16) | (bytes[2 * i + 1] << 24)) >>> 0;
  }
}

/** Widen one tensor's little-endian bytes to float32; the result owns its memory. */
function widen(label: string, e: Entry, bytes: Uint8Array): Float32Array {
  checkLoadableDtype(label, e.name, e.dtype);
  const out = new Float32Array(e.shape.reduce((a, b) => a * b, 1));
  widenInto(e.dtype, bytes, out);
  return out;
}

// NOTE: V8's JSON.parse spends about a microsecond per nesting level, so a 100 MB header of '[' would stall for a
// minute. A real header nests three deep ({ name: { shape: [...] } }), so deeper text is refused before parsing.
const MAX_JSON_DEPTH = 64;

/** Whether brackets outside JSON strings nest deeper than `limit` (a linear scan; validity is JSON.parse's job). */
function nestsDeeperThan(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x7b || c === 0x5b) {
      depth++;
      if (depth > limit) return true;
    } else if (c === 0x7d || c === 0x5d) {
      depth--;
    }
  }
  return false;
}

/** The 8-byte length prefix, checked against the limit and the file's size; returns the header's length. */
function headerLength(label: string, prefix: Uint8Array, fileBytes: number): number {
  if (fileBytes < 8) {
    throw bad(label, `file is ${fileBytes} bytes, too short for a safetensors file (it starts with an 8-byte header length)`);
  }
  const headerLen = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (headerLen > BigInt(MAX_HEADER_BYTES)) {
    throw bad(label, `header length ${headerLen} exceeds the ${MAX_HEADER_BYTES}-byte limit; the file is corrupt or not safetensors`);
  }
  const n = Number(headerLen);
  if (8 + n > fileBytes) {
    throw bad(label, `header length ${n} runs past the end of the file (${fileBytes} bytes); the file is truncated or corrupt`);
  }
  return n;
}

/** Decode and validate the JSON header: every entry, the metadata, and that the entries tile the data area. */
function parseHeader(label: string, headerBytes: Uint8Array, dataBytes: number): { entries: Entry[]; metadata: Record<string, string> } {
  let text: string;
  try {
    // NOTE: ignoreBOM keeps a leading byte-order mark in the text, so it fails the '{' check below.
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(headerBytes);
  } catch {
    throw bad(label, 'header is not valid UTF-8');
  }
  if (!text.startsWith('{')) throw bad(label, "header does not start with '{'; the file is not safetensors");
  if (nestsDeeperThan(text, MAX_JSON_DEPTH)) {
    throw bad(label, `header JSON nests deeper than ${MAX_JSON_DEPTH} levels; a safetensors header nests three`);
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    throw bad(label, `header is not valid JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  if (!isPlainObject(header)) throw bad(label, 'header must be a JSON object');

  let metadata: Record<string, string> = {};
  const entries: Entry[] = [];
  for (const [name, value] of Object.entries(header)) {
    if (name === '__metadata__') metadata = parseMetadata(label, value);
    else entries.push(parseEntry(label, name, value, dataBytes));
  }
  checkEntriesTile(label, entries, dataBytes);
  return { entries, metadata };
}

/** Parse a whole safetensors file held in memory. `label` (usually the path) prefixes every error message. */
export function parseSafetensors(buf: Uint8Array, label: string): SafeTensors {
  const n = headerLength(label, buf, buf.length);
  const { entries, metadata } = parseHeader(label, buf.subarray(8, 8 + n), buf.length - 8 - n);
  const data = buf.subarray(8 + n);
  const tensors = new Map<string, SafeTensor>();
  for (const e of entries) {
    tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data: widen(label, e, data.subarray(e.begin, e.end)) });
  }
  return { tensors, metadata };
}

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Where one tensor's bytes lie in a safetensors file, from its header. */
export interface TensorLocation {
  dtype: string;
  shape: readonly number[];
  offset: number; // first byte of the tensor's data, from the start of the file
  bytes: number; // length of its data
}

/** A safetensors file's header: every tensor's place in the file and the metadata; no tensor data read. */
export interface SafetensorsHeader {
  path: string;
  tensors: Map<string, TensorLocation>;
  metadata: Record<string, string>;
}

/** Bytes read per call while widening F16/BF16 (F32 is read straight into the destination). */
const CHUNK_BYTES = 16 * 1024 * 1024;


// NOTE: readSync refuses lengths of 2 GiB and more (an F32 embedding of Llama 3 8B is 2.1 GB), so reads are cut.
const MAX_READ_BYTES = 1 << 30;

/** Read exactly buf.length bytes at `position`; a short read means the file changed under us. */
function readExactly(path: string, fd: number, buf: Uint8Array, position: number): void {
  let got = 0;
  while (got < buf.length) {
    const k = readSync(fd, buf, got, Math.min(buf.length - got, MAX_READ_BYTES), position + got);
    if (k === 0) throw bad(path, `file shrank while being read (bytes ${position + got} to ${position + buf.length} are gone)`);
    got += k;
  }
}

/**
 * Run `f` on an open descriptor of `path` and its size, turning any non-AjarError into 'bad_weights' naming the
 * file. Only a regular file is opened (a FIFO or device is refused before the open); with `root`, its real path must
 * lie inside that folder.
 */
function withFile<T>(path: string, f: (fd: number, size: number) => T, root?: string): T {
  const { fd, size } = openRegularFile(path, { code: 'bad_weights', kind: 'weights', root });
  try {
    return f(fd, size);
  } catch (e) {
    if (e instanceof AjarError) throw e;
    throw bad(path, `cannot read (${describe(e)})`);
  } finally {
    closeSync(fd);
  }
}

/**
 * Read and check a safetensors file's header only (length prefix, JSON, every entry, the tiling of the data
 * area against the file's size): a file's tensors are then read one at a time with readTensorInto. With `root`
 * (the model folder), the file's real path must lie inside it.
 */
export function readSafetensorsHeader(path: string, root?: string): SafetensorsHeader {
  return withFile(path, (fd, size) => {
    const prefix = new Uint8Array(Math.min(8, size));
    readExactly(path, fd, prefix, 0);
    const n = headerLength(path, prefix, size);
    const headerBytes = new Uint8Array(n);
    readExactly(path, fd, headerBytes, 8);
    const { entries, metadata } = parseHeader(path, headerBytes, size - 8 - n);
    const tensors = new Map<string, TensorLocation>();
    for (const e of entries) tensors.set(e.name, { dtype: e.dtype, shape: e.shape, offset: 8 + n + e.begin, bytes: e.end - e.begin });
    return { path, tensors, metadata };
  }, root);
}

/** Refuse, naming the file, a tensor whose dtype ajar cannot widen to float32. */
export function checkLoadable(path: string, name: string, t: TensorLocation): void {
  checkLoadableDtype(path, name, t.dtype);
}

/**
 * Read one tensor from `path` into `out` (numel(shape) float32 values), widening F16/BF16 in chunks of
 * CHUNK_BYTES, so loading a checkpoint needs no memory beyond the destination and one chunk.
 */
export function readTensorInto(path: string, name: string, t: TensorLocation, out: Float32Array): void {
  checkLoadableDtype(path, name, t.dtype);
  const width = t.dtype === 'F32' ? 4 : 2;
  if (out.length * width !== t.bytes) {
    throw new AjarError('bad_weights', `${path}: tensor ${quote(name)} holds ${t.bytes / width} values, the destination ${out.length}`);
  }
  withFile(path, (fd) => {
    if (t.dtype === 'F32' && HOST_LITTLE_ENDIAN) {
      readExactly(path, fd, new Uint8Array(out.buffer, out.byteOffset, out.byteLength), t.offset);
      return;
    }
    const chunk = new Uint8Array(Math.min(CHUNK_BYTES, t.bytes)); // CHUNK_BYTES is a multiple of every width
    for (let done = 0; done < t.bytes; done += chunk.length) {
      const part = chunk.subarray(0, Math.min(chunk.length, t.bytes - done));
      readExactly(path, fd, part, t.offset + done);
      widenInto(t.dtype, part, out.subarray(done / width, (done + part.length) / width));
    }
  });
}

/** Read one I8 tensor (a quantised weight) from `path` into `out` (numel(shape) values). */
export function readInt8Into(path: string, name: string, t: TensorLocation, out: Int8Array): void {
  if (t.dtype !== 'I8') throw bad(path, `tensor ${quote(name)} has dtype ${t.dtype}, expected I8 (int8 weights)`);
  if (out.length !== t.bytes) {
    throw new AjarError('bad_weights', `${path}: tensor ${quote(name)} holds ${t.bytes} values, the destination ${out.length}`);
  }
  withFile(path, (fd) => readExactly(path, fd, new Uint8Array(out.buffer, out.byteOffset, out.byteLength), t.offset));
}

/**
 * Read and parse a safetensors file; a missing, unreadable or malformed file is an AjarError('bad_weights'). With
 * `root`, the file's real path must lie inside that folder.
 */
export function readSafetensors(path: string, root?: string): SafeTensors {
  const header = readSafetensorsHeader(path, root);
  const tensors = new Map<string, SafeTensor>();
  for (const [name, t] of header.tensors) {
    checkLoadableDtype(path, name, t.dtype);
    const data = new Float32Array(t.shape.reduce((a, b) => a * b, 1));
    readTensorInto(path, name, t, data);
    tensors.set(name, { dtype: t.dtype, shape: t.shape, data });
  }
  return { tensors, metadata: header.metadata };
}

// ---------------------------------------------------------------------------------------------------------------
// Writing

interface Prepared {
  header: Uint8Array; // JSON padded with spaces to a multiple of 8 bytes
  order: { name: string; tensor: WeightTensor | Int8Tensor }[]; // in data-area order
  dataBytes: number;
}

/** Sort by UTF-8 bytes, as Rust's String ordering (the reference library) and Python's str ordering do. */
function sortedByUtf8(names: string[]): string[] {
  return names
    .map((name) => ({ name, key: Buffer.from(name, 'utf8') }))
    .sort((a, b) => Buffer.compare(a.key, b.key))
    .map((x) => x.name);
}

function entriesOf(tensors: TensorInput): [string, WeightTensor | Int8Tensor][] {
  return tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
}

function prepare(tensors: TensorInput, metadata: Record<string, string> | undefined): Prepared {
  const byName = new Map(entriesOf(tensors));
  const parts: string[] = [];
  if (metadata !== undefined) {
    const fields: string[] = [];
    for (const key of sortedByUtf8(Object.keys(metadata))) {
      const value = metadata[key];
      if (typeof value !== 'string') {
        throw new AjarError('bad_weights', `cannot write safetensors: metadata value for ${quote(key)} must be a string`);
      }
      fields.push(`${JSON.stringify(key)}:${JSON.stringify(value)}`);
    }
    parts.push(`"__metadata__":{${fields.join(',')}}`);
  }
  const order: Prepared['order'] = [];
  let offset = 0;
  for (const name of sortedByUtf8([...byName.keys()])) {
    const t = byName.get(name)!;
    if (name === '__metadata__') throw new AjarError('bad_weights', 'cannot write safetensors: "__metadata__" is reserved and cannot name a tensor');
    if (!Array.isArray(t.shape) || !t.shape.every(isIndex)) {
      throw new AjarError('bad_weights', `cannot write tensor ${quote(name)}: shape ${JSON.stringify(t.shape)} must list non-negative integers`);
    }
    if (!(t.data instanceof Float32Array) && !(t.data instanceof Int8Array)) {
      throw new AjarError('bad_weights', `cannot write tensor ${quote(name)}: data must be a Float32Array or an Int8Array`);
    }
    const int8 = t.data instanceof Int8Array;
    const numel = t.shape.reduce((a, b) => a * b, 1);
    if (t.data.length !== numel) {
      throw new AjarError('bad_weights', `cannot write tensor ${quote(name)}: shape ${JSON.stringify(t.shape)} has ${numel} `
        + `elements but its data has ${t.data.length}`);
    }
    const end = offset + (int8 ? 1 : 4) * numel;
    // Field order and compact form are what serde_json writes for the reference library's TensorInfo.
    parts.push(`${JSON.stringify(name)}:{"dtype":"${int8 ? 'I8' : 'F32'}","shape":[${t.shape.join(',')}],"data_offsets":[${offset},${end}]}`);
    order.push({ name, tensor: t });
    offset = end;
  }
  const json = Buffer.from(`{${parts.join(',')}}`, 'utf8');
  const padded = Math.ceil(json.length / 8) * 8; // aligns the data area for 8-byte dtypes
  if (padded > MAX_HEADER_BYTES) {
    throw new AjarError('bad_weights', `cannot write safetensors: header would be ${padded} bytes, over the ${MAX_HEADER_BYTES}-byte limit`);
  }
  const header = Buffer.alloc(padded, 0x20);
  json.copy(header);
  return { header, order, dataBytes: offset };
}

function lengthPrefix(n: number): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(n), true);
  return out;
}

/** The little-endian bytes of a Float32Array (a view when the host is little endian, a swapped copy otherwise). */
function littleEndianBytes(data: Float32Array | Int8Array): Uint8Array {
  const view = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (HOST_LITTLE_ENDIAN || data instanceof Int8Array) return view;
  const out = new Uint8Array(view.length);
  for (let i = 0; i < view.length; i += 4) {
    out[i] = view[i + 3];
    out[i + 1] = view[i + 2];
    out[i + 2] = view[i + 1];
    out[i + 3] = view[i];
  }
  return out;
}

/** Serialize tensors as an F32 safetensors file: names in UTF-8 order, header space-padded to 8 bytes, LE data. */
export function serializeSafetensors(tensors: TensorInput, metadata?: Record<string, string>): Uint8Array {
  const { header, order, dataBytes } = prepare(tensors, metadata);
  const out = new Uint8Array(8 + header.length + dataBytes);
  out.set(lengthPrefix(header.length), 0);
  out.set(header, 8);
  let at = 8 + header.length;
  for (const { tensor } of order) {
    out.set(littleEndianBytes(tensor.data), at);
    at += tensor.data.byteLength;
  }
  return out;
}

function writeAll(fd: number, bytes: Uint8Array): void {
  let done = 0;
  while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done);
}

/**
 * Write an F32 safetensors file atomically: a temp file in the same folder, fsync, then rename over `path`,
 * so a crash never leaves a half-written file under the real name. Failure is an AjarError('write_failed').
 */
export function writeSafetensors(path: string, tensors: TensorInput, metadata?: Record<string, string>): void {
  const prepared = prepare(tensors, metadata);
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  let fd: number | undefined;
  try {
    fd = openSync(tmp, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o644);
    writeAll(fd, lengthPrefix(prepared.header.length));
    writeAll(fd, prepared.header);
    for (const { tensor } of prepared.order) writeAll(fd, littleEndianBytes(tensor.data));
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, path);
  } catch (e) {
    if (fd !== undefined) closeSync(fd);
    try {
      unlinkSync(tmp);
    } catch {
      // the temp file was never created, or is already gone
    }
    throw new AjarError('write_failed', `cannot write ${path}: ${describe(e)}`);
  }
  syncDir(dir);
}

