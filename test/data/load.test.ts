// loadDataset on small temp files: plain text, JSONL and CSV for each task, with the ids written out by hand
// from the toy tokenizer (one id per character; bos 42, eos 43).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IGNORE_INDEX, loadDataset, sortedLabels } from '../../src/data/index.js';
import type { ExampleData, StreamData } from '../../src/data/index.js';
import { CharTokenizer } from '../../src/io/tokenizer/index.js';
import { ToyTokenizer, tempDir, toyIds, writeData } from './helpers.js';

const BOS = 42;
const EOS = 43;

function stream(ds: ReturnType<typeof loadDataset>): StreamData {
  assert.equal(ds.kind, 'stream');
  return ds as StreamData;
}

function examples(ds: ReturnType<typeof loadDataset>): ExampleData {
  assert.equal(ds.kind, 'examples');
  return ds as ExampleData;
}

test('plain text is one text: no eos, bos first only when the tokenizer adds it, a BOM dropped', (t) => {
  const dir = tempDir(t);
  const path = writeData(dir, 'input.txt', '\ufeffhello world.\nbye\n');
  const plain = stream(loadDataset({ path }, new ToyTokenizer({ eos: true }), { cache: false }));
  assert.equal(plain.task, 'lm');
  assert.deepEqual(Array.from(plain.ids), toyIds('hello world.\nbye\n'));
  const withBos = stream(loadDataset({ path }, new ToyTokenizer({ eos: true, addBos: true }), { cache: false }));
  assert.deepEqual(Array.from(withBos.ids), [BOS, ...toyIds('hello world.\nbye\n')]);
  // bos known but addBos false: not added
  const noAdd = stream(loadDataset({ path }, new ToyTokenizer({ bos: true }), { cache: false }));
  assert.deepEqual(Array.from(noAdd.ids), toyIds('hello world.\nbye\n'));
});

test('plain text with a real char tokenizer (nanoGPT shakespeare_char style)', (t) => {
  const dir = tempDir(t);
  const text = 'First Citizen:\nBefore we proceed any further, hear me speak.\n';
  const path = writeData(dir, 'input.txt', text);
  const tok = CharTokenizer.fromText(text);
  const ds = stream(loadDataset({ path }, tok, { cache: false }));
  assert.deepEqual(Array.from(ds.ids), tok.encode(text));
});

test('JSONL {"text"}: each record followed by eos, joined into one stream; blank lines skipped; CRLF accepted', (t) => {
  const dir = tempDir(t);
  const path = writeData(dir, 'd.jsonl', '{"text": "ab"}\r\n\n{"text": "c d", "meta": 1}\n');
  const ds = stream(loadDataset({ path }, new ToyTokenizer({ eos: true }), { cache: false }));
  assert.deepEqual(Array.from(ds.ids), [...toyIds('ab'), EOS, ...toyIds('c d'), EOS]);
  const noEos = stream(loadDataset({ path }, new ToyTokenizer(), { cache: false }));
  assert.deepEqual(Array.from(noEos.ids), toyIds('abc d'));
  const bos = stream(loadDataset({ path }, new ToyTokenizer({ eos: true, addBos: true }), { cache: false }));
  assert.deepEqual(Array.from(bos.ids), [BOS, ...toyIds('ab'), EOS, BOS, ...toyIds('c d'), EOS]);
});

test('the format comes from the extension (.jsonl, .json-lines, .ndjson, .csv; else text) unless given', (t) => {
  const dir = tempDir(t);
  const body = '{"text": "ab"}\n';
  for (const name of ['a.jsonl', 'a.json-lines', 'a.ndjson', 'a.JSONL']) {
    const ds = stream(loadDataset({ path: writeData(dir, name, body) }, new ToyTokenizer(), { cache: false }));
    assert.deepEqual(Array.from(ds.ids), toyIds('ab'), name);
  }
  const asText = writeData(dir, 'notes.md', 'ab');
  assert.deepEqual(Array.from(stream(loadDataset({ path: asText }, new ToyTokenizer(), { cache: false })).ids), toyIds('ab'));
  const jsonAsTxt = writeData(dir, 'records.txt', '{"text": "ab"}\n');
  const ds = stream(loadDataset({ path: jsonAsTxt, format: 'jsonl' }, new ToyTokenizer(), { cache: false }));
  assert.deepEqual(Array.from(ds.ids), toyIds('ab'));
});

test('JSONL {"text","label"} infers classification; labels are sorted, ids index them', (t) => {
  const dir = tempDir(t);
  const path = writeData(dir, 'c.jsonl', [
    '{"text": "good", "label": "positive"}',
    '{"text": "bad", "label": "negative"}',
    '{"text": "ok", "label": "neutral"}',
    '{"text": "great", "label": "positive"}',
  ].join('\n'));
  const ds = examples(loadDataset({ path }, new ToyTokenizer({ eos: true }), { cache: false }));
  assert.equal(ds.task, 'classification');
  assert.deepEqual(ds.labels, ['negative', 'neutral', 'positive']);
  assert.deepEqual(ds.examples.map((e) => e.label), [2, 0, 1, 2]);
  // no eos on classification texts: the model reads the last token of the text itself
  assert.deepEqual(Array.from(ds.examples[1].ids), toyIds('bad'));
  assert.deepEqual(ds.examples.map((e) => e.line), [1, 2, 3, 4]);
  // a given label set fixes the order
  const given = examples(loadDataset({ path, labels: ['positive', 'negative', 'neutral'] }, new ToyTokenizer(), { cache: false }));
  assert.deepEqual(given.examples.map((e) => e.label), [0, 1, 2, 0]);
  assert.deepEqual(given.labels, ['positive', 'negative', 'neutral']);
});

test('numeric labels: classes sorted numerically; JSON numbers and strings agree', (t) => {
  assert.deepEqual(sortedLabels(['10', '2', '1', '2']), ['1', '2', '10']);
  assert.deepEqual(sortedLabels(['b', 'a', 'B']), ['B', 'a', 'b']);
  const dir = tempDir(t);
  const path = writeData(dir, 'n.jsonl', '{"text": "a", "label": 10}\n{"text": "b", "label": 2}\n{"text": "c", "label": "2"}\n');
  const ds = examples(loadDataset({ path }, new ToyTokenizer(), { cache: false }));
  assert.deepEqual(ds.labels, ['2', '10']);
  assert.deepEqual(ds.examples.map((e) => e.label), [1, 0, 0]);
});

test('regression: task given, numeric labels (numbers or numeric strings) become values', (t) => {
  const dir = tempDir(t);
  const path = writeData(dir, 'r.jsonl', '{"text": "a", "label": 0.5}\n{"text": "bb", "label": "-2e1"}\n');
  const ds = examples(loadDataset({ path, task: 'regression' }, new ToyTokenizer(), { cache: false }));
  assert.equal(ds.task, 'regression');
  assert.equal(ds.labels, undefined);
  assert.deepEqual(ds.examples.map((e) => e.value), [0.5, -20]);
  assert.deepEqual(Array.from(ds.examples[1].ids), toyIds('bb'));
});

test('instruct: ids = prompt ++ completion ++ eos; targets only where the next token is in the completion', (t) => {
  const dir = tempDir(t);
  const path = writeData(dir, 'i.jsonl', '{"prompt": "q?", "completion": "ab"}\n');
  const ds = examples(loadDataset({ path }, new ToyTokenizer({ eos: true }), { cache: false }));
  assert.equal(ds.task, 'instruct');
  const [q, mark, a, b] = toyIds('q?ab');
  const ex = ds.examples[0];
  assert.deepEqual(Array.from(ex.ids), [q, mark, a, b, EOS]);
  // position:        0 (q)         1 (?) -> a   2 (a) -> b   3 (b) -> eos   4 (eos): nothing follows
  assert.deepEqual(Array.from(ex.targets!), [IGNORE_INDEX, a, b, EOS, IGNORE_INDEX]);

  const withBos = examples(loadDataset({ path }, new ToyTokenizer({ eos: true, addBos: true }), { cache: false })).examples[0];
  assert.deepEqual(Array.from(withBos.ids), [BOS, q, mark, a, b, EOS]);
  assert.deepEqual(Array.from(withBos.targets!), [IGNORE_INDEX, IGNORE_INDEX, a, b, EOS, IGNORE_INDEX]);

  const noEos = examples(loadDataset({ path }, new ToyTokenizer(), { cache: false })).examples[0];
  assert.deepEqual(Array.from(noEos.ids), [q, mark, a, b]);
  assert.deepEqual(Array.from(noEos.targets!), [IGNORE_INDEX, a, b, IGNORE_INDEX]);
});

test('instruct with an empty prompt: the first completion token has no predicting position', (t) => {
  const dir = tempDir(t);
  const path = writeData(dir, 'i.jsonl', '{"prompt": "", "completion": "ab"}\n');
  const ex = examples(loadDataset({ path }, new ToyTokenizer({ eos: true }), { cache: false })).examples[0];
  const [a, b] = toyIds('ab');
  assert.deepEqual(Array.from(ex.ids), [a, b, EOS]);
  assert.deepEqual(Array.from(ex.targets!), [b, EOS, IGNORE_INDEX]);
});

test('CSV with named columns: quoting, embedded newlines and commas; line numbers are where rows start', (t) => {
  const dir = tempDir(t);
  const path = writeData(dir, 'c.csv', 'id,text,label\n1,"a, b",pos\n\n2,"two\nlines",neg\n3,c,pos\n');
  const ds = examples(loadDataset({ path }, new ToyTokenizer(), { cache: false }));
  assert.equal(ds.task, 'classification');
  assert.deepEqual(ds.labels, ['neg', 'pos']);
  assert.deepEqual(ds.examples.map((e) => e.label), [1, 0, 1]);
  assert.deepEqual(Array.from(ds.examples[0].ids), toyIds('a, b'));
  assert.deepEqual(Array.from(ds.examples[1].ids), toyIds('two\nlines'));
  assert.deepEqual(ds.examples.map((e) => e.line), [2, 4, 6]);
});

test('CSV: lm from a text column, instruct from prompt/completion, renamed columns, regression', (t) => {
  const dir = tempDir(t);
  const lm = stream(loadDataset({ path: writeData(dir, 'lm.csv', 'text\nab\ncd\n') }, new ToyTokenizer({ eos: true }), { cache: false }));
  assert.deepEqual(Array.from(lm.ids), [...toyIds('ab'), EOS, ...toyIds('cd'), EOS]);
  const ins = examples(loadDataset({ path: writeData(dir, 'i.csv', 'prompt,completion\nq,a\n') }, new ToyTokenizer({ eos: true }), { cache: false }));
  assert.equal(ins.task, 'instruct');
  assert.deepEqual(Array.from(ins.examples[0].targets!), [toyIds('a')[0], EOS, IGNORE_INDEX]);
  const renamed = examples(loadDataset(
    { path: writeData(dir, 'r.csv', 'review,stars\ngood,5\nbad,1.5\n'), textField: 'review', labelField: 'stars', task: 'regression' },
    new ToyTokenizer(), { cache: false },
  ));
  assert.deepEqual(renamed.examples.map((e) => e.value), [5, 1.5]);
});

test('the task given overrides inference: {"text","label"} read as lm ignores the label', (t) => {
  const dir = tempDir(t);
  const path = writeData(dir, 'c.jsonl', '{"text": "ab", "label": "x"}\n');
  const ds = stream(loadDataset({ path, task: 'lm' }, new ToyTokenizer(), { cache: false }));
  assert.deepEqual(Array.from(ds.ids), toyIds('ab'));
});

test('progress is reported while tokenising, ending at total', (t) => {
  const dir = tempDir(t);
  const lines = Array.from({ length: 50 }, (_, i) => JSON.stringify({ text: `r${i}`, label: i % 2 === 0 ? 'a' : 'b' }));
  const path = writeData(dir, 'p.jsonl', lines.join('\n'));
  const seen: Array<[number, number]> = [];
  loadDataset({ path }, new ToyTokenizer(), { cache: false, onProgress: (d, n) => seen.push([d, n]) });
  assert.ok(seen.length >= 1);
  assert.deepEqual(seen[seen.length - 1], [50, 50]);
  for (let i = 1; i < seen.length; i++) assert.ok(seen[i][0] > seen[i - 1][0]);
  const text = writeData(dir, 't.txt', 'abc');
  const textSeen: Array<[number, number]> = [];
  loadDataset({ path: text }, new ToyTokenizer(), { cache: false, onProgress: (d, n) => textSeen.push([d, n]) });
  assert.deepEqual(textSeen[textSeen.length - 1], [3, 3]);
});
