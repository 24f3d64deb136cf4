// `ajar train --canaries` and `ajar audit --model` from the command line: where the canaries are kept, what the training
// data gets, the audit's --record, and `ajar release open`'s exposure gate (refusal, --max-exposure, --accept-risk).
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { parseCanaryFormat, plantCanaries, drawCanaries } from '../../src/data/index.js';
import type { ExampleData, StreamData, TokenizerLike } from '../../src/data/index.js';
import { runCli } from '../helpers/cli.js';
import { goldenPath } from '../helpers/golden.js';

const golden = (f: string): string => goldenPath(`privacy/${f}`);

/** A character tokenizer over a fixed alphabet, no special tokens (as ajar's char tokenizer). */
function charTok(alphabet: string): TokenizerLike {
  return {
    kind: 'char', eosTokenId: null, bosTokenId: null, addBos: false, vocabSize: alphabet.length,
    encode: (text) => [...text].map((c) => alphabet.indexOf(c)),
  };
}

describe('canaries in the training data', () => {
  it('formats: |R|, the text before the secret, and clear refusals', () => {
    const f = parseCanaryFormat('my PIN is {digits:6}');
    assert.equal(f.spaceSize, 1e6);
    assert.equal(f.prefix, 'my PIN is ');
    assert.equal(parseCanaryFormat('{letters:2}-{digits:1}').spaceSize, 26 * 26 * 10);
    assert.throws(() => parseCanaryFormat('no secret here'), /no placeholder/);
    assert.throws(() => parseCanaryFormat('x {hex:4}'), /unknown placeholder/);
    const drawn = drawCanaries(f, 5, 1337);
    assert.equal(new Set(drawn).size, 5);
    assert.ok(drawn.every((t) => /^my PIN is \d{6}$/.test(t)));
    assert.deepEqual(drawCanaries(f, 5, 1337), drawn, 'the same seed draws the same canaries');
  });

  it('a token stream gets each copy at a record boundary; instruction data gets prompt + completion examples', () => {
    const alphabet = '\nabcdefghijklmnopqrstuvwxyz 0123456789';
    const tok = charTok(alphabet);
    const text = 'first line\nsecond line\nthird\n';
    const stream: StreamData = { kind: 'stream', task: 'lm', ids: Int32Array.from(tok.encode(text)), source: 'mem' };
    const format = parseCanaryFormat('pin {digits:2}');
    const planted = plantCanaries(stream, format, ['pin 42'], 3, tok, 7) as StreamData;
    const back = [...planted.ids].map((i) => alphabet[i]).join('');
    assert.equal(back.split('pin 42\n').length - 1, 3, back);
    // Removing the copies gives the text back: nothing was cut in the middle of a line.
    assert.equal(back.split('pin 42\n').join(''), text);
    assert.ok(back.split('\n').every((l) => l === '' || ['first line', 'second line', 'third', 'pin 42'].includes(l)), back);

    const ex: ExampleData = { kind: 'examples', task: 'instruct', examples: [], source: 'mem' };
    const plantedEx = plantCanaries(ex, format, ['pin 42'], 2, tok, 7) as ExampleData;
    assert.equal(plantedEx.examples.length, 2);
    const e = plantedEx.examples[0];
    assert.equal([...e.ids].map((i) => alphabet[i]).join(''), 'pin 42');
    // The loss falls on the secret: targets from the last prompt position on.
    assert.deepEqual([...e.targets!], [-100, -100, -100, tok.encode('4')[0], tok.encode('2')[0], -100]);
    const cls: ExampleData = { kind: 'examples', task: 'classification', examples: [], labels: ['a', 'b'], source: 'mem' };
    assert.throws(() => plantCanaries(cls, format, ['pin 42'], 1, tok, 7), /classifier/);
  });
});

describe('ajar train --canaries, ajar audit --record, ajar release open', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'ajar-privacy-audit-'));
    for (const f of ['members.txt', 'non_members.txt']) cpSync(golden(f), join(dir, f));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('keeps the canaries beside the run folder, never inside it', () => {
    const out = join(dir, 'run');
    const r = runCli(['train', '--data', join(dir, 'members.txt'), '--val-data', join(dir, 'non_members.txt'), '--n-layer', '1', '--n-head', '2',
      '--n-embd', '16', '--block-size', '32', '--batch-size', '8', '--max-iters', '4', '--eval-interval', '4', '--eval-iters', '1',
      '--warmup-iters', '1', '--sample-tokens', '0', '--canaries', '3', '--canary-format', 'code {digits:4}', '--canary-repeats', '2',
      '--out', out, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(r.stdout) as { canaries_file: string };
    assert.equal(summary.canaries_file, `${out}.canaries.json`);
    const file = JSON.parse(readFileSync(`${out}.canaries.json`, 'utf8')) as { format: string; repeats: number; space_size: number; canaries: Array<{ text: string; secret: string }> };
    assert.equal(file.format, 'code {digits:4}');
    assert.equal(file.repeats, 2);
    assert.equal(file.space_size, 1e4);
    assert.equal(file.canaries.length, 3);
    for (const c of file.canaries) {
      assert.match(c.text, /^code \d{4}$/);
      assert.equal(c.secret, c.text.slice(5));
    }
    // Nothing in the run folder holds a secret.
    for (const name of readdirSync(out)) {
      if (name === 'checkpoint') continue;
      const text = readFileSync(join(out, name)).toString('latin1');
      for (const c of file.canaries) assert.ok(!text.includes(c.text), `${name} holds a canary`);
    }
    // Digits are not in the data: the character vocabulary got them for the canaries.
    const vocab = JSON.parse(readFileSync(join(out, 'vocab.json'), 'utf8')) as Record<string, number>;
    assert.ok('7' in vocab);
  });

  it('refuses canaries in classification data, and the audit refuses a bad canary file, in one line with exit 2', () => {
    const data = join(dir, 'cls.jsonl');
    writeFileSync(data, '{"text": "good", "label": "pos"}\n{"text": "bad", "label": "neg"}\n'.repeat(4));
    const r = runCli(['train', '--data', data, '--val-data', data, '--max-iters', '1', '--canaries', '1', '--out', join(dir, 'cls')]);
    assert.equal(r.code, 2);
    // The status line 'tokenising ...' comes first; the error is one line.
    const last = r.stderr.trim().split('\n').pop()!;
    assert.match(last, /^ajar train: --canaries plants text for a language model.*classifier/);
    const badFile = join(dir, 'bad.canaries.json');
    writeFileSync(badFile, '{"format": "key {digits:2}", "canaries": [{"text": "key abc"}]}');
    const a = runCli(['audit', '--model', golden('memorised'), '--members', join(dir, 'members.txt'), '--non-members', join(dir, 'non_members.txt'), '--canaries', badFile]);
    assert.equal(a.code, 2);
    assert.match(a.stderr, /canary 0 is not a text of the format/);
    assert.equal(a.stderr.trim().split('\n').length, 1, a.stderr);
  });

  it('--record, then release open refuses the memorised model unless --max-exposure or --accept-risk', () => {
    const model = join(dir, 'memorised');
    cpSync(golden('memorised'), model, { recursive: true });
    const a = runCli(['audit', '--model', model, '--members', join(dir, 'members.txt'), '--non-members', join(dir, 'non_members.txt'),
      '--canaries', golden('canaries.json'), '--record', '--json']);
    assert.equal(a.code, 0, a.stderr);
    const record = JSON.parse(readFileSync(join(model, 'privacy_audit.json'), 'utf8')) as { canaries: { exposure_max: number; exposure_max_possible: number; format: string } };
    assert.ok(record.canaries.exposure_max > record.canaries.exposure_max_possible - 2);
    assert.ok(!/the key is [a-z]{2}/.test(JSON.stringify(record)), 'the record holds the format, never a secret');
    assert.equal(record.canaries.format, 'the key is {letters:2}');

    const refused = runCli(['release', 'open', '--model', model, '--out', join(dir, 'rel1'), '--license', 'apache-2.0', '--no-eval']);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /canary exposure up to 9\.40 bits .* above 7\.40 bits .*--accept-risk/);
    assert.equal(refused.stderr.trim().split('\n').length, 1, refused.stderr);
    assert.ok(!existsSync(join(dir, 'rel1')));

    const raised = runCli(['release', 'open', '--model', model, '--out', join(dir, 'rel2'), '--license', 'apache-2.0', '--no-eval', '--max-exposure', '9.5']);
    assert.equal(raised.code, 0, raised.stderr);
    const accepted = runCli(['release', 'open', '--model', model, '--out', join(dir, 'rel3'), '--license', 'apache-2.0', '--no-eval', '--accept-risk']);
    assert.equal(accepted.code, 0, accepted.stderr);
    assert.match(accepted.stderr, /warning: .*released anyway \(--accept-risk\)/);
    const card = readFileSync(join(dir, 'rel3', 'README.md'), 'utf8');
    const meta = parseYaml(card.split('\n---\n')[0].replace(/^---\n/, '')) as { privacy_audit: { canaries: { exposure_max: number }; membership: { auc: number } } };
    assert.equal(meta.privacy_audit.canaries.exposure_max, record.canaries.exposure_max);
    assert.match(card, /## Privacy audit\n\nMeasured by `ajar audit` on .*canaries of the format "the key is \{letters:2\}"/);
  });

  it('audits a classifier by membership alone; --help shows both uses of ajar audit', () => {
    const data = join(dir, 'sent.jsonl');
    const held = join(dir, 'held.jsonl');
    const lines = readFileSync(goldenPath('../../examples/data/sentiment/train.jsonl'), 'utf8').split('\n').filter((l) => l !== '');
    writeFileSync(data, `${lines.slice(0, 48).join('\n')}\n`);
    writeFileSync(held, `${lines.slice(48, 72).join('\n')}\n`);
    const out = join(dir, 'cls-model');
    const t = runCli(['train', '--data', data, '--val-data', held, '--n-layer', '1', '--n-head', '2', '--n-embd', '16', '--block-size', '64',
      '--batch-size', '8', '--max-iters', '6', '--eval-interval', '6', '--warmup-iters', '1', '--out', out]);
    assert.equal(t.code, 0, t.stderr);
    const a = runCli(['audit', '--model', out, '--members', data, '--non-members', held, '--json']);
    assert.equal(a.code, 0, a.stderr);
    const got = JSON.parse(a.stdout) as { task: string; membership: { members: number; non_members: number; member_loss: number; auc: number }; canaries: null; extraction: null };
    assert.equal(got.task, 'sequence-classification');
    assert.equal(got.membership.members, 48);
    assert.equal(got.membership.non_members, 24);
    assert.equal(got.canaries, null);
    assert.equal(got.extraction, null);
    // The members' mean loss is what `ajar eval` reports for the same file (its own batching and reduction).
    const e = runCli(['eval', '--model', out, '--data', data, '--json']);
    const evalLoss = (JSON.parse(e.stdout) as { loss: number }).loss;
    assert.ok(Math.abs(got.membership.member_loss - evalLoss) < 1e-5 * Math.abs(evalLoss), `${got.membership.member_loss} vs ${evalLoss}`);
    const c = runCli(['audit', '--model', out, '--members', data, '--non-members', held, '--canaries', golden('canaries.json')]);
    assert.equal(c.code, 2);
    assert.match(c.stderr, /needs a language model/);

    const help = runCli(['audit', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /ajar audit \[--since DATE\]/);
    assert.match(help.stdout, /ajar audit -m, --model DIR --members FILE --non-members FILE/);
  });
});
