// ajar train --lora on the tiny GPT-2 fixture: the loss falls, the frozen base is untouched (no gradients, no
// optimizer state, byte-identical weights), the run folder is a PEFT adapter that reloads (in ajar, and in plain
// PyTorch by test/golden/lora/reload_lora.py when torch imports), --resume continues exactly, YAML and --json work.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readSafetensors } from '../../src/io/safetensors.js';
import { DEFAULTS, validateConfig, type TrainConfig } from '../../src/train/config.js';
import { LoraTraining } from '../../src/train/lora.js';
import { Trainer } from '../../src/train/trainer.js';
import { useReferenceBackend } from '../helpers/backends.js';
import { repoRoot, runCli } from '../helpers/cli.js';
import { goldenPath } from '../helpers/golden.js';

const base = goldenPath('gpt2-tiny');
const data = goldenPath('release/train.txt');
const PYTHON = '/usr/bin/python3';
const tmp = mkdtempSync(join(tmpdir(), 'ajar-lora-train-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const flags = ['--lora', '--init-from', base, '--data', data, '--block-size', '32', '--batch-size', '4', '--lr', '1e-2',
  '--warmup-iters', '0', '--eval-interval', '6', '--eval-iters', '2', '--log-interval', '1', '--sample-tokens', '0', '--seed', '3', '--lr-decay-iters', '12'];

function config(over: Partial<TrainConfig>): TrainConfig {
  return validateConfig({ ...DEFAULTS, init_from: base, data, block_size: 32, batch_size: 4, lr: 1e-2, warmup_iters: 0,
    eval_interval: 6, eval_iters: 2, sample_tokens: 0, seed: 3, lora: true, ...over });
}

function ajarEval(args: string[]): { loss: number; tokens: number } {
  const r = runCli(['eval', ...args, '--json']);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as { loss: number; tokens: number };
}

describe('ajar train --lora (library)', () => {
  before(() => useReferenceBackend());

  it('freezes the base: only A and B train, base weights stay byte-identical, the loss falls', async () => {
    const out = join(tmp, 'lib');
    const t = new Trainer(config({ max_iters: 12, out }));
    t.setup();
    assert.ok(t.mode instanceof LoraTraining);
    const set = t.mode.set;
    // GPT-2's default targets: c_attn, attn.c_proj, mlp.c_fc, mlp.c_proj in each of 3 blocks.
    assert.equal(set.entries.length, 12);
    assert.deepEqual(set.spec.target_modules, ['c_attn', 'c_proj', 'c_fc']);
    assert.equal(set.scaling, 2, 'alpha defaults to 2r: scaling 16 / 8');
    const adapterTensors = new Set(set.trainableParameters());
    const baseParams = t.model.module.parameters().filter((p) => !adapterTensors.has(p));
    assert.ok(baseParams.length > 0 && baseParams.every((p) => !p.requiresGrad), 'base parameters do not require grad');
    const before = baseParams.map((p) => Buffer.from(p.data.buffer, p.data.byteOffset, p.data.byteLength).toString('base64'));
    // The optimizer holds state for A and B only (AdamW: two moments each).
    const opt = t.optimizer.stateDict();
    assert.equal(opt.buffers.length, 2 * set.entries.length);
    const stateValues = opt.buffers.flat().reduce((n, b) => n + b.length, 0);
    assert.equal(stateValues, 2 * set.trainableParameters().reduce((n, p) => n + p.size, 0));
    // B starts at zero (the adapted model equals the base); A is Kaiming-uniform within 1/sqrt(in).
    for (const e of set.entries) {
      assert.ok(e.adapter.B.data.every((v) => v === 0));
      const bound = 1 / Math.sqrt(e.adapter.A.shape[1]);
      assert.ok(e.adapter.A.data.every((v) => Math.abs(v) <= bound) && e.adapter.A.data.some((v) => v !== 0));
    }
    const summary = await t.run();
    assert.ok(summary.val_loss! < 0.95 * JSON.parse(readFileSync(join(out, 'metrics.jsonl'), 'utf8').split('\n')[0]).val_loss);
    assert.ok(baseParams.every((p) => p.grad === null || p.grad === undefined), 'no gradient buffers for the base');
    const after = baseParams.map((p) => Buffer.from(p.data.buffer, p.data.byteOffset, p.data.byteLength).toString('base64'));
    assert.deepEqual(after, before, 'base weights byte-identical after training');
    // The checkpoint keeps the adapter only, never the base.
    const ck = readSafetensors(join(out, 'checkpoint', 'model.safetensors')).tensors;
    assert.equal(ck.size, 2 * set.entries.length);
    assert.ok([...ck.keys()].every((k) => /^base_model\.model\..*\.lora_[AB]\.weight$/.test(k)));
  });

  it('refuses a target the architecture lacks with one line naming its layers', () => {
    const r = runCli(['train', ...flags, '--lora-targets', 'c_attn,q_proj', '--max-iters', '1', '--out', join(tmp, 'bad-target')]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /target module 'q_proj' is absent from GPT2LMHeadModel \(its linear layers end in c_attn, c_proj, c_fc\)/);
  });

  it('refuses LoRA from scratch with one clear line', () => {
    const r = runCli(['train', '--lora', '--data', data, '--max-iters', '1']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--lora adapts a pretrained model: give --init-from BASE/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
  });
});

describe('ajar train --lora (CLI)', () => {
  const out = join(tmp, 'cli');
  let summary: { val_loss: number; iters: number };
  before(() => {
    const r = runCli(['train', ...flags, '--max-iters', '12', '--out', out, '--json']);
    assert.equal(r.code, 0, r.stderr);
    summary = JSON.parse(r.stdout) as { val_loss: number; iters: number };
  });

  it('writes a PEFT adapter folder: adapter_config.json, PEFT keys and shapes, a model card', () => {
    assert.equal(summary.iters, 12);
    const cfg = JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(cfg.peft_type, 'LORA');
    assert.equal(cfg.task_type, 'CAUSAL_LM');
    assert.equal(cfg.r, 8);
    assert.equal(cfg.lora_alpha, 16);
    assert.equal(cfg.fan_in_fan_out, true);
    assert.equal(cfg.bias, 'none');
    assert.equal(cfg.inference_mode, true);
    assert.equal(cfg.use_rslora, false);
    assert.equal(cfg.base_model_name_or_path, base);
    assert.deepEqual(cfg.target_modules, ['c_attn', 'c_proj', 'c_fc']);
    const t = readSafetensors(join(out, 'adapter_model.safetensors')).tensors;
    assert.deepEqual([...t.get('base_model.model.transformer.h.0.attn.c_attn.lora_A.weight')!.shape], [8, 96]);
    assert.deepEqual([...t.get('base_model.model.transformer.h.0.attn.c_attn.lora_B.weight')!.shape], [288, 8]);
    assert.deepEqual([...t.get('base_model.model.transformer.h.2.mlp.c_proj.lora_A.weight')!.shape], [8, 384]);
    assert.deepEqual([...t.get('base_model.model.transformer.h.2.mlp.c_proj.lora_B.weight')!.shape], [96, 8]);
    assert.equal(t.size, 24);
    const card = readFileSync(join(out, 'README.md'), 'utf8');
    assert.match(card, /^---\nbase_model: /);
    assert.match(card, /library_name: peft/);
    assert.match(card, new RegExp(`Training data: ${data.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    assert.match(card, /\| validation loss \| \d+\.\d{4} \|/);
  });

  it('reloads: ajar eval --adapter beats the base on the training text; merge gives the same loss', () => {
    const withAdapter = ajarEval(['--model', base, '--adapter', out, '--data', data]);
    const plain = ajarEval(['--model', base, '--data', data]);
    assert.ok(withAdapter.loss < plain.loss - 0.1, `${withAdapter.loss} vs base ${plain.loss}`);
    const merged = join(tmp, 'merged');
    assert.equal(runCli(['merge', '--model', base, '--adapter', out, '--out', merged]).code, 0);
    const m = ajarEval(['--model', merged, '--data', data]);
    assert.ok(Math.abs(m.loss - withAdapter.loss) / withAdapter.loss < 1e-4, `${m.loss} vs ${withAdapter.loss}`);
  });

  it('plain PyTorch (reload_lora.py) reproduces ajar eval --adapter within 1e-4 relative', (t) => {
    const probe = spawnSync(PYTHON, ['-c', 'import torch, numpy, regex'], { encoding: 'utf8' });
    if (probe.error || probe.status !== 0) {
      t.skip(`${PYTHON} cannot import torch, numpy and regex`);
      return;
    }
    const text = goldenPath('gpt2-tiny/eval.txt');
    const r = spawnSync(PYTHON, [goldenPath('lora/reload_lora.py'), base, out, text], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const ref = JSON.parse(r.stdout) as { loss: number; tokens: number };
    const got = ajarEval(['--model', base, '--adapter', out, '--data', text]);
    assert.equal(got.tokens, ref.tokens);
    const rel = Math.abs(got.loss - ref.loss) / ref.loss;
    assert.ok(rel < 1e-4, `ajar ${got.loss} vs PyTorch ${ref.loss} (relative ${rel.toExponential(2)})`);
  });

  it('--resume continues to the adapter an uninterrupted run reaches', () => {
    const split = join(tmp, 'split');
    // A first run that ends at step 6 of the same schedule (lr-decay-iters 12), then --resume to 12.
    assert.equal(runCli(['train', ...flags, '--out', split, '--max-iters', '6']).code, 0);
    const r = runCli(['train', ...flags, '--max-iters', '12', '--out', split, '--resume']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /resumed from .* at step 6/);
    const a = readSafetensors(join(split, 'checkpoint', 'model.safetensors')).tensors;
    const b = readSafetensors(join(out, 'checkpoint', 'model.safetensors')).tensors;
    for (const [k, t] of b) assert.deepEqual(a.get(k)!.data, t.data, k);
  });

  it('YAML keys (lora_targets as a list, use_rslora) and the Llama defaults', () => {
    const yaml = join(tmp, 'lora.yaml');
    writeFileSync(yaml, `lora: true\nlora_r: 4\nlora_alpha: 8\nuse_rslora: true\nlora_targets:\n  - c_attn\nlora_dropout: 0.1\n`);
    const dir = join(tmp, 'yaml');
    const r = runCli(['train', yaml, ...flags.slice(1), '--max-iters', '2', '--out', dir]);
    assert.equal(r.code, 0, r.stderr);
    const cfg = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    assert.deepEqual([cfg.r, cfg.lora_alpha, cfg.use_rslora, cfg.lora_dropout, cfg.target_modules], [4, 8, true, 0.1, ['c_attn']]);
    assert.equal(readSafetensors(join(dir, 'adapter_model.safetensors')).tensors.size, 6);
    const llama = runCli(['train', ...flags.slice(0, 2), goldenPath('llama/llama-tiny'), ...flags.slice(3), '--max-iters', '1',
      '--out', join(tmp, 'llama'), '--eval-iters', '1']);
    assert.equal(llama.code, 0, llama.stderr);
    const lcfg = JSON.parse(readFileSync(join(tmp, 'llama', 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    assert.deepEqual(lcfg.target_modules, ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj']);
    assert.equal(lcfg.fan_in_fan_out, false);
    assert.equal(readSafetensors(join(tmp, 'llama', 'adapter_model.safetensors')).tensors.size, 3 * 7 * 2);
  });

  it('a classifier keeps its score head trainable and saved (modules_to_save), and reloads over the LM base', () => {
    const dir = join(tmp, 'cls');
    const sentiment = join(repoRoot, 'examples', 'data', 'sentiment');
    const r = runCli(['train', '--lora', '--init-from', base, '--data', join(sentiment, 'train.jsonl'), '--val-data',
      join(sentiment, 'val.jsonl'), '--max-iters', '6', '--batch-size', '8', '--block-size', '32', '--eval-interval', '3',
      '--eval-iters', '2', '--lr', '1e-2', '--warmup-iters', '0', '--keep-best', 'false', '--out', dir, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(r.stdout) as { val_loss: number };
    const cfg = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(cfg.task_type, 'SEQ_CLS');
    assert.deepEqual(cfg.modules_to_save, ['score']);
    const t = readSafetensors(join(dir, 'adapter_model.safetensors')).tensors;
    assert.deepEqual([...t.get('base_model.model.score.weight')!.shape], [3, 96]);
    const ev = runCli(['eval', '--model', base, '--adapter', dir, '--data', join(sentiment, 'val.jsonl'), '--block-size', '32', '--json']);
    assert.equal(ev.code, 0, ev.stderr);
    const got = JSON.parse(ev.stdout) as { task: string; loss: number };
    assert.equal(got.task, 'classification');
    assert.ok(Math.abs(got.loss - summary.val_loss) < 1e-5 * summary.val_loss, `${got.loss} vs the run's ${summary.val_loss}`);
  });
});
