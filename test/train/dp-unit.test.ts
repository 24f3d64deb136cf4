// --dp-unit: plain text cut into documents (each line, each blank-line-separated paragraph, each file of a folder),
// a document's windows as rows of one example, and `ajar train --dp --dp-unit` sampling documents at rate
// batch / N documents, also when training LoRA adapters.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ExampleBatcher, loadDataset, type ExampleData, type TokenizerLike } from '../../src/data/index.js';
import { runCli } from '../helpers/cli.js';
import { goldenPath } from '../helpers/golden.js';

const tmp = mkdtempSync(join(tmpdir(), 'ajar-dp-unit-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** One id per character (its code), eos 0. */
const chars: TokenizerLike = {
  kind: 'test-chars', encode: (s) => [...s].map((c) => c.charCodeAt(0)), eosTokenId: 0, bosTokenId: null, addBos: false, vocabSize: 256,
};

function docs(ds: ReturnType<typeof loadDataset>): string[] {
  assert.equal(ds.kind, 'examples');
  return (ds as ExampleData).examples.map((e) => {
    assert.equal(e.ids[e.ids.length - 1], 0, 'each document ends with eos');
    return String.fromCharCode(...e.ids.subarray(0, -1));
  });
}

describe('documents of plain text', () => {
  const text = 'one two\r\nthree\n\n  \nfour\nfive six\n\n\nseven';
  const file = join(tmp, 'text.txt');
  writeFileSync(file, text);

  it('line: every non-blank line; paragraph: runs of non-blank lines; file: the whole text', () => {
    assert.deepEqual(docs(loadDataset({ path: file, documents: 'line' }, chars, { cache: false })), ['one two', 'three', 'four', 'five six', 'seven']);
    assert.deepEqual(docs(loadDataset({ path: file, documents: 'paragraph' }, chars, { cache: false })), ['one two\nthree', 'four\nfive six', 'seven']);
    assert.deepEqual(docs(loadDataset({ path: file, documents: 'file' }, chars, { cache: false })), [text]);
    const lines = (loadDataset({ path: file, documents: 'paragraph' }, chars, { cache: false }) as ExampleData).examples.map((e) => e.line);
    assert.deepEqual(lines, [1, 5, 9]);
  });

  it('file: a folder gives one document per visible file, in name order', () => {
    const dir = join(tmp, 'folder');
    mkdirSync(dir);
    writeFileSync(join(dir, 'b.txt'), 'second');
    writeFileSync(join(dir, 'a.txt'), 'first\n\nstill first');
    writeFileSync(join(dir, '.hidden'), 'skipped');
    assert.deepEqual(docs(loadDataset({ path: dir, documents: 'file' }, chars)), ['first\n\nstill first', 'second']);
  });

  it('windows: a document of L tokens is ceil((L - 1) / T) rows, every token after the first a target once', () => {
    const ds = loadDataset({ path: file, documents: 'file' }, chars, { cache: false }) as ExampleData;
    const doc = ds.examples[0].ids;
    const T = 8;
    const b = new ExampleBatcher(ds, 1, T, 0, 0, { windows: true }).batchOf(Int32Array.of(0));
    const rows = Math.ceil((doc.length - 1) / T);
    assert.equal(b.batch, rows);
    assert.deepEqual([...b.spans!], [0, rows]);
    const targets = [...b.targets!].filter((t) => t !== -100);
    assert.deepEqual(targets, [...doc.subarray(1)]);
    for (let r = 0; r < rows; r++) assert.equal(b.ids[r * T], doc[r * T], `window ${r} starts at token ${r * T}`);
  });
});

describe('ajar train --dp --dp-unit', () => {
  const data = goldenPath('release/train.txt');
  // The reference count: paragraphs are runs of non-blank lines; 90% of them train (the split keeps floor(0.9 N)).
  const paragraphs = readFileSync(data, 'utf8').split(/\n[ \t\r]*\n/).filter((p) => p.trim() !== '').length;
  const nTrain = Math.floor(paragraphs * 0.9);

  it('LoRA on paragraphs: sampling rate batch / N paragraphs, epsilon recorded, the adapter saved', () => {
    const out = join(tmp, 'lora-dp');
    const r = runCli(['train', '--lora', '--init-from', goldenPath('gpt2-tiny'), '--data', data, '--block-size', '16', '--batch-size', '4',
      '--max-iters', '2', '--eval-interval', '2', '--eval-iters', '1', '--sample-tokens', '0', '--out', out,
      '--dp', '--dp-unit', 'paragraph', '--dp-noise-multiplier', '1', '--dp-max-grad-norm', '0.5']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout + r.stderr, new RegExp(`DP-SGD over ${nTrain} training paragraphs`));
    const privacy = JSON.parse(readFileSync(join(out, 'privacy.json'), 'utf8')) as Record<string, number>;
    assert.equal(privacy.sample_rate, 4 / nTrain);
    assert.equal(privacy.steps, 2);
    assert.ok(privacy.epsilon > 0);
    assert.ok(readFileSync(join(out, 'adapter_config.json'), 'utf8').includes('"r"'));
  });

  it('refuses plain text without a unit, a unit for JSONL records, and a unit without --dp, in one line', () => {
    const jsonl = join(tmp, 'lm.jsonl');
    writeFileSync(jsonl, '{"text": "hello there"}\n'.repeat(30));
    for (const [args, pattern] of [
      [['--data', data, '--dp', '--dp-noise-multiplier', '1'], /is plain text, which has no records: choose its documents .* with --dp-unit line, paragraph or file/],
      [['--data', jsonl, '--dp', '--dp-noise-multiplier', '1', '--dp-unit', 'line'], /each JSONL record is one document already; --dp-unit line applies to plain text only/],
      [['--data', data, '--dp-unit', 'line'], /dp-unit chooses the unit of privacy of --dp/],
      [['--data', data, '--dp', '--dp-noise-multiplier', '1', '--dp-unit', 'sentence'], /dp-unit must be one of line, paragraph, file/],
    ] as const) {
      const r = runCli(['train', ...args, '--tokenizer', 'char', '--max-iters', '1', '--out', join(tmp, 'bad')]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr.trim().split('\n').at(-1)!, pattern);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
    }
  });
});
