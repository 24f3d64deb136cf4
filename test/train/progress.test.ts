// Training progress: throughput and ETA count the optimizer steps' own time, not evaluation's. The trainer runs on a
// fake clock (50 ms per reading) with an evaluation that takes 20 s of it, so every expected figure is exact.
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DEFAULTS, validateConfig } from '../../src/train/config.js';
import { EtaEstimator, evaluationsLeft } from '../../src/train/eta.js';
import { Trainer } from '../../src/train/trainer.js';
import { useReferenceBackend } from '../helpers/backends.js';
import { goldenPath } from '../helpers/golden.js';

describe('EtaEstimator', () => {
  it('no estimate during warm-up and the first timed steps; then steps x moving average + evaluations left', () => {
    const e = new EtaEstimator({ warmupSteps: 2, minSteps: 3, alpha: 0.5 });
    e.recordStep(60); // warm-up steps (compilation, allocation): ignored
    e.recordStep(30);
    e.recordStep(1);
    e.recordStep(1);
    assert.ok(Number.isNaN(e.eta(100, 0)), 'two timed steps are not enough');
    e.recordStep(1);
    assert.equal(e.eta(100, 0), 100);
    e.recordStep(3); // moving average: 0.5 * 3 + 0.5 * 1
    assert.equal(e.secondsPerStep, 2);
    e.recordEval(30);
    assert.equal(e.eta(10, 2), 10 * 2 + 2 * 30);
  });

  it('counts the evaluations to come: every interval and the last step', () => {
    assert.equal(evaluationsLeft(0, 10, 5), 2); // at 5 and 10
    assert.equal(evaluationsLeft(5, 10, 5), 1); // at 10
    assert.equal(evaluationsLeft(7, 12, 5), 2); // at 10 and 12
    assert.equal(evaluationsLeft(10, 10, 5), 0);
  });
});

describe('Trainer on a fake clock: evaluation time stays out of tokens_per_s and the ETA', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'ajar-progress-'));
  after(() => rmSync(tmp, { recursive: true, force: true }));
  before(() => useReferenceBackend());

  it('metrics.jsonl tokens_per_s = tokens per step / 50 ms; ETA finite from step 5; evaluating announced', async () => {
    const data = join(tmp, 'train.txt');
    copyFileSync(goldenPath('release/train.txt'), data);
    const out = join(tmp, 'out');
    const cfg = validateConfig({ ...DEFAULTS, data, tokenizer: 'char', n_layer: 1, n_head: 2, n_embd: 16, block_size: 16,
      batch_size: 4, max_iters: 10, eval_interval: 5, eval_iters: 2, log_interval: 1, warmup_iters: 0, sample_tokens: 0, out });
    let now = 0;
    const progress: Array<{ step: number; etaS: number; tokensPerS: number }> = [];
    const evaluations: number[] = [];
    class SlowEvaluation extends Trainer {
      override evaluate(split: 'train' | 'val'): number {
        now += 10_000; // each of train and val: 10 s of the fake clock
        return super.evaluate(split);
      }
    }
    const t = new SlowEvaluation(cfg, {
      clock: () => (now += 50),
      progress: (p) => progress.push(p),
      evaluating: (step) => evaluations.push(step),
    });
    t.setup();
    const summary = await t.run();
    const tokensPerStep = 4 * 16;
    const rate = tokensPerStep / 0.05; // 1280 tokens/s: the optimizer steps alone
    const lines = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
    const rates = lines.filter((l) => l.tokens_per_s !== undefined).map((l) => l.tokens_per_s);
    assert.equal(rates.length, 10);
    for (const r of rates) assert.ok(Math.abs(r - rate) < 1e-6, `tokens_per_s ${r}, expected ${rate}`);
    assert.ok(Math.abs(summary.tokens_per_s - rate) < 1e-6, `summary ${summary.tokens_per_s}`);
    assert.deepEqual(evaluations, [0, 5, 10]);
    // Warm-up (2 steps) and 3 timed steps before an estimate: none for steps 1-4.
    assert.ok(progress.slice(0, 4).every((p) => Number.isNaN(p.etaS)));
    // Step 5: 5 steps of 50 ms, and one evaluation (at step 10) as long as the last one, 20 s + one 50 ms reading.
    const p5 = progress[4];
    assert.equal(p5.step, 5);
    assert.ok(Math.abs(p5.etaS - (5 * 0.05 + 20.05)) < 1e-9, `ETA at step 5: ${p5.etaS}`);
    assert.ok(Math.abs(progress[8].etaS - (1 * 0.05 + 20.05)) < 1e-9, `ETA at step 9: ${progress[8].etaS}`);
  });
});
