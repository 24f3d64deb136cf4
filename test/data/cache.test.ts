// The ids cache beside the data file: a hit on the second load, a miss when the file, the spec or the tokenizer
// changes, a corrupt cache ignored and rewritten, stale caches removed, and an unwritable folder skipped silently.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { CACHE_SUFFIX, loadDataset, tokenizerFingerprint } from '../../src/data/index.js';
import type { ExampleData, StreamData } from '../../src/data/index.js';
import { CharTokenizer } from '../../src/io/tokenizer/index.js';
import { ToyTokenizer, tempDir, writeData } from './helpers.js';

function caches(dir: string): string[] {
  return readdirSync(dir).filter((f) => f.endsWith(CACHE_SUFFIX)).sort();
}

test('a stream: miss then hit with the same ids; the cache sits beside the file as <file>.<hash>.ajar-ids', (t) => {
  const dir = tempDir(t);
  const path = writeData(dir, 'input.txt', 'hello world\n'.repeat(20));
  const tok = new ToyTokenizer({ fingerprint: 'toy' }); // no probe encodes: encodeCalls counts tokenising only
  const first = loadDataset({ path }, tok) as StreamData;
  assert.deepEqual(first.cache?.hit, false);
  assert.ok(first.cache?.path !== null);
  assert.match(basename(first.cache!.path!), /^input\.txt\.[0-9a-f]{16}\.ajar-ids$/);
  assert.deepEqual(caches(dir), [basename(first.cache!.path!)]);
  const calls = tok.encodeCalls;
  const second = loadDataset({ path }, tok) as StreamData;
  assert.equal(second.cache?.hit, true);
  assert.equal(tok.encodeCalls, calls, 'a hit does not tokenise');
  assert.deepEqual(Array.from(second.ids), Array.from(first.ids));
  // no temp files left behind
  assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.tmp')), []);
});

test('examples of every task round-trip through the cache', (t) => {
  const dir = tempDir(t);
  const tok = new ToyTokenizer({ eos: true, addBos: true });
  const files = [
    { path: writeData(dir, 'c.jsonl', '{"text": "good", "label": "pos"}\n{"text": "bad", "label": "neg"}\n') },
    { path: writeData(dir, 'r.csv', 'text,label\na,1.25\nbb,-3\n'), task: 'regression' as const },
    { path: writeData(dir, 'i.jsonl', '{"prompt": "q?", "completion": "ab"}\n\n{"prompt": "", "completion": "c"}\n') },
  ];
  for (const spec of files) {
    const miss = loadDataset(spec, tok) as ExampleData;
    const hit = loadDataset(spec, tok) as ExampleData;
    assert.equal(miss.cache?.hit, false);
    assert.equal(hit.cache?.hit, true, spec.path);
    const plain = (d: ExampleData) => ({
      task: d.task,
      labels: d.labels,
      examples: d.examples.map((e) => ({ ids: Array.from(e.ids), targets: e.targets && Array.from(e.targets), label: e.label, value: e.value, line: e.line })),
    });
    assert.deepEqual(plain(hit), plain(miss), spec.path);
  }
});

test('a changed file misses and the stale cache is removed; a changed spec or tokenizer misses and both are kept', (t) => {
  const dir = tempDir(t);
  const path = writeData(dir, 'd.jsonl', '{"text": "ab", "label": "x"}\n{"text": "cd", "label": "y"}\n');
  const tok = new ToyTokenizer();
  const a = loadDataset({ path }, tok);
  writeFileSync(path, '{"text": "ab", "label": "x"}\n{"text": "ce", "label": "y"}\n');
  const b = loadDataset({ path }, tok) as ExampleData;
  assert.equal(b.cache?.hit, false);
  assert.deepEqual(Array.from(b.examples[1].ids), [2, 4]);
  assert.deepEqual(caches(dir), [basename(b.cache!.path!)], 'the cache of the old contents is gone');
  assert.notEqual(a.cache!.path, b.cache!.path);

  // another tokenizer (same kind and size, different ids): a miss, with its own ids
  const reversed = new ToyTokenizer({ reversed: true });
  const c = loadDataset({ path }, reversed) as ExampleData;
  assert.equal(c.cache?.hit, false);
  assert.notDeepEqual(Array.from(c.examples[1].ids), [2, 4]);
  // another spec over the same file: a miss
  const d = loadDataset({ path, labels: ['y', 'x'] }, tok) as ExampleData;
  assert.equal(d.cache?.hit, false);
  assert.deepEqual(d.examples.map((e) => e.label), [1, 0]);
  assert.equal(caches(dir).length, 3);
  // and each still hits
  assert.equal(loadDataset({ path }, tok).cache?.hit, true);
  assert.equal(loadDataset({ path }, reversed).cache?.hit, true);
});

test('fingerprint(): used when the tokenizer has one; char tokenizers with different vocabularies differ', (t) => {
  const dir = tempDir(t);
  const path = writeData(dir, 'input.txt', 'abc');
  assert.equal(loadDataset({ path }, new ToyTokenizer({ fingerprint: 'v1' })).cache?.hit, false);
  assert.equal(loadDataset({ path }, new ToyTokenizer({ fingerprint: 'v1' })).cache?.hit, true);
  assert.equal(loadDataset({ path }, new ToyTokenizer({ fingerprint: 'v2' })).cache?.hit, false);
  const a = CharTokenizer.fromText('abc');
  const b = CharTokenizer.fromText('abcd');
  const c = CharTokenizer.fromText('xyz');
  assert.equal(tokenizerFingerprint(a), tokenizerFingerprint(CharTokenizer.fromText('cba')));
  assert.notEqual(tokenizerFingerprint(a), tokenizerFingerprint(b));
  assert.notEqual(tokenizerFingerprint(a), tokenizerFingerprint(c));
  assert.equal(loadDataset({ path }, a).cache?.hit, false);
  assert.equal(loadDataset({ path }, b).cache?.hit, false);
  assert.equal(loadDataset({ path }, CharTokenizer.fromText('bca')).cache?.hit, true);
});

test('a corrupt or truncated cache is ignored and rewritten', (t) => {
  const dir = tempDir(t);
  const path = writeData(dir, 'input.txt', 'some text here');
  const tok = new ToyTokenizer();
  const first = loadDataset({ path }, tok) as StreamData;
  const cachePath = first.cache!.path!;
  const whole = readFileSync(cachePath);
  for (const broken of [whole.subarray(0, whole.length - 4), Buffer.from('garbage'), Buffer.alloc(0)]) {
    writeFileSync(cachePath, broken);
    const again = loadDataset({ path }, tok) as StreamData;
    assert.equal(again.cache?.hit, false);
    assert.deepEqual(Array.from(again.ids), Array.from(first.ids));
    assert.deepEqual(readFileSync(cachePath), whole, 'rewritten');
  }
  // ids outside the vocabulary (a cache from elsewhere under this name): ignored
  const evil = Buffer.from(whole);
  evil.writeInt32LE(1 << 20, evil.length - 4);
  writeFileSync(cachePath, evil);
  assert.equal(loadDataset({ path }, tok).cache?.hit, false);
});

test('cache: false neither reads nor writes', (t) => {
  const dir = tempDir(t);
  const path = writeData(dir, 'input.txt', 'abc');
  const ds = loadDataset({ path }, new ToyTokenizer(), { cache: false });
  assert.equal(ds.cache, undefined);
  assert.deepEqual(caches(dir), []);
});

test('an unwritable cache location is skipped silently, leaving nothing behind', (t) => {
  const dir = tempDir(t);
  const path = writeData(dir, 'input.txt', 'abc');
  const tok = new ToyTokenizer();
  const cachePath = loadDataset({ path }, tok).cache!.path!;
  // NOTE: a non-empty folder at the cache's name makes the rename fail; unlike chmod, this works as root too.
  rmSync(cachePath);
  mkdirSync(cachePath);
  writeFileSync(join(cachePath, 'x'), 'x');
  const ds = loadDataset({ path }, tok) as StreamData;
  assert.equal(ds.cache?.hit, false);
  assert.equal(ds.cache?.path, null);
  assert.deepEqual(Array.from(ds.ids), [0, 1, 2]);
  assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.tmp')), []);
});

test('a read-only data folder skips caching silently', { skip: process.getuid?.() === 0 ? 'root can write a read-only folder' : false }, (t) => {
  const dir = tempDir(t);
  const sub = join(dir, 'ro');
  mkdirSync(sub);
  const path = writeData(sub, 'input.txt', 'abc');
  chmodSync(sub, 0o555);
  t.after(() => chmodSync(sub, 0o755));
  const ds = loadDataset({ path }, new ToyTokenizer());
  assert.equal(ds.cache?.path, null);
  assert.deepEqual(caches(sub), []);
});
