// Hugging Face model folders: the PyTorch-written sharded fixture (test/golden/safetensors/make_fixtures.py) loads
// to the expected float32 bits, and every broken folder gives an AjarError with the right code naming the path.
import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AjarError } from '../../src/tensor/errors.js';
import { loadModelFolder, readConfig, readWeights } from '../../src/io/folder.js';
import { writeSafetensors, type WeightTensor } from '../../src/io/safetensors.js';

// dist/test/io/ -> repository root
const GOLDEN = fileURLToPath(new URL('../../../test/golden/safetensors/', import.meta.url));
const SHARDED = join(GOLDEN, 'sharded');
const SHARD1 = 'model-00001-of-00002.safetensors';
const SHARD2 = 'model-00002-of-00002.safetensors';
const INDEX = 'model.safetensors.index.json';

interface ExpectedTensor { dtype: string; shape: number[]; bits: number[] }
const expected = JSON.parse(readFileSync(join(GOLDEN, 'expected.json'), 'utf8')) as {
  dtypes: { tensors: Record<string, ExpectedTensor> };
  sharded: { config: Record<string, unknown>; tensors: Record<string, ExpectedTensor> };
};

function bitsOf(f: Float32Array): number[] {
  return Array.from(new Uint32Array(f.buffer, f.byteOffset, f.length));
}

function assertWeights(got: Map<string, WeightTensor>, want: Record<string, ExpectedTensor>): void {
  assert.deepEqual([...got.keys()].sort(), Object.keys(want).sort());
  for (const [name, t] of Object.entries(want)) {
    assert.deepEqual(got.get(name)!.shape, t.shape, name);
    assert.deepEqual(bitsOf(got.get(name)!.data), t.bits, name);
  }
}

/** `f` throws an AjarError with `code` whose one-line message contains every string in `mentions`. */
function fails(f: () => unknown, code: string, mentions: (string | RegExp)[]): void {
  assert.throws(f, (e: unknown) => {
    assert.ok(e instanceof AjarError, `expected an AjarError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.ok(!e.message.includes('\n'), `one line: ${e.message}`);
    for (const m of mentions) {
      if (typeof m === 'string') assert.ok(e.message.includes(m), `message should mention ${m}: ${e.message}`);
      else assert.match(e.message, m);
    }
    return true;
  });
}

const root = mkdtempSync(join(tmpdir(), 'ajar-folder-'));
after(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;

/** A fresh folder under the temp root, optionally a copy of the golden sharded folder. */
function folder(copyOfSharded = false): string {
  const dir = join(root, `m${counter++}`);
  if (copyOfSharded) cpSync(SHARDED, dir, { recursive: true });
  else mkdirSync(dir);
  return dir;
}

function editIndex(dir: string, edit: (weightMap: Record<string, string>) => void): void {
  const path = join(dir, INDEX);
  const index = JSON.parse(readFileSync(path, 'utf8')) as { weight_map: Record<string, string> };
  edit(index.weight_map);
  writeFileSync(path, JSON.stringify(index));
}

describe('loading', () => {
  test('a sharded folder loads every tensor from its shard (F32, F16 and BF16 shards)', () => {
    assertWeights(readWeights(SHARDED), expected.sharded.tensors);
    const m = loadModelFolder(SHARDED);
    assert.equal(m.dir, SHARDED);
    assert.deepEqual(m.config, expected.sharded.config);
    assertWeights(m.weights, expected.sharded.tensors);
  });

  test('a single-file folder loads model.safetensors (preferred over an index)', () => {
    const dir = folder(true);
    copyFileSync(join(GOLDEN, 'dtypes.safetensors'), join(dir, 'model.safetensors'));
    assertWeights(readWeights(dir), expected.dtypes.tensors);
    assert.deepEqual(readConfig(dir), expected.sharded.config);
  });
});

describe('folder and config errors', () => {
  test('missing folder', () => {
    const dir = join(root, 'does-not-exist');
    fails(() => loadModelFolder(dir), 'model_not_found', [dir, 'does not exist']);
    fails(() => readConfig(dir), 'model_not_found', [dir]);
    fails(() => readWeights(dir), 'model_not_found', [dir]);
  });

  test('a file instead of a folder', () => {
    const file = join(folder(), 'x.safetensors');
    writeFileSync(file, 'x');
    fails(() => loadModelFolder(file), 'model_not_found', [file, 'is not a folder']);
    fails(() => readWeights(file), 'model_not_found', [file, 'is not a folder']);
  });

  test('missing config.json', () => {
    const dir = folder(true);
    rmSync(join(dir, 'config.json'));
    fails(() => loadModelFolder(dir), 'bad_config', [dir, 'no config.json']);
  });

  test('config.json that is a folder', () => {
    const dir = folder();
    mkdirSync(join(dir, 'config.json'));
    fails(() => readConfig(dir), 'bad_config', [dir, 'config.json is a folder, not a regular file']);
  });

  test('malformed config.json includes the JSON parse message', () => {
    const dir = folder(true);
    const path = join(dir, 'config.json');
    writeFileSync(path, '{"n_embd": 4,\n}');
    let parseMessage = '';
    try {
      JSON.parse('{"n_embd": 4,\n}');
    } catch (e) {
      parseMessage = (e as Error).message.replace(/\n/g, '\\u000a');
    }
    fails(() => loadModelFolder(dir), 'bad_config', [path, 'is not valid JSON', parseMessage]);
  });

  test('config.json that is not an object', () => {
    const dir = folder(true);
    const path = join(dir, 'config.json');
    writeFileSync(path, '[1, 2]');
    fails(() => readConfig(dir), 'bad_config', [path, 'JSON object, not an array']);
    writeFileSync(path, 'null');
    fails(() => readConfig(dir), 'bad_config', [path, 'not null']);
  });
});

describe('weights errors', () => {
  test('no weights at all', () => {
    const dir = folder();
    writeFileSync(join(dir, 'config.json'), '{}');
    fails(() => loadModelFolder(dir), 'bad_weights', [dir, 'no model.safetensors or model.safetensors.index.json']);
  });

  test('only pytorch_model.bin: refused, with how to convert', () => {
    for (const name of ['pytorch_model.bin', 'pytorch_model.bin.index.json']) {
      const dir = folder();
      writeFileSync(join(dir, 'config.json'), '{}');
      writeFileSync(join(dir, name), 'not loaded');
      fails(() => loadModelFolder(dir), 'bad_weights', [dir, name, 'pickle', 'arbitrary code', 'safe_serialization=True']);
    }
  });

  test('a corrupt model.safetensors names the file', () => {
    const dir = folder();
    const path = join(dir, 'model.safetensors');
    writeSafetensors(path, { w: { shape: [4], data: new Float32Array(4) } });
    truncateSync(path, 40);
    fails(() => readWeights(dir), 'bad_weights', [path]);
  });

  test('an index whose shard is missing', () => {
    const dir = folder(true);
    rmSync(join(dir, SHARD2));
    fails(() => readWeights(dir), 'bad_weights', [join(dir, INDEX), join(dir, SHARD2), 'does not exist']);
  });

  test('an index listing a tensor its shard does not hold', () => {
    const dir = folder(true);
    editIndex(dir, (m) => { m['h.1.attn.weight'] = SHARD1; });
    fails(() => readWeights(dir), 'bad_weights', [join(dir, INDEX), join(dir, SHARD1), '"h.1.attn.weight"', 'does not hold it']);
  });

  test('an index sending a tensor to the wrong shard', () => {
    const dir = folder(true);
    editIndex(dir, (m) => { m['wte.weight'] = SHARD2; });
    fails(() => readWeights(dir), 'bad_weights', [join(dir, SHARD1), '"wte.weight"', 'does not list']);
  });

  test('a shard holding a tensor the index does not list', () => {
    const dir = folder(true);
    editIndex(dir, (m) => { delete m['ln_f.weight']; });
    fails(() => readWeights(dir), 'bad_weights', [join(dir, SHARD2), '"ln_f.weight"', 'does not list']);
  });

  test('an index naming a shard outside the folder', () => {
    for (const shard of ['../model-00001-of-00002.safetensors', '/etc/passwd', 'sub\\x.safetensors', '..', '']) {
      const dir = folder(true);
      editIndex(dir, (m) => { m['wte.weight'] = shard; });
      fails(() => readWeights(dir), 'bad_weights', [join(dir, INDEX), 'not a file name inside the model folder']);
    }
  });

  test('a malformed index', () => {
    const cases: [string, string][] = [
      ['{"weight_map": {', 'is not valid JSON'],
      ['[]', 'JSON object, not an array'],
      ['{"metadata": {}}', 'weight_map must be an object'],
      ['{"weight_map": []}', 'weight_map must be an object'],
      ['{"weight_map": {"w": 3}}', 'entry for "w" must be a file name'],
      ['{"weight_map": {}}', 'weight_map lists no tensors'],
    ];
    for (const [text, mention] of cases) {
      const dir = folder(true);
      writeFileSync(join(dir, INDEX), text);
      fails(() => readWeights(dir), 'bad_weights', [join(dir, INDEX), mention]);
    }
  });

  test('a corrupt shard names the shard', () => {
    const dir = folder(true);
    truncateSync(join(dir, SHARD1), 100);
    fails(() => readWeights(dir), 'bad_weights', [join(dir, SHARD1)]);
  });
});
