// safetensors reader and writer, checked against files PyTorch wrote (test/golden/safetensors/make_fixtures.py),
// byte layouts from the reference library's own tests, targeted rejections, and a seeded fuzz of the parser.
import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AjarError } from '../../src/tensor/errors.js';
import {
  MAX_HEADER_BYTES, parseSafetensors, readSafetensors, serializeSafetensors, writeSafetensors, type WeightTensor,
} from '../../src/io/safetensors.js';

// dist/test/io/ -> repository root
const GOLDEN = fileURLToPath(new URL('../../../test/golden/safetensors/', import.meta.url));

interface ExpectedTensor { dtype: string; shape: number[]; bits: number[] }
interface ExpectedSet { metadata: Record<string, string>; tensors: Record<string, ExpectedTensor> }
const expected = JSON.parse(readFileSync(join(GOLDEN, 'expected.json'), 'utf8')) as {
  dtypes: ExpectedSet; roundtrip: ExpectedSet;
};

/** Float32 bit patterns, so -0, infinities and NaN payloads compare exactly. */
function bitsOf(f: Float32Array): number[] {
  return Array.from(new Uint32Array(f.buffer, f.byteOffset, f.length));
}

function fromBits(bits: number[]): Float32Array {
  return new Float32Array(new Uint32Array(bits).buffer);
}

function tensorsFrom(set: ExpectedSet): Map<string, WeightTensor> {
  const m = new Map<string, WeightTensor>();
  for (const [name, t] of Object.entries(set.tensors)) m.set(name, { shape: t.shape, data: fromBits(t.bits) });
  return m;
}

/** A file with the given header text (length prefix computed) followed by `dataBytes` bytes of data. */
function fileWith(header: string, dataBytes = 0): Uint8Array {
  const h = Buffer.from(header, 'utf8');
  const out = new Uint8Array(8 + h.length + dataBytes);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  return out;
}

function withHeaderLength(buf: Uint8Array, n: bigint): Uint8Array {
  const out = Uint8Array.from(buf);
  new DataView(out.buffer).setBigUint64(0, n, true);
  return out;
}

function rejects(buf: Uint8Array, pattern: RegExp, label = 'case.safetensors'): void {
  assert.throws(() => parseSafetensors(buf, label), (e: unknown) => {
    assert.ok(e instanceof AjarError, `expected an AjarError, got ${String(e)}`);
    assert.equal(e.code, 'bad_weights');
    assert.ok(e.message.startsWith(`${label}: `), `message should name the file: ${e.message}`);
    assert.ok(!e.message.includes('\n'), `message should be one line: ${e.message}`);
    assert.match(e.message, pattern);
    return true;
  });
}

const tmpRoot = mkdtempSync(join(tmpdir(), 'ajar-safetensors-'));
after(() => rmSync(tmpRoot, { recursive: true, force: true }));

describe('golden files written by PyTorch', () => {
  test('F32, F16 (subnormals, inf, NaN) and BF16 widen to the float32 bits PyTorch .float() gives', () => {
    const { tensors, metadata } = readSafetensors(join(GOLDEN, 'dtypes.safetensors'));
    assert.deepEqual(metadata, expected.dtypes.metadata);
    assert.deepEqual([...tensors.keys()].sort(), Object.keys(expected.dtypes.tensors).sort());
    for (const [name, want] of Object.entries(expected.dtypes.tensors)) {
      const got = tensors.get(name)!;
      assert.equal(got.dtype, want.dtype, name);
      assert.deepEqual(got.shape, want.shape, name);
      assert.ok(got.data instanceof Float32Array, name);
      assert.deepEqual(bitsOf(got.data), want.bits, name);
    }
  });

  test('serializing the fixed tensor set reproduces the Python-written bytes exactly', () => {
    const tensors = tensorsFrom(expected.roundtrip);
    const withMeta = readFileSync(join(GOLDEN, 'roundtrip.safetensors'));
    const noMeta = readFileSync(join(GOLDEN, 'roundtrip_nometa.safetensors'));
    assert.deepEqual(Buffer.from(serializeSafetensors(tensors, expected.roundtrip.metadata)), withMeta);
    assert.deepEqual(Buffer.from(serializeSafetensors(tensors)), noMeta);
    // Insertion order (and a plain object instead of a Map) does not change the bytes.
    const reversed = new Map([...tensors.entries()].reverse());
    assert.deepEqual(Buffer.from(serializeSafetensors(reversed, expected.roundtrip.metadata)), withMeta);
    assert.deepEqual(Buffer.from(serializeSafetensors(Object.fromEntries(tensors))), noMeta);
  });
});

describe('byte layouts from the reference library\'s tests (safetensors/src/tensor.rs)', () => {
  test('test_empty: no tensors, with and without metadata', () => {
    assert.deepEqual(Array.from(serializeSafetensors(new Map())), [8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32]);
    assert.deepEqual(Array.from(serializeSafetensors(new Map(), { framework: 'pt' })), [
      40, 0, 0, 0, 0, 0, 0, 0, 123, 34, 95, 95, 109, 101, 116, 97, 100, 97, 116, 97, 95,
      95, 34, 58, 123, 34, 102, 114, 97, 109, 101, 119, 111, 114, 107, 34, 58, 34, 112,
      116, 34, 125, 125, 32, 32, 32, 32, 32,
    ]);
  });

  test('test_serialization and test_serialization_forced_alignement', () => {
    const data = new Float32Array([0, 1, 2, 3, 4, 5]);
    assert.deepEqual(Array.from(serializeSafetensors({ 'attn.0': { shape: [1, 2, 3], data } })), [
      64, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 46, 48, 34, 58, 123, 34, 100,
      116, 121, 112, 101, 34, 58, 34, 70, 51, 50, 34, 44, 34, 115, 104, 97, 112, 101, 34,
      58, 91, 49, 44, 50, 44, 51, 93, 44, 34, 100, 97, 116, 97, 95, 111, 102, 102, 115,
      101, 116, 115, 34, 58, 91, 48, 44, 50, 52, 93, 125, 125, 0, 0, 0, 0, 0, 0, 128, 63,
      0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64,
    ]);
    assert.deepEqual(Array.from(serializeSafetensors({ attn0: { shape: [1, 1, 2, 3], data } })), [
      72, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 48, 34, 58, 123, 34, 100, 116,
      121, 112, 101, 34, 58, 34, 70, 51, 50, 34, 44, 34, 115, 104, 97, 112, 101, 34, 58,
      91, 49, 44, 49, 44, 50, 44, 51, 93, 44, 34, 100, 97, 116, 97, 95, 111, 102, 102,
      115, 101, 116, 115, 34, 58, 91, 48, 44, 50, 52, 93, 125, 125, 32, 32, 32, 32, 32,
      32, 32, 0, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0,
      160, 64,
    ]);
  });
});

describe('round trip', () => {
  test('serialize then parse gives back the same tensors and metadata', () => {
    const tensors = tensorsFrom(expected.dtypes); // includes NaN payloads, -0, infinities, empty and scalar tensors
    const meta = JSON.parse('{"__proto__":"stays a key","b":"x","a":"y"}') as Record<string, string>;
    const bytes = serializeSafetensors(tensors, meta);
    const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
    assert.equal(n % 8, 0, 'header length is a multiple of 8');
    assert.equal(bytes[8], '{'.charCodeAt(0));
    const back = parseSafetensors(bytes, 'mem');
    assert.deepEqual(back.metadata, JSON.parse('{"__proto__":"stays a key","a":"y","b":"x"}'));
    assert.equal(Object.getPrototypeOf(back.metadata), Object.prototype);
    assert.equal(back.tensors.size, tensors.size);
    for (const [name, t] of tensors) {
      const got = back.tensors.get(name)!;
      assert.equal(got.dtype, 'F32');
      assert.deepEqual(got.shape, t.shape);
      assert.deepEqual(bitsOf(got.data), bitsOf(t.data), name);
    }
  });

  test('parses a subarray of a larger buffer (unaligned byteOffset)', () => {
    const bytes = serializeSafetensors({ w: { shape: [3], data: new Float32Array([1.5, -2, 3]) } });
    const big = new Uint8Array(bytes.length + 3);
    big.set(bytes, 3);
    const got = parseSafetensors(big.subarray(3), 'mem').tensors.get('w')!;
    assert.deepEqual(Array.from(got.data), [1.5, -2, 3]);
  });

  test('serializer rejects inconsistent input', () => {
    const bad = (f: () => unknown, pattern: RegExp): void => {
      assert.throws(f, (e: unknown) => e instanceof AjarError && pattern.test(e.message));
    };
    bad(() => serializeSafetensors({ w: { shape: [2, 2], data: new Float32Array(3) } }), /4 elements but its data has 3/);
    bad(() => serializeSafetensors({ w: { shape: [-1], data: new Float32Array(0) } }), /non-negative integers/);
    bad(() => serializeSafetensors({ __metadata__: { shape: [0], data: new Float32Array(0) } }), /reserved/);
    bad(() => serializeSafetensors({}, { k: 3 as unknown as string }), /must be a string/);
  });

  test('writeSafetensors writes atomically and leaves no temp file', () => {
    const dir = join(tmpRoot, 'write');
    mkdirSync(dir);
    const path = join(dir, 'model.safetensors');
    const tensors = tensorsFrom(expected.roundtrip);
    writeSafetensors(path, tensors, { format: 'pt' });
    assert.deepEqual(readFileSync(path), Buffer.from(serializeSafetensors(tensors, { format: 'pt' })));
    writeSafetensors(path, { only: { shape: [1], data: new Float32Array([4]) } }); // overwrite in place
    assert.deepEqual(Array.from(readSafetensors(path).tensors.get('only')!.data), [4]);
    assert.deepEqual(readdirSync(dir), ['model.safetensors']);

    const missing = join(dir, 'no-such-dir', 'x.safetensors');
    assert.throws(() => writeSafetensors(missing, tensors), (e: unknown) =>
      e instanceof AjarError && e.code === 'write_failed' && e.message.includes(missing));
    assert.deepEqual(readdirSync(dir), ['model.safetensors']);
  });
});

describe('rejections name the file and the problem', () => {
  const t = (dtype: string, shape: unknown, offsets: unknown): string =>
    JSON.stringify({ dtype, shape, data_offsets: offsets });

  test('file and header length', () => {
    rejects(new Uint8Array(5), /5 bytes, too short/);
    rejects(new Uint8Array(0), /0 bytes, too short/);
    const ok = fileWith('{}');
    rejects(withHeaderLength(ok, 2n ** 53n), /header length 9007199254740992 exceeds the 100000000-byte limit/);
    rejects(withHeaderLength(ok, 2n ** 64n - 1n), /header length 18446744073709551615 exceeds/);
    rejects(withHeaderLength(ok, BigInt(MAX_HEADER_BYTES) + 1n), /exceeds/);
    rejects(withHeaderLength(ok, BigInt(MAX_HEADER_BYTES)), /runs past the end of the file \(10 bytes\)/);
    rejects(withHeaderLength(ok, 1n), /not valid JSON/);
  });

  test('header text', () => {
    rejects(fileWith('\u00ff').map((b, i) => (i === 8 ? 0xff : b)), /not valid UTF-8/);
    rejects(fileWith(' {}'), /does not start with '\{'/);
    rejects(fileWith('\ufeff{}'), /does not start with '\{'/);
    rejects(fileWith('{"a":'), /not valid JSON \(/);
    rejects(fileWith('{} x'), /not valid JSON/);
    rejects(fileWith('[]'), /does not start with/);
    // Deep nesting is refused before JSON.parse, which would take a microsecond a level (a minute at 100 MB).
    rejects(fileWith(`{"a":${'['.repeat(65)}${']'.repeat(65)}}`), /nests deeper than 64 levels/);
    rejects(fileWith(`{"a":${'['.repeat(10_000_000)}`), /nests deeper than 64 levels/);
    // Brackets inside strings do not count.
    const text = `${'[{'.repeat(100)}"[`;
    assert.equal(parseSafetensors(fileWith(JSON.stringify({ __metadata__: { k: text } })), 'mem').metadata.k, text);
  });

  test('entries', () => {
    rejects(fileWith('{"w":3}'), /tensor "w": header entry must be an object/);
    rejects(fileWith('{"w":{"shape":[1],"data_offsets":[0,4]}}', 4), /tensor "w": dtype must be a string/);
    rejects(fileWith('{"w":{"dtype":"F32","data_offsets":[0,4]}}', 4), /shape must be an array/);
    rejects(fileWith('{"w":{"dtype":"F32","shape":[1]}}', 4), /data_offsets must be \[begin, end\]/);
    rejects(fileWith(`{"w":${t('F32', [1], [0, 4, 8])}}`, 4), /data_offsets must be/);
    rejects(fileWith(`{"w":${t('F32', [1], ['0', 4])}}`, 4), /data_offsets must be/);
    rejects(fileWith(`{"w":${t('Q4', [1], [0, 4])}}`, 4), /unknown dtype "Q4"/);
    rejects(fileWith(`{"w":${t('F32', [-1], [0, 4])}}`, 4), /not a non-negative integer/);
    rejects(fileWith(`{"w":${t('F32', [1.5], [0, 4])}}`, 4), /not a non-negative integer/);
    rejects(fileWith(`{"w":${t('F32', [2 ** 53], [0, 4])}}`, 4), /not a non-negative integer/);
    rejects(fileWith(`{"w":${t('F32', ['1'], [0, 4])}}`, 4), /not a non-negative integer/);
    rejects(fileWith(`{"w":${t('F32', [2, 2], [0, 12])}}`, 12), /needs 16 bytes but data_offsets \[0, 12\] hold 12/);
    // A product past 2^64 must not wrap around to a match (2^32 * 2^32 * 4 bytes = 2^66 = 0 mod 2^64).
    rejects(fileWith(`{"w":${t('F32', [2 ** 32, 2 ** 32], [0, 0])}}`), /needs 73786976294838206464 bytes/);
    rejects(fileWith(`{"w":${t('F4', [3], [0, 1])}}`, 1), /do not fill whole bytes/);
  });

  test('placement in the data area', () => {
    rejects(fileWith(`{"w":${t('F32', [1], [4, 8])}}`, 4), /run past the data area \(4 bytes\)/);
    rejects(fileWith(`{"w":${t('F32', [0], [8, 4])}}`, 8), /begin after they end/);
    rejects(fileWith(`{"a":${t('F32', [2], [0, 8])},"b":${t('F32', [1], [4, 8])}}`, 8),
      /tensor "b" at bytes \[4, 8\] overlaps tensor "a" at \[0, 8\]/);
    rejects(fileWith(`{"a":${t('F32', [1], [0, 4])},"b":${t('F32', [1], [0, 4])}}`, 4), /overlaps/);
    rejects(fileWith(`{"a":${t('F32', [1], [0, 4])},"b":${t('F32', [1], [8, 12])}}`, 12),
      /bytes \[4, 8\) of the data area belong to no tensor/);
    rejects(fileWith(`{"a":${t('F32', [1], [4, 8])}}`, 8), /bytes \[0, 4\) of the data area belong to no tensor/);
    rejects(fileWith(`{"a":${t('F32', [1], [0, 4])}}`, 6), /bytes \[4, 6\) at the end of the data area belong to no tensor/);
    rejects(fileWith('{}', 1), /bytes \[0, 1\) at the end/);
  });

  test('metadata and dtypes', () => {
    rejects(fileWith('{"__metadata__":[]}'), /__metadata__ must be an object/);
    rejects(fileWith('{"__metadata__":{"n":1}}'), /__metadata__ value for "n" must be a string/);
    rejects(fileWith(`{"w":${t('I64', [1], [0, 8])}}`, 8), /tensor "w" has dtype I64, which ajar does not load \(supported: F32, F16, BF16\)/);
    rejects(fileWith(`{"w":${t('F8_E4M3', [2], [0, 2])}}`, 2), /dtype F8_E4M3, which ajar does not load/);
    rejects(fileWith(`{"w":${t('BOOL', [1], [0, 1])}}`, 1), /dtype BOOL/);
  });

  test('edge cases that are valid', () => {
    // Zero-size tensors may share an offset; the header may carry trailing spaces; unknown entry fields are ignored.
    const buf = fileWith(`{"a":${t('F32', [0, 2], [0, 0])},"b":${t('F16', [0], [0, 0])},"c":${t('BF16', [], [0, 2])}}   `, 2);
    buf[buf.length - 1] = 0x3f; // BF16 0x3f80 = 1.0
    buf[buf.length - 2] = 0x80;
    const { tensors, metadata } = parseSafetensors(buf, 'mem');
    assert.deepEqual(metadata, {});
    assert.deepEqual(tensors.get('a'), { dtype: 'F32', shape: [0, 2], data: new Float32Array(0) });
    assert.deepEqual(Array.from(tensors.get('c')!.data), [1]);
    assert.deepEqual(parseSafetensors(fileWith('{}'), 'mem').tensors.size, 0);
  });

  test('readSafetensors: missing file or a folder', () => {
    const missing = join(tmpRoot, 'nope.safetensors');
    assert.throws(() => readSafetensors(missing), (e: unknown) =>
      e instanceof AjarError && e.code === 'bad_weights' && e.message === `${missing} does not exist`);
    assert.throws(() => readSafetensors(tmpRoot), (e: unknown) =>
      e instanceof AjarError && e.code === 'bad_weights' && e.message.includes(tmpRoot) && /not a regular file/.test(e.message));
    const short = join(tmpRoot, 'short.safetensors');
    writeFileSync(short, Buffer.from([1, 2, 3]));
    assert.throws(() => readSafetensors(short), (e: unknown) =>
      e instanceof AjarError && e.message.startsWith(`${short}: file is 3 bytes`));
    assert.ok(!existsSync(missing));
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Fuzz: from valid files, seeded random mutations. Each must parse or throw AjarError('bad_weights'); nothing else.

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Parse; return whether it was accepted. Any exception other than a one-line AjarError fails the test. */
function survive(buf: Uint8Array, what: string): boolean {
  try {
    const { tensors } = parseSafetensors(buf, 'fuzz');
    for (const [name, t] of tensors) {
      assert.equal(t.data.length, t.shape.reduce((a, b) => a * b, 1), `${what}: ${name} data length matches its shape`);
    }
    return true;
  } catch (e) {
    if (e instanceof AjarError && e.code === 'bad_weights' && e.message.startsWith('fuzz: ') && !e.message.includes('\n')) {
      return false;
    }
    throw new Error(`${what}: parser threw something other than a one-line AjarError: ${String(e)}`, { cause: e });
  }
}

describe('fuzz', () => {
  const base = new Uint8Array(readFileSync(join(GOLDEN, 'dtypes.safetensors')));
  const n = Number(new DataView(base.buffer).getBigUint64(0, true));
  const header = JSON.parse(Buffer.from(base.subarray(8, 8 + n)).toString('utf8')) as Record<string, Record<string, unknown>>;
  const dataArea = base.subarray(8 + n);

  test('the base file parses', () => {
    assert.ok(survive(base, 'base'));
  });

  test('truncation at every length is rejected', () => {
    for (let len = 0; len < base.length; len++) {
      assert.equal(survive(base.subarray(0, len), `truncated to ${len}`), false, `truncated to ${len}`);
    }
  });

  test('header length field set to wrong values is rejected', () => {
    const lengths = [0n, 1n, 7n, BigInt(n - 1), BigInt(n + 1), BigInt(base.length), 2n ** 32n, 2n ** 53n, 2n ** 53n + 1n,
      2n ** 63n, 2n ** 64n - 1n, BigInt(MAX_HEADER_BYTES), BigInt(MAX_HEADER_BYTES) + 1n];
    for (const len of lengths) assert.equal(survive(withHeaderLength(base, len), `length ${len}`), false, `length ${len}`);
  });

  test('random byte flips', { timeout: 20_000 }, () => {
    const rand = mulberry32(1);
    for (let i = 0; i < 3000; i++) {
      const buf = Uint8Array.from(base);
      const flips = 1 + Math.floor(rand() * 3);
      // Bias toward the length prefix and header, where the parsing happens.
      const span = rand() < 0.8 ? 8 + n : buf.length;
      for (let k = 0; k < flips; k++) buf[Math.floor(rand() * span)] ^= 1 + Math.floor(rand() * 255);
      survive(buf, `flip case ${i}`);
    }
  });

  test('structural mutations of the header', { timeout: 20_000 }, () => {
    const rand = mulberry32(2);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
    const weird = [-1, 0, 1, 0.5, -0.5, 3, 2 ** 31, 2 ** 32, 2 ** 53, 2 ** 53 + 2, 2 ** 64, 1e300, -1e300, '3', null, true, [], {}];
    const dtypes = ['F32', 'F16', 'BF16', 'F64', 'I64', 'I32', 'U8', 'BOOL', 'F8_E4M3', 'F8_E5M2', 'F4', 'C64', 'f32', '', 'constructor', '__proto__'];
    const names = Object.keys(header).filter((k) => k !== '__metadata__');
    let accepted = 0;
    for (let i = 0; i < 2000; i++) {
      const h = JSON.parse(JSON.stringify(header)) as Record<string, Record<string, unknown>>;
      let data: Uint8Array = dataArea;
      const steps = 1 + Math.floor(rand() * 3);
      for (let s = 0; s < steps; s++) {
        const name = pick(names);
        const entry = h[name];
        if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
          h[name] = structuredClone(header[name]); // an earlier step broke or removed it: start that entry afresh
          continue;
        }
        switch (Math.floor(rand() * 12)) {
          case 0: { // one dimension
            const shape = entry.shape;
            if (Array.isArray(shape) && shape.length > 0) shape[Math.floor(rand() * shape.length)] = pick(weird);
            else entry.shape = [pick(weird)];
            break;
          }
          case 1: // shape replaced
            entry.shape = pick([[-1], [1.5], 'x', null, [], [0], [2 ** 40, 2 ** 40]]);
            break;
          case 2: { // offsets nudged: overlaps, holes, begin > end
            const [b, e] = Array.isArray(entry.data_offsets) ? entry.data_offsets as number[] : [0, 0];
            entry.data_offsets = [b + pick([-4, -2, -1, 0, 1, 2, 4]), e + pick([-4, -2, -1, 0, 1, 2, 4])];
            break;
          }
          case 3: // offsets replaced with another tensor's (overlap) or nonsense
            entry.data_offsets = pick([h[pick(names)]?.data_offsets, [pick(weird), pick(weird)], [0], [0, 1, 2], 'x']);
            break;
          case 4:
            entry.dtype = pick(dtypes);
            break;
          case 5: // a field removed
            delete entry[pick(['dtype', 'shape', 'data_offsets'])];
            break;
          case 6: // the entry replaced by a non-object
            h[name] = pick([null, 1, 'x', [], [1, 2]]) as unknown as Record<string, unknown>;
            break;
          case 7: // metadata garbage
            h.__metadata__ = pick([null, [], 'x', { a: 1 }, { a: null }, { a: {} }, JSON.parse('{"__proto__":"x"}')]) as Record<string, unknown>;
            break;
          case 8: // an extra tensor somewhere
            h[`extra${i}`] = { dtype: pick(dtypes), shape: [pick(weird)], data_offsets: [pick(weird), pick(weird)] };
            break;
          case 9: // data area shortened or lengthened
            data = rand() < 0.5 ? data.subarray(0, Math.max(0, data.length - 1 - Math.floor(rand() * 8)))
              : Buffer.concat([data, new Uint8Array(1 + Math.floor(rand() * 8))]);
            break;
          case 10: // a tensor removed (leaves a hole unless it was empty)
            delete h[name];
            break;
          default: { // offsets of two tensors swapped
            const other = h[pick(names)];
            if (typeof entry === 'object' && entry !== null && typeof other === 'object' && other !== null) {
              [entry.data_offsets, other.data_offsets] = [other.data_offsets, entry.data_offsets];
            }
          }
        }
      }
      const head = Buffer.from(JSON.stringify(h), 'utf8');
      const buf = new Uint8Array(8 + head.length + data.length);
      new DataView(buf.buffer).setBigUint64(0, BigInt(head.length), true);
      buf.set(head, 8);
      buf.set(data, 8 + head.length);
      if (survive(buf, `mutation ${i}`)) accepted++;
    }
    assert.ok(accepted < 2000, 'most mutations are rejected');
  });

  test('garbage headers', { timeout: 20_000 }, () => {
    const rand = mulberry32(3);
    const tokens = ['{', '}', '[', ']', ':', ',', '"', '"w"', '"dtype"', '"F32"', '"shape"', '"data_offsets"', '0', '-1',
      '1e999', '9007199254740993', 'null', 'true', ' ', '\\', '"\\u0000"', '"\\ud800"', '\u00e9', '\ufffd'];
    for (let i = 0; i < 2000; i++) {
      let text = '{';
      const len = Math.floor(rand() * 30);
      for (let k = 0; k < len; k++) text += tokens[Math.floor(rand() * tokens.length)];
      survive(fileWith(text, Math.floor(rand() * 16)), `garbage ${i}: ${text}`);
      const raw = new Uint8Array(8 + Math.floor(rand() * 40));
      for (let k = 8; k < raw.length; k++) raw[k] = Math.floor(rand() * 256);
      new DataView(raw.buffer).setBigUint64(0, BigInt(Math.floor(rand() * (raw.length - 7))), true);
      survive(raw, `raw ${i}`);
    }
  });
});
