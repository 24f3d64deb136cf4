// Training configuration: presets, file and flag precedence, and clear errors for bad values.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AjarError } from '../../src/tensor/errors.js';
import { DEFAULTS, PRESETS, applyOverrides, presetConfig, validateConfig } from '../../src/train/config.js';

function throwsConfig(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof AjarError && e.code === 'bad_config' && pattern.test(e.message));
}

describe('train config', () => {
  it("shakespeare-char is nanoGPT's CPU recipe", () => {
    // nanoGPT README: --block_size=64 --batch_size=12 --n_layer=4 --n_head=4 --n_embd=128 --max_iters=2000
    // --lr_decay_iters=2000 --dropout=0.0, with config/train_shakespeare_char.py: lr 1e-3, min_lr 1e-4,
    // beta2 0.99, warmup 100, eval_interval 250; train.py defaults: weight_decay 0.1, grad_clip 1.0; --eval_iters=20.
    const c = validateConfig(applyOverrides(DEFAULTS, presetConfig('shakespeare-char'), 'preset'));
    const want = {
      n_layer: 4, n_head: 4, n_embd: 128, block_size: 64, batch_size: 12, max_iters: 2000, lr: 1e-3, min_lr: 1e-4,
      warmup_iters: 100, lr_decay_iters: 2000, beta2: 0.99, weight_decay: 0.1, dropout: 0, grad_clip: 1.0,
      eval_interval: 250, eval_iters: 20, tokenizer: 'char',
    };
    for (const [k, v] of Object.entries(want)) assert.equal((c as unknown as Record<string, unknown>)[k], v, k);
  });

  it('command-line strings are coerced and override the preset', () => {
    const c = applyOverrides(applyOverrides(DEFAULTS, presetConfig('shakespeare-char'), 'preset'),
      { 'max-iters': '50', lr: '3e-4', 'keep-best': 'false', 'val-data': 'v.txt' }, 'command line');
    assert.equal(c.max_iters, 50);
    assert.equal(c.lr, 3e-4);
    assert.equal(c.keep_best, false);
    assert.equal(c.val_data, 'v.txt');
    assert.equal(c.n_embd, 128);
  });

  it('derives min_lr, lr_decay_iters and checkpoint_interval', () => {
    const c = validateConfig({ ...DEFAULTS, data: 'x.txt', lr: 6e-4, max_iters: 300, eval_interval: 50 });
    assert.ok(Math.abs(c.min_lr! - 6e-5) < 1e-18);
    assert.equal(c.lr_decay_iters, 300);
    assert.equal(c.checkpoint_interval, 50);
  });

  it('names the problem in bad configurations', () => {
    throwsConfig(() => presetConfig('shakespeare'), /unknown preset 'shakespeare'.*shakespeare-char/);
    throwsConfig(() => applyOverrides(DEFAULTS, { 'max-iter': '5' }, 'command line'), /unknown key 'max-iter'.*max-iters/);
    throwsConfig(() => applyOverrides(DEFAULTS, { 'batch-size': 'twelve' }, 'command line'), /batch-size must be a number/);
    throwsConfig(() => applyOverrides(DEFAULTS, { 'n-layer': '2.5' }, 'f.yaml'), /f\.yaml: n-layer must be an integer/);
    throwsConfig(() => applyOverrides(DEFAULTS, { optimizer: 'adam' }, 'c'), /optimizer must be one of adamw, sgd/);
    throwsConfig(() => validateConfig({ ...DEFAULTS }), /data is required/);
    throwsConfig(() => validateConfig({ ...DEFAULTS, data: 'x', n_embd: 130 }), /n-embd \(130\) must be divisible by n-head \(4\)/);
    throwsConfig(() => validateConfig({ ...DEFAULTS, data: 'x', lr: -1 }), /lr must be > 0/);
    throwsConfig(() => validateConfig({ ...DEFAULTS, data: 'x', dropout: 1 }), /dropout must be in \[0, 1\)/);
    throwsConfig(() => validateConfig({ ...DEFAULTS, data: 'x', block_size: 1 }), /block-size must be at least 2/);
  });

  it('every preset validates', () => {
    for (const name of Object.keys(PRESETS)) validateConfig(applyOverrides(DEFAULTS, presetConfig(name), name));
  });
});
