// The shipped review set (examples/data/sentiment, written by make_sentiment.py) loads as classification data,
// and the figures its README states (counts, majority-class baseline, longest review) hold.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { ExampleBatcher, loadTrainAndValidation } from '../../src/data/index.js';
import type { ExampleData } from '../../src/data/index.js';
import { CharTokenizer } from '../../src/io/tokenizer/index.js';

const DIR = fileURLToPath(new URL('../../../examples/data/sentiment/', import.meta.url)); // from dist/test/data
const TRAIN = join(DIR, 'train.jsonl');
const VAL = join(DIR, 'val.jsonl');

function counts(ds: ExampleData): number[] {
  const c = new Array<number>(ds.labels!.length).fill(0);
  for (const e of ds.examples) c[e.label!]++;
  return c;
}

test('sentiment: loads as classification with the README\'s counts and majority baseline', () => {
  const tok = CharTokenizer.fromText(readFileSync(TRAIN, 'utf8') + readFileSync(VAL, 'utf8'));
  // cache: false, so that running the tests writes nothing into the repository
  const { train, val } = loadTrainAndValidation({ path: TRAIN }, tok, { val: { path: VAL }, cache: false });
  const tr = train as ExampleData;
  const va = val as ExampleData;
  assert.equal(tr.task, 'classification');
  assert.deepEqual(tr.labels, ['negative', 'neutral', 'positive']);
  assert.deepEqual(counts(tr), [408, 294, 498]);
  assert.deepEqual(counts(va), [102, 74, 124]);

  const readme = readFileSync(join(DIR, 'README.md'), 'utf8');
  const stated = /Majority-class baseline on val: (\d\.\d{4})/.exec(readme);
  assert.ok(stated, 'README states the baseline');
  const majority = counts(tr).indexOf(Math.max(...counts(tr)));
  assert.equal((counts(va)[majority] / va.examples.length).toFixed(4), stated[1]);
  assert.match(readme, /longest review is 112 characters/);
  assert.equal(Math.max(...[...tr.examples, ...va.examples].map((e) => e.ids.length)), 112);

  // no review in both files
  const key = (e: { ids: Int32Array }) => Array.from(e.ids).join(',');
  const trainTexts = new Set(tr.examples.map(key));
  assert.equal(trainTexts.size, tr.examples.length);
  assert.ok(va.examples.every((e) => !trainTexts.has(key(e))));

  // block 128 holds every review whole
  for (const b of new ExampleBatcher(va, 64, 128, 0, 0).batches()) {
    for (let r = 0; r < b.batch; r++) assert.equal(b.lengths[r], va.examples[b.indices[r]].ids.length);
  }
});
