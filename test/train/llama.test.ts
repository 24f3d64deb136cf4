// `ajar train` on the Llama family: from scratch (--arch llama, grouped-query) and fine-tuning a PyTorch-written
// checkpoint (--init-from); the saved folder is a LlamaForCausalLM that evaluates as the training run reported.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { runCli } from '../helpers/cli.js';
import { goldenPath, readGoldenJson } from '../helpers/golden.js';

interface TrainJson { out_dir: string; iters: number; train_loss: number; val_loss: number }

describe('ajar train on Llama-family models', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'ajar-train-llama-'));
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it('--arch llama trains a grouped-query model from scratch and saves a LlamaForCausalLM folder', () => {
    const out = join(tmp, 'scratch');
    const r = runCli(['train', '--data', 'examples/data/tinyshakespeare.txt', '--arch', 'llama', '--n-layer', '2',
      '--n-head', '4', '--n-kv-head', '2', '--n-embd', '32', '--block-size', '32', '--batch-size', '8',
      '--max-iters', '60', '--eval-interval', '30', '--eval-iters', '4', '--warmup-iters', '5', '--sample-tokens', '0',
      '--out', out, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const res = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as TrainJson;
    // A 65-character vocabulary starts near ln 65 = 4.17; 60 steps of AdamW at 1e-3 learn the letter frequencies.
    assert.ok(res.val_loss < 3.6, `val loss ${res.val_loss}`);
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as Record<string, unknown>;
    assert.deepEqual(config.architectures, ['LlamaForCausalLM']);
    assert.equal(config.num_key_value_heads, 2);
    assert.equal(config.intermediate_size, 88); // 8/3 * 32, rounded up to a multiple of 8
    const g = runCli(['generate', '--model', out, '--prompt', 'ROMEO:', '--max-new-tokens', '10', '--temperature', '0', '--json']);
    assert.equal(g.code, 0, g.stderr);
    assert.equal((JSON.parse(g.stdout) as { ids: number[] }).ids.length, 10);
  });

  it('--init-from fine-tunes a PyTorch Llama checkpoint: the loss falls from PyTorch\'s value for the base', () => {
    const base = goldenPath('llama/llama-tiny');
    const text = goldenPath('llama/eval.txt');
    const baseLoss = readGoldenJson<{ eval: Record<string, { loss: number }> }>('llama/llama-tiny/expected.json').eval['32'].loss;
    const out = join(tmp, 'finetune');
    const r = runCli(['train', '--init-from', base, '--data', text, '--block-size', '32', '--batch-size', '4',
      '--max-iters', '30', '--eval-interval', '30', '--eval-iters', '4', '--lr', '3e-3', '--warmup-iters', '0',
      '--val-fraction', '0.2', '--sample-tokens', '0', '--out', out, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const res = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as TrainJson;
    assert.ok(res.train_loss < baseLoss - 1, `train loss ${res.train_loss} vs the base's ${baseLoss}`);
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as Record<string, unknown>;
    assert.deepEqual(config.architectures, ['LlamaForCausalLM']);
    assert.equal(config.tie_word_embeddings, false);
    const e = runCli(['eval', '--model', out, '--data', text, '--block-size', '32', '--json']);
    assert.equal(e.code, 0, e.stderr);
    assert.ok((JSON.parse(e.stdout) as { loss: number }).loss < baseLoss - 1);
  });

  it('--arch llama refuses classification data with one line', () => {
    const r = runCli(['train', '--data', 'examples/data/sentiment/train.jsonl', '--arch', 'llama', '--max-iters', '1', '--out', join(tmp, 'cls')]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /--arch llama trains language models/);
  });
});
