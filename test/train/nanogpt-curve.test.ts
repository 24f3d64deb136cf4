// `ajar train --preset shakespeare-char` follows nanoGPT's own curve step by step: the same seed draws the same
// initial weights, training batches, evaluation batches and dropout masks from a PyTorch-compatible generator,
// so the losses agree to float32 rounding (reference: test/golden/train/make_nanogpt_curve.py, nanoGPT's
// model.py and train.py in PyTorch 1.13, seed 1337).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { runCli } from '../helpers/cli.js';
import { readGoldenJson } from '../helpers/golden.js';

interface Curve {
  steps: { iter: number; loss: number; lr: number }[];
  evals: { step: number; train_loss: number; val_loss: number }[];
}
interface Metric { step: number; train_loss?: number; lr?: number; train_loss_eval?: number; val_loss?: number }

const curves = readGoldenJson<{ dropout0: Curve; dropout02: Curve }>('train/nanogpt_curve.json');
// Measured: at most 7.2e-7 apart (float32 rounding: ajar's kernels sum in another order than OpenBLAS). A wrong
// draw, batch order, dropout mask, schedule or gradient moves the loss by 1e-3 or more.
const TOL = 2e-5;

function compare(curve: Curve, flags: string[]): void {
  const out = join(mkdtempSync(join(tmpdir(), 'ajar-nanogpt-')), 'run');
  const r = runCli(['train', '--preset', 'shakespeare-char', ...flags, '--log-interval', '1', '--sample-tokens', '0', '--out', out, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const metrics = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Metric);
  // ajar logs step k's batch loss under the step count after it (k + 1); nanoGPT under iter k.
  const losses = new Map(metrics.filter((m) => m.train_loss !== undefined).map((m) => [m.step - 1, m]));
  for (const s of curve.steps) {
    const m = losses.get(s.iter);
    assert.ok(m, `no training loss logged for iteration ${s.iter}`);
    assert.ok(Math.abs(m.lr! - s.lr) <= 1e-12, `iteration ${s.iter}: lr ${m.lr} vs nanoGPT ${s.lr}`);
    assert.ok(Math.abs(m.train_loss! - s.loss) <= TOL, `iteration ${s.iter}: loss ${m.train_loss} vs nanoGPT ${s.loss}`);
  }
  const evals = metrics.filter((m) => m.val_loss !== undefined);
  assert.deepEqual(evals.map((e) => e.step), curve.evals.map((e) => e.step));
  curve.evals.forEach((want, i) => {
    assert.ok(Math.abs(evals[i].train_loss_eval! - want.train_loss) <= TOL, `step ${want.step}: train estimate ${evals[i].train_loss_eval} vs nanoGPT ${want.train_loss}`);
    assert.ok(Math.abs(evals[i].val_loss! - want.val_loss) <= TOL, `step ${want.step}: val estimate ${evals[i].val_loss} vs nanoGPT ${want.val_loss}`);
  });
}

test('the shakespeare-char preset reproduces nanoGPT\'s first 30 steps and 3 evaluations at seed 1337', () => {
  assert.equal(curves.dropout0.steps.length, 30);
  compare(curves.dropout0, ['--max-iters', '30', '--eval-interval', '15', '--eval-iters', '2']);
});

test('with dropout 0.2 too: the masks are torch\'s, so 10 steps and 2 evaluations agree', () => {
  assert.equal(curves.dropout02.steps.length, 10);
  compare(curves.dropout02, ['--max-iters', '10', '--eval-interval', '10', '--eval-iters', '1', '--dropout', '0.2']);
});
