// Training end to end through the CLI on a small text: the loss falls, the model folder loads, and a
// `kill -9` followed by --resume continues exactly the curve of an uninterrupted run.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runCli } from '../helpers/cli.js';

const tmp = mkdtempSync(join(tmpdir(), 'ajar-train-'));
const data = join(tmp, 'text.txt');
// A small repetitive text a tiny model can learn quickly.
writeFileSync(data, 'the cat sat on the mat. the dog sat on the log. '.repeat(120));

const common = ['--data', data, '--tokenizer', 'char', '--n-layer', '1', '--n-head', '2', '--n-embd', '32',
  '--block-size', '16', '--batch-size', '4', '--lr', '3e-3', '--warmup-iters', '2', '--eval-iters', '2',
  '--log-interval', '1', '--sample-tokens', '0', '--seed', '5', '--dropout', '0.1'];

interface Metric { step: number; train_loss?: number; train_loss_eval?: number; val_loss?: number }

function metrics(dir: string): Metric[] {
  return readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Metric);
}

function trainLosses(dir: string): Map<number, number> {
  return new Map(metrics(dir).filter((m) => m.train_loss !== undefined).map((m) => [m.step, m.train_loss!]));
}

const bin = fileURLToPath(new URL('../../../bin/ajar.js', import.meta.url));

describe('ajar train end to end', () => {
  const full = join(tmp, 'full');

  it('trains, lowers the loss, and saves a loadable model with --json summary', () => {
    const r = runCli(['train', ...common, '--max-iters', '30', '--eval-interval', '10', '--out', full, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const s = JSON.parse(r.stdout) as Record<string, number | string>;
    for (const k of ['out_dir', 'iters', 'train_loss', 'val_loss', 'best_val_loss', 'seconds', 'tokens_per_s']) assert.ok(k in s, k);
    assert.equal(s.iters, 30);
    const evals = metrics(full).filter((m) => m.val_loss !== undefined);
    assert.ok(evals[evals.length - 1].val_loss! < evals[0].val_loss! - 0.3, 'validation loss should fall');
    // The summary's losses are the last evaluation's estimates, as nanoGPT prints them.
    assert.equal(s.train_loss, evals[evals.length - 1].train_loss_eval);
    assert.equal(s.val_loss, evals[evals.length - 1].val_loss);
    for (const f of ['config.json', 'model.safetensors', 'vocab.json', 'tokenizer_config.json', 'generation_config.json']) {
      assert.ok(existsSync(join(full, f)), f);
    }
    const g = runCli(['generate', '--model', full, '--prompt', 'the ', '--max-new-tokens', '8', '--temperature', '0', '--json']);
    assert.equal(g.code, 0, g.stderr);
    const ev = runCli(['eval', '--model', full, '--data', data, '--json']);
    assert.equal(ev.code, 0, ev.stderr);
  });

  it('kill -9 then --resume continues the same loss curve', async () => {
    const dir = join(tmp, 'killed');
    const args = [bin, 'train', ...common, '--max-iters', '30', '--eval-interval', '10', '--checkpoint-interval', '5', '--out', dir];
    const child = spawn(process.execPath, args, { stdio: 'ignore' });
    // Wait until a checkpoint past step 10 exists, then kill without warning.
    const killedAt = await new Promise<number>((resolve, reject) => {
      const timer = setInterval(() => {
        try {
          const st = JSON.parse(readFileSync(join(dir, 'checkpoint', 'state.json'), 'utf8')) as { step: number };
          if (st.step >= 10) {
            child.kill('SIGKILL');
            clearInterval(timer);
            resolve(st.step);
          }
        } catch {
          // not written yet
        }
      }, 20);
      child.on('exit', () => {
        clearInterval(timer);
        reject(new Error('training finished before it could be killed'));
      });
    }).catch((e: Error) => {
      throw e;
    });
    await new Promise((r) => child.once('exit', r));
    const ck = JSON.parse(readFileSync(join(dir, 'checkpoint', 'state.json'), 'utf8')) as { step: number };
    assert.ok(ck.step >= killedAt && ck.step < 30, `checkpoint at ${ck.step}`);
    const r = runCli(['train', ...common, '--max-iters', '30', '--eval-interval', '10', '--checkpoint-interval', '5', '--out', dir, '--resume']);
    assert.equal(r.code, 0, r.stderr);
    const a = trainLosses(full);
    const b = trainLosses(dir);
    for (let step = ck.step + 1; step <= 30; step++) {
      assert.equal(b.get(step), a.get(step), `train loss at step ${step} after resume`);
    }
  });

  it('refuses a second run into the same folder without --resume, and --resume without a checkpoint', () => {
    const again = runCli(['train', ...common, '--max-iters', '2', '--out', full]);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /already holds a training run.*--resume/);
    const none = runCli(['train', ...common, '--max-iters', '2', '--out', join(tmp, 'nothing'), '--resume']);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /no checkpoint/);
  });

  it('refuses a checkpoint whose generator state is not mt19937\'s (an older ajar wrote it)', () => {
    const dir = join(tmp, 'old-rng');
    const first = runCli(['train', ...common, '--max-iters', '4', '--checkpoint-interval', '2', '--out', dir]);
    assert.equal(first.code, 0, first.stderr);
    const statePath = join(dir, 'checkpoint', 'state.json');
    const state = JSON.parse(readFileSync(statePath, 'utf8')) as { rng: number[] };
    assert.equal(state.rng.length, 627, 'mt19937 words, position, cached normal');
    writeFileSync(statePath, JSON.stringify({ ...state, rng: [1, 2, 3, 4] })); // the xoshiro state of earlier builds
    const r = runCli(['train', ...common, '--max-iters', '6', '--checkpoint-interval', '2', '--out', dir, '--resume']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /older ajar whose random generator differs; train again without --resume/);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  });

  it('gives clear errors for bad data and settings', () => {
    const empty = join(tmp, 'empty.txt');
    writeFileSync(empty, '');
    const e1 = runCli(['train', '--data', empty, '--out', join(tmp, 'e1')]);
    assert.equal(e1.code, 2);
    assert.match(e1.stderr, /empty/);
    const e2 = runCli(['train', '--preset', 'nope']);
    assert.equal(e2.code, 2);
    assert.match(e2.stderr, /unknown preset 'nope'/);
    const e3 = runCli(['train', ...common, '--init-from', join(fileURLToPath(new URL('../../../test/golden/gpt2-tiny', import.meta.url))),
      '--block-size', '512', '--out', join(tmp, 'e3')]);
    assert.equal(e3.code, 2);
    assert.match(e3.stderr, /block size 512.*128/i);
  });
});
