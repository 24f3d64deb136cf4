// `ajar train --dp` end to end: a small classifier on Poisson batches, epsilon in metrics.jsonl and privacy.json
// equal to the accountant's for the run's steps, and `ajar release open` carrying the record into the card.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { epsilonOf, noiseMultiplierFor } from '../../src/train/accountant.js';
import { repoRoot, runCli } from '../helpers/cli.js';

const N = 200;
const BATCH = 16;
const STEPS = 6;

describe('ajar train --dp', () => {
  let tmp: string;
  let out: string;
  let trained: ReturnType<typeof runCli>;
  before(() => {
    tmp = mkdtempSync(join(tmpdir(), 'ajar-dp-'));
    const lines = readFileSync(join(repoRoot, 'examples/data/sentiment/train.jsonl'), 'utf8').split('\n').filter((l) => l.trim() !== '');
    writeFileSync(join(tmp, 'train.jsonl'), `${lines.slice(0, N).join('\n')}\n`);
    writeFileSync(join(tmp, 'val.jsonl'), `${lines.slice(N, N + 40).join('\n')}\n`);
    out = join(tmp, 'run');
    trained = runCli(['train', '--data', join(tmp, 'train.jsonl'), '--val-data', join(tmp, 'val.jsonl'), '--task', 'classification',
      '--n-layer', '1', '--n-head', '2', '--n-embd', '32', '--block-size', '64', '--batch-size', String(BATCH), '--max-iters', String(STEPS),
      '--eval-interval', String(STEPS), '--log-interval', '2', '--warmup-iters', '0', '--sample-tokens', '0', '--out', out,
      '--dp', '--dp-target-epsilon', '8', '--dp-max-grad-norm', '0.5']);
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it('logs epsilon after each logged step, as the accountant computes it for that many steps', () => {
    assert.equal(trained.code, 0, trained.stderr);
    // q = 16 / 200; delta defaults to the largest power of ten below 1/200; the noise is solved for epsilon 8 over 6 steps.
    const q = BATCH / N;
    const delta = 1e-3;
    const sigma = noiseMultiplierFor(8, delta, q, STEPS);
    const logged = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>)
      .filter((r) => r.epsilon !== undefined);
    assert.deepEqual(logged.map((r) => r.step), [2, 4, 6]);
    for (const r of logged) {
      const want = epsilonOf({ sampleRate: q, noiseMultiplier: sigma, steps: r.step, delta }).epsilon;
      assert.ok(Math.abs(r.epsilon - want) < 1e-9 * want, `step ${r.step}: ${r.epsilon} vs ${want}`);
    }
    assert.ok(logged[2].epsilon <= 8 && logged[2].epsilon > 7.9, `final epsilon ${logged[2].epsilon} just under the target`);
    const record = JSON.parse(readFileSync(join(out, 'privacy.json'), 'utf8')) as Record<string, unknown>;
    assert.deepEqual(record, {
      mechanism: 'DP-SGD', epsilon: logged[2].epsilon, delta, noise_multiplier: sigma, max_grad_norm: 0.5, sample_rate: q, steps: STEPS, accountant: 'rdp',
    });
  });

  it('ajar release open writes the privacy record into the card front matter', () => {
    const rel = join(tmp, 'release');
    const r = runCli(['release', 'open', '--model', out, '--out', rel, '--license', 'mit', '--author', 'A. Person']);
    assert.equal(r.code, 0, r.stderr);
    const card = readFileSync(join(rel, 'README.md'), 'utf8');
    const front = parseYaml(card.split('\n---\n')[0].replace(/^---\n/, '')) as Record<string, unknown>;
    assert.deepEqual(front.privacy, JSON.parse(readFileSync(join(out, 'privacy.json'), 'utf8')));
    assert.match(card, /Trained with differential privacy \(DP-SGD\): \(epsilon 7\.9\d\d, delta 0\.001\)-DP per training example/);
  });

  it('--resume continues a DP run exactly: the same Poisson batches, noise, losses and epsilon', () => {
    const common = ['--data', join(tmp, 'train.jsonl'), '--val-data', join(tmp, 'val.jsonl'), '--task', 'classification',
      '--n-layer', '1', '--n-head', '2', '--n-embd', '16', '--block-size', '32', '--batch-size', '8', '--lr-decay-iters', '6',
      '--warmup-iters', '0', '--eval-interval', '3', '--log-interval', '1', '--sample-tokens', '0', '--dp', '--dp-noise-multiplier', '1.2'];
    const whole = join(tmp, 'whole');
    const parts = join(tmp, 'parts');
    assert.equal(runCli(['train', ...common, '--max-iters', '6', '--out', whole]).code, 0);
    assert.equal(runCli(['train', ...common, '--max-iters', '3', '--out', parts]).code, 0);
    const resumed = runCli(['train', ...common, '--max-iters', '6', '--out', parts, '--resume']);
    assert.equal(resumed.code, 0, resumed.stderr);
    const steps = (dir: string): string[] => readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n')
      .filter((l) => l.includes('"train_loss"')).map((l) => {
        const { step, train_loss: loss, epsilon } = JSON.parse(l) as Record<string, number>;
        return JSON.stringify({ step, loss, epsilon });
      });
    assert.deepEqual(steps(parts), steps(whole));
    assert.deepEqual(readFileSync(join(parts, 'privacy.json'), 'utf8'), readFileSync(join(whole, 'privacy.json'), 'utf8'));
    assert.ok(readFileSync(join(parts, 'model.safetensors')).equals(readFileSync(join(whole, 'model.safetensors'))), 'the same weights');
  });

  it('refuses plain text without --dp-unit, a missing noise setting and gradient accumulation, in one line', () => {
    const text = join(tmp, 'plain.txt');
    writeFileSync(text, 'hello world\n'.repeat(50));
    for (const [args, pattern] of [
      [['--data', text, '--dp', '--dp-noise-multiplier', '1'], /is plain text, which has no records: choose its documents \(the unit of privacy under --dp\) with --dp-unit/],
      [['--data', join(tmp, 'train.jsonl'), '--dp'], /--dp needs exactly one of --dp-noise-multiplier S and --dp-target-epsilon E/],
      [['--data', join(tmp, 'train.jsonl'), '--dp', '--dp-noise-multiplier', '1', '--grad-accum', '2'], /grad-accum must be 1 with --dp/],
    ] as const) {
      const r = runCli(['train', ...args, '--max-iters', '1', '--out', join(tmp, 'bad')]);
      assert.equal(r.code, 2, r.stderr);
      // The error is one line (after any status lines such as 'tokenising ...'), with no stack trace.
      assert.match(r.stderr.trim().split('\n').at(-1)!, pattern);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
    }
  });
});
