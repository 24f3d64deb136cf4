// ajar eval on a sequence classifier: the report's parts agree with each other and with a direct
// evaluation, and a label the model does not know is a clear error.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { runCli } from '../helpers/cli.js';

const tmp = mkdtempSync(join(tmpdir(), 'ajar-evalcls-'));
const lines = readFileSync(new URL('../../../examples/data/sentiment/val.jsonl', import.meta.url), 'utf8').trim().split('\n');
const train = join(tmp, 'train.jsonl');
const val = join(tmp, 'val.jsonl');
writeFileSync(train, `${lines.slice(0, 120).join('\n')}\n`);
writeFileSync(val, `${lines.slice(120, 180).join('\n')}\n`);

it('trains a tiny classifier and evaluates it with accuracy, per-class F1 and the confusion matrix', () => {
  const out = join(tmp, 'model');
  const t = runCli(['train', '--data', train, '--val-data', val, '--task', 'classification', '--n-layer', '1', '--n-head', '2',
    '--n-embd', '16', '--block-size', '128', '--batch-size', '8', '--max-iters', '6', '--eval-interval', '3',
    '--sample-tokens', '0', '--keep-best', 'false', '--out', out, '--json']);
  assert.equal(t.code, 0, t.stderr);
  const summary = JSON.parse(t.stdout) as { metrics: { accuracy: number } };
  const r = runCli(['eval', '--model', out, '--data', val, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const rep = JSON.parse(r.stdout) as {
    task: string; accuracy: number; macro_f1: number; examples: number; confusion: number[][];
    per_class: { label: string; precision: number; recall: number; f1: number; support: number }[];
  };
  assert.equal(rep.task, 'classification');
  assert.equal(rep.examples, 60);
  assert.deepEqual(rep.per_class.map((m) => m.label), ['negative', 'neutral', 'positive']);
  const total = rep.confusion.flat().reduce((a, b) => a + b, 0);
  assert.equal(total, 60);
  const trace = rep.confusion.reduce((s, row, i) => s + row[i], 0);
  assert.equal(rep.accuracy, trace / 60);
  rep.per_class.forEach((m, i) => assert.equal(m.support, rep.confusion[i].reduce((a, b) => a + b, 0)));
  assert.ok(Math.abs(rep.macro_f1 - rep.per_class.reduce((s, m) => s + m.f1, 0) / 3) < 1e-12 || rep.per_class.some((m) => m.support === 0));
  // The trainer's final validation metrics come from the same model and data.
  assert.equal(summary.metrics.accuracy, rep.accuracy);
  const text = runCli(['eval', '--model', out, '--data', val]);
  assert.match(text.stdout, /accuracy .*macro-F1/);
  assert.match(text.stdout, /confusion/);
});

it('refuses a label outside the model\'s label set', () => {
  const bad = join(tmp, 'bad.jsonl');
  writeFileSync(bad, '{"text": "fine", "label": "sarcastic"}\n');
  const r = runCli(['eval', '--model', join(tmp, 'model'), '--data', bad]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /sarcastic/);
});
