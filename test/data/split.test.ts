// Validation splits: a stream is cut nanoGPT's way (train = data[:int(n*0.9)], val = data[int(n*0.9):]); examples
// are drawn by a seeded shuffle with nVal = n - floor(n * (1 - f)); a separate file takes the training labels.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadTrainAndValidation, splitValidation } from '../../src/data/index.js';
import type { ExampleData, StreamData } from '../../src/data/index.js';
import { ToyTokenizer, tempDir, toyIds, writeData } from './helpers.js';

function stream(n: number): StreamData {
  return { kind: 'stream', task: 'lm', ids: Int32Array.from({ length: n }, (_, i) => i), source: 'input.txt' };
}

test('stream: first 90% / last 10% of the tokens, exact counts', () => {
  // Python: n = 1003; int(n * 0.9) = 902 (train 0..901, val 902..1002: 101 tokens)
  const { train, val } = splitValidation(stream(1003), 0.1, 0);
  assert.equal(train.kind, 'stream');
  const t = train as StreamData;
  const v = val as StreamData;
  assert.equal(t.ids.length, 902);
  assert.equal(v.ids.length, 101);
  assert.equal(t.ids[0], 0);
  assert.equal(t.ids[901], 901);
  assert.equal(v.ids[0], 902);
  assert.equal(v.ids[100], 1002);
  assert.match(v.source, /input\.txt \[validation 10%\]/);
  assert.match(t.source, /input\.txt \[train 90%\]/);
  // the seed does not matter for a stream
  assert.deepEqual(splitValidation(stream(1003), 0.1, 7), splitValidation(stream(1003), 0.1, 0));
  // Python: int(1000 * (1 - 0.25)) = 750
  assert.equal((splitValidation(stream(1000), 0.25, 0).val as StreamData).ids.length, 250);
});

function examples(n: number): ExampleData {
  return {
    kind: 'examples', task: 'classification', labels: ['a', 'b'], source: 'c.jsonl',
    examples: Array.from({ length: n }, (_, i) => ({ ids: Int32Array.from([i]), label: i % 2, line: i + 1 })),
  };
}

test('examples: a seeded draw, exact counts, disjoint and complete, each part in file order', () => {
  const { train, val } = splitValidation(examples(57), 0.1, 3);
  const tr = train as ExampleData;
  const va = val as ExampleData;
  assert.equal(tr.examples.length, 51); // floor(57 * 0.9) = floor(51.3)
  assert.equal(va.examples.length, 6);
  const tIds = tr.examples.map((e) => e.ids[0]);
  const vIds = va.examples.map((e) => e.ids[0]);
  assert.deepEqual([...tIds, ...vIds].sort((a, b) => a - b), Array.from({ length: 57 }, (_, i) => i));
  assert.deepEqual(tIds, [...tIds].sort((a, b) => a - b));
  assert.deepEqual(vIds, [...vIds].sort((a, b) => a - b));
  assert.deepEqual(va.labels, ['a', 'b']);
  assert.equal(va.task, 'classification');
  // deterministic per seed; another seed draws another set; not simply the last 10% of the file
  assert.deepEqual((splitValidation(examples(57), 0.1, 3).val as ExampleData).examples.map((e) => e.ids[0]), vIds);
  assert.notDeepEqual((splitValidation(examples(57), 0.1, 4).val as ExampleData).examples.map((e) => e.ids[0]), vIds);
  assert.notDeepEqual(vIds, [51, 52, 53, 54, 55, 56]);
});

test('loadTrainAndValidation: a separate file takes the training task, fields and label ids; a fraction splits; none', (t) => {
  const dir = tempDir(t);
  const tok = new ToyTokenizer();
  const train = writeData(dir, 'train.csv', 'review,y\nab,pos\ncd,neg\nef,pos\n');
  const val = writeData(dir, 'val.csv', 'review,y\ngh,pos\n');
  const spec = { path: train, textField: 'review', labelField: 'y' };
  const both = loadTrainAndValidation(spec, tok, { val: { path: val }, cache: false });
  const v = both.val as ExampleData;
  assert.deepEqual(v.labels, ['neg', 'pos']);
  assert.deepEqual(v.examples.map((e) => e.label), [1]); // "pos" is id 1 in the training set, though val has one class
  assert.deepEqual(Array.from(v.examples[0].ids), toyIds('gh'));

  const lm = writeData(dir, 'input.txt', 'abcdefghij');
  const split = loadTrainAndValidation({ path: lm }, tok, { valFraction: 0.1, cache: false });
  assert.equal((split.train as StreamData).ids.length, 9);
  assert.equal((split.val as StreamData).ids.length, 1);
  assert.equal(loadTrainAndValidation({ path: lm }, tok, { cache: false }).val, null);
});
