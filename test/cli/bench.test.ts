// `ajar bench WORKLOAD --json`: the one-line summary issue 4 names, and clear errors for bad input.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runCli } from '../helpers/cli.js';

test('ajar bench train-baby --json prints workload, step_ms_median, tokens_per_s and peak_rss_mib', () => {
  const r = runCli(['bench', 'train-baby', '--steps', '2', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout) as Record<string, unknown>;
  assert.equal(j.workload, 'train-baby');
  for (const k of ['step_ms_median', 'tokens_per_s', 'peak_rss_mib']) assert.ok(typeof j[k] === 'number' && (j[k] as number) > 0, `${k}: ${String(j[k])}`);
  // train-baby is the shakespeare-char step: batch 12 x 64 tokens.
  const perStep = ((j.tokens_per_s as number) * (j.step_ms_median as number)) / 1000;
  assert.ok(Math.abs(perStep - 12 * 64) < 1e-6, `tokens per step ${perStep}`);
});

test('ajar bench: an unknown or missing workload is a one-line error with exit code 2', () => {
  for (const args of [['bench', 'train-huge'], ['bench']]) {
    const r = runCli(args);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /train-baby, train-gpt2, train-gpt2-lora, decode-gpt2, decode-gpt2-int8, train-llama, decode-llama/);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  }
});
