// Open releases load outside ajar: plain PyTorch, reading only config.json and model.safetensors and tokenising
// without ajar (test/golden/release/reload_release.py), reproduces `ajar eval`'s loss within 1e-4 relative. The
// committed expected.json was written by make_release_golden.py; the last test reruns the script live when
// /usr/bin/python3 can import torch.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli } from '../helpers/cli.js';
import { goldenPath, readGoldenJson } from '../helpers/golden.js';
import { copyGpt2Tiny, tempDir } from './helpers.js';

interface Reference {
  loss: number;
  tokens: number;
  block_size: number;
}

const expected = readGoldenJson<{ char_tiny: Reference; gpt2_tiny: Reference }>('release/expected.json');
const PYTHON = '/usr/bin/python3';
const charRelease = goldenPath('release/char-tiny');
const charText = goldenPath('release/eval.txt');
const gpt2Text = goldenPath('gpt2-tiny/eval.txt');

function ajarEval(model: string, data: string): { loss: number; tokens: number } {
  const r = runCli(['eval', '--model', model, '--data', data, '--json']);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as { loss: number; tokens: number };
}

function assertClose(got: { loss: number; tokens: number }, want: { loss: number; tokens: number }, what: string): void {
  assert.equal(got.tokens, want.tokens, `${what}: tokens`);
  const rel = Math.abs(got.loss - want.loss) / Math.abs(want.loss);
  assert.ok(rel < 1e-4, `${what}: ajar ${got.loss} vs PyTorch ${want.loss} (relative ${rel.toExponential(2)})`);
}

/** Why the live PyTorch run cannot happen here, or null when it can. */
function torchMissing(): string | null {
  const r = spawnSync(PYTHON, ['-c', 'import torch, numpy, regex'], { encoding: 'utf8' });
  if (r.error) return `${PYTHON} cannot run (${r.error.message})`;
  if (r.status !== 0) return `${PYTHON} cannot import torch, numpy and regex (${r.stderr.trim().split('\n').at(-1)})`;
  return null;
}

describe('open releases reproduce ajar eval in plain PyTorch', () => {
  const tmp = tempDir('ajar-pytorch-');
  const gpt2Release = join(tmp, 'gpt2-release');
  before(() => {
    const r = runCli(['release', 'open', '--model', copyGpt2Tiny(join(tmp, 'gpt2')), '--out', gpt2Release, '--license', 'apache-2.0', '--no-eval']);
    assert.equal(r.code, 0, r.stderr);
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it('the committed char-level release: ajar eval matches the recorded PyTorch loss', () => {
    assert.equal(runCli(['verify', charRelease]).code, 0, 'the fixture is intact');
    assertClose(ajarEval(charRelease, charText), expected.char_tiny, 'char-tiny');
    const config = JSON.parse(readFileSync(join(charRelease, 'config.json'), 'utf8')) as { n_positions: number };
    assert.equal(config.n_positions, expected.char_tiny.block_size, 'ajar eval windows by the context, as the script does');
  });

  it('a fresh open release of gpt2-tiny: ajar eval matches the recorded PyTorch loss', () => {
    assertClose(ajarEval(gpt2Release, gpt2Text), expected.gpt2_tiny, 'gpt2-tiny release');
  });

  const missing = torchMissing();
  it('reload_release.py, run now, agrees with ajar eval on both releases', { skip: missing ?? undefined }, () => {
    const script = goldenPath('release/reload_release.py');
    for (const [release, text] of [[charRelease, charText], [gpt2Release, gpt2Text]]) {
      const r = spawnSync(PYTHON, [script, release, text], { encoding: 'utf8', timeout: 300_000 });
      assert.equal(r.status, 0, r.stderr);
      const torch = JSON.parse(r.stdout) as { loss: number; tokens: number };
      assertClose(ajarEval(release, text), torch, release);
    }
  });
});

describe('open releases of the Llama family load as transformers computes them', () => {
  const tmp = tempDir('ajar-pytorch-llama-');
  const text = goldenPath('llama/eval.txt');
  const names = ['llama-tiny', 'qwen2-tiny'];
  before(() => {
    for (const name of names) {
      // A copy: a release records itself in its model folder (ajar_releases.jsonl), and the fixture stays as committed.
      const model = join(tmp, `${name}-model`);
      cpSync(goldenPath(`llama/${name}`), model, { recursive: true });
      const r = runCli(['release', 'open', '--model', model, '--out', join(tmp, name), '--license', 'apache-2.0', '--no-eval']);
      assert.equal(r.code, 0, r.stderr);
    }
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it('a release keeps the checkpoint: ajar eval gives the loss make_llama_tiny.py computed in PyTorch', () => {
    for (const name of names) {
      const ref = readGoldenJson<{ eval: Record<string, { loss: number; tokens: number }> }>(`llama/${name}/expected.json`).eval['256'];
      assertClose(ajarEval(join(tmp, name), text), ref, name);
      const config = JSON.parse(readFileSync(join(tmp, name, 'config.json'), 'utf8')) as Record<string, unknown>;
      assert.equal(config.max_position_embeddings, 256);
    }
  });

  const missing = torchMissing();
  it('reload_release.py, run now on the released folders, agrees with ajar eval', { skip: missing ?? undefined }, () => {
    const script = goldenPath('release/reload_release.py');
    for (const name of names) {
      const r = spawnSync(PYTHON, [script, join(tmp, name), text], { encoding: 'utf8', timeout: 300_000 });
      assert.equal(r.status, 0, r.stderr);
      assertClose(ajarEval(join(tmp, name), text), JSON.parse(r.stdout) as { loss: number; tokens: number }, name);
    }
  });
});
