// Bad data and bad configurations give AjarErrors that name the file, the line, and what to do.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ExampleBatcher, StreamBatcher, checkBlockSize, loadDataset, loadTrainAndValidation, splitValidation } from '../../src/data/index.js';
import type { DataSpec, ExampleData, StreamData } from '../../src/data/index.js';
import { Rng } from '../../src/tensor/random.js';
import { ToyTokenizer, assertDataError, tempDir, writeData } from './helpers.js';

const tok = new ToyTokenizer({ eos: true });
const load = (spec: DataSpec) => loadDataset(spec, tok, { cache: false });

test('a missing file, a folder', (t) => {
  const dir = tempDir(t);
  assertDataError(() => load({ path: join(dir, 'nope.txt') }), 'bad_data', /data file not found: .*nope\.txt/);
  mkdirSync(join(dir, 'sub'));
  assertDataError(() => load({ path: join(dir, 'sub') }), 'bad_data', /is not a file/);
});

test('empty files of each format, whitespace-only text, blank-only JSONL, header-only CSV', (t) => {
  const dir = tempDir(t);
  for (const name of ['e.txt', 'e.jsonl', 'e.csv']) {
    assertDataError(() => load({ path: writeData(dir, name, '') }), 'bad_data', new RegExp(`${name.replace('.', '\\.')} is empty`));
  }
  assertDataError(() => load({ path: writeData(dir, 'w.txt', ' \n\t\n') }), 'bad_data', /w\.txt holds only whitespace/);
  assertDataError(() => load({ path: writeData(dir, 'b.jsonl', '\n  \n') }), 'bad_data', /b\.jsonl has no records/);
  assertDataError(() => load({ path: writeData(dir, 'h.csv', 'text,label\n') }), 'bad_data', /h\.csv has a header \(text, label\) but no rows/);
});

test('not UTF-8', (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'bin.txt');
  writeFileSync(path, Buffer.from([0x61, 0xff, 0xfe, 0x00]));
  assertDataError(() => load({ path }), 'bad_data', /bin\.txt is not valid UTF-8/);
});

test('invalid JSON on line N; a line that is not an object; a .json file', (t) => {
  const dir = tempDir(t);
  const bad = writeData(dir, 'bad.jsonl', '{"text": "a"}\n\n{"text": "b",}\n');
  assertDataError(() => load({ path: bad }), 'bad_data', /bad\.jsonl:3: invalid JSON/, /one JSON object/);
  const arr = writeData(dir, 'arr.jsonl', '{"text": "a"}\n["b"]\n');
  assertDataError(() => load({ path: arr }), 'bad_data', /arr\.jsonl:2: expected a JSON object.*got an array/);
  const json = writeData(dir, 'data.json', '[{"text": "a"}]');
  assertDataError(() => load({ path: json }), 'bad_data', /data\.json: a \.json file.*\.jsonl/);
});

test('a missing field names it and lists the fields present', (t) => {
  const dir = tempDir(t);
  const path = writeData(dir, 'm.jsonl', '{"text": "a", "label": "x"}\n{"txt": "b", "label": "y"}\n');
  assertDataError(() => load({ path }), 'bad_data', /m\.jsonl:2: missing field "text" \(this record has: txt, label\)/, /--text-field/);
  const noLabel = writeData(dir, 'l.jsonl', '{"text": "a", "label": "x"}\n{"text": "b"}\n');
  assertDataError(() => load({ path: noLabel }), 'bad_data', /l\.jsonl:2: missing field "label" \(this record has: text\)/);
  const noCompletion = writeData(dir, 'i.jsonl', '{"prompt": "a", "completion": "x"}\n{"prompt": "b", "answer": "y"}\n');
  assertDataError(() => load({ path: noCompletion }), 'bad_data', /i\.jsonl:2: missing field "completion" \(this record has: prompt, answer\)/);
  const unknown = writeData(dir, 'u.jsonl', '{"body": "a"}\n');
  assertDataError(() => load({ path: unknown }), 'bad_data', /u\.jsonl:1: cannot tell the task from the fields \(body\)/);
  const wrongType = writeData(dir, 'n.jsonl', '{"text": 5}\n');
  assertDataError(() => load({ path: wrongType }), 'bad_data', /n\.jsonl:1: field "text" must be a string, got a number/);
});

test('a CSV header missing the column; a ragged row; an unclosed quote', (t) => {
  const dir = tempDir(t);
  const path = writeData(dir, 'c.csv', 'review,label\ngood,pos\n');
  assertDataError(() => load({ path, task: 'classification' }), 'bad_data', /c\.csv:1: the header has no column "text" \(columns: review, label\)/, /textField/);
  assertDataError(() => load({ path }), 'bad_data', /c\.csv:1: cannot tell the task from the columns \(review, label\)/);
  const ragged = writeData(dir, 'r.csv', 'text,label\na,x\nb,y,z\n');
  assertDataError(() => load({ path: ragged }), 'bad_data', /r\.csv:3: invalid CSV/);
  const quote = writeData(dir, 'q.csv', 'text,label\n"a,x\n');
  assertDataError(() => load({ path: quote }), 'bad_data', /q\.csv:\d+: invalid CSV/);
  const dup = writeData(dir, 'd.csv', 'text,text\na,b\n');
  assertDataError(() => load({ path: dup }), 'bad_data', /d\.csv:1: the header names column "text" twice/);
});

test('a label outside the label set names file:line and the set; one class only; empty and odd labels', (t) => {
  const dir = tempDir(t);
  const val = writeData(dir, 'val.jsonl', '{"text": "a", "label": "pos"}\n{"text": "b", "label": "meh"}\n');
  assertDataError(() => load({ path: val, labels: ['neg', 'pos'] }), 'bad_data', /val\.jsonl:2: label "meh" is not in the label set \("neg", "pos"\)/);
  const one = writeData(dir, 'one.jsonl', '{"text": "a", "label": "pos"}\n{"text": "b", "label": "pos"}\n');
  assertDataError(() => load({ path: one }), 'bad_data', /one\.jsonl: every record has the label "pos"; classification needs at least two classes/);
  const empty = writeData(dir, 'e.jsonl', '{"text": "a", "label": "pos"}\n{"text": "b", "label": " "}\n');
  assertDataError(() => load({ path: empty }), 'bad_data', /e\.jsonl:2: field "label" is empty/);
  const obj = writeData(dir, 'o.jsonl', '{"text": "a", "label": {"x": 1}}\n');
  assertDataError(() => load({ path: obj }), 'bad_data', /o\.jsonl:1: field "label" must be a string or a number/);
});

test('a validation file with a label the training data lacks (loadTrainAndValidation)', (t) => {
  const dir = tempDir(t);
  const train = writeData(dir, 'train.jsonl', '{"text": "a", "label": "neg"}\n{"text": "b", "label": "pos"}\n');
  const val = writeData(dir, 'val.jsonl', '{"text": "a", "label": "pos"}\n\n{"text": "c", "label": "neutral"}\n');
  assertDataError(() => loadTrainAndValidation({ path: train }, tok, { val: { path: val }, cache: false }), 'bad_data', /val\.jsonl:3: label "neutral" is not in the label set/);
});

test('a non-numeric regression value', (t) => {
  const dir = tempDir(t);
  const path = writeData(dir, 'r.csv', 'text,label\na,1.5\nb,high\n');
  assertDataError(() => load({ path, task: 'regression' }), 'bad_data', /r\.csv:3: column "label" is "high", not a number/);
  const jsonl = writeData(dir, 'r.jsonl', '{"text": "a", "label": null}\n');
  assertDataError(() => load({ path: jsonl, task: 'regression' }), 'bad_data', /r\.jsonl:1: field "label" is null, not a number/);
});

test('text that tokenises to nothing; a completion with nothing to learn; a tokenizer error gets file:line', (t) => {
  const dir = tempDir(t);
  const lm = writeData(dir, 'lm.jsonl', '{"text": "a"}\n{"text": ""}\n');
  assertDataError(() => load({ path: lm }), 'bad_data', /lm\.jsonl:2: field "text" is empty/);
  const cls = writeData(dir, 'c.csv', 'text,label\na,x\n"",y\n');
  assertDataError(() => load({ path: cls }), 'bad_data', /c\.csv:3: column "text" is empty/);
  const ins = writeData(dir, 'i.jsonl', '{"prompt": "q", "completion": ""}\n');
  assertDataError(() => loadDataset({ path: ins }, new ToyTokenizer(), { cache: false }), 'bad_data', /i\.jsonl:1: nothing to learn: the field "completion" is empty and the tokenizer has no eos/);
  const oneTok = writeData(dir, 'o.jsonl', '{"prompt": "", "completion": "a"}\n');
  assertDataError(() => loadDataset({ path: oneTok }, new ToyTokenizer(), { cache: false }), 'bad_data', /o\.jsonl:1: nothing to learn: the prompt is empty/);
  const unknownChar = writeData(dir, 'x.jsonl', '{"text": "ok"}\n{"text": "ÅNGSTRÖM"}\n');
  assertDataError(() => load({ path: unknownChar }), 'bad_text', /x\.jsonl:2: character "Å" is not in the vocabulary/);
});

test('plain text for a task other than lm; bad spec values', (t) => {
  const dir = tempDir(t);
  const path = writeData(dir, 'a.txt', 'abc');
  assertDataError(() => load({ path, task: 'classification' }), 'bad_config', /a\.txt is plain text.*JSONL or CSV file with the fields text, label/);
  assertDataError(() => load({ path, task: 'translate' as never }), 'bad_config', /unknown task "translate"/);
  assertDataError(() => load({ path, format: 'xml' as never }), 'bad_config', /unknown data format "xml"/);
  assertDataError(() => load({ path, textField: '' }), 'bad_config', /textField/);
  assertDataError(() => load({ path, labels: ['a', 'a'] }), 'bad_config', /name "a" twice/);
  assertDataError(() => load({ path, labels: ['a'] }), 'bad_config', /at least two classes/);
});

test('batchers: too little data for the block size says how many tokens there are; bad sizes; prompts that fill the block', () => {
  const data: StreamData = { kind: 'stream', task: 'lm', ids: new Int32Array(8), source: 'input.txt' };
  assertDataError(() => new StreamBatcher(data, 2, 8, new Rng(1)), 'bad_data', /input\.txt has 8 tokens; a block size of 8 needs at least 9/);
  assertDataError(() => new StreamBatcher(data, 0, 4, new Rng(1)), 'bad_config', /batch size must be a positive integer, got 0/);
  assertDataError(() => new StreamBatcher(data, 2, 2.5, new Rng(1)), 'bad_config', /block size must be a positive integer/);
  assertDataError(() => checkBlockSize(2048, 1024), 'bad_config', /block size 2048 is above the model's context length 1024/);
  checkBlockSize(1024, 1024);
  const ins: ExampleData = {
    kind: 'examples', task: 'instruct', source: 'sft.jsonl',
    examples: [
      { ids: Int32Array.from([1, 2, 3, 4]), targets: Int32Array.from([-100, -100, 4, -100]), line: 7 },
      { ids: Int32Array.from([1, 2, 3, 4]), targets: Int32Array.from([-100, -100, 4, -100]), line: 9 },
    ],
  };
  assertDataError(() => new ExampleBatcher(ins, 2, 2, 0, 1), 'bad_data', /sft\.jsonl:7: the prompt is 3 tokens, so a block size of 2 keeps no completion token \(2 examples are like this\)/);
  new ExampleBatcher(ins, 2, 3, 0, 1); // position 2 predicts token 4: fits
  assertDataError(() => new ExampleBatcher({ ...ins, examples: [] }, 2, 3, 0, 1), 'bad_data', /sft\.jsonl has no examples/);
  const b = new ExampleBatcher(ins, 2, 3, 0, 1);
  assertDataError(() => b.setState({ epoch: 0, cursor: 2 }), 'bad_checkpoint', /does not fit sft\.jsonl \(2 examples\)/);
});

test('validation fractions out of range, and data too small to split', () => {
  const data: StreamData = { kind: 'stream', task: 'lm', ids: new Int32Array(5), source: 'tiny.txt' };
  for (const f of [0, 1, -0.1, 1.5, Number.NaN]) {
    assertDataError(() => splitValidation(data, f, 0), 'bad_config', /validation fraction must be between 0 and 1/);
  }
  assertDataError(() => splitValidation(data, 0.99, 0), 'bad_data', /tiny\.txt has 5 tokens, too few to split 99% off/);
  const one: ExampleData = { kind: 'examples', task: 'regression', source: 'one.jsonl', examples: [{ ids: Int32Array.from([1]), value: 1 }] };
  assertDataError(() => splitValidation(one, 0.1, 0), 'bad_data', /one\.jsonl has 1 examples, too few to split 10% off/);
});

test('an unreadable data file is an error, not a crash', { skip: process.getuid?.() === 0 ? 'root reads any file' : false }, (t) => {
  const dir = tempDir(t);
  const path = writeData(dir, 'secret.txt', 'abc');
  chmodSync(path, 0o000);
  assertDataError(() => load({ path }), 'bad_data', /cannot read .*secret\.txt/);
  assert.ok(true);
});
