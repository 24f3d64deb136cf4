// ajar plan's hybrid strategy priced from a measured adapter run: a real `ajar train --lora` run's metrics.jsonl
// read through training.adapter_from_metrics (compute hours = its last elapsed_s / 3600, paid only by the hybrid),
// with the provenance naming it a LoRA run; a full run's folder is named as one.
import assert from 'node:assert/strict';
import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { describeRun, loadScenario, project } from '../../src/plan/index.js';
import { runCli } from '../helpers/cli.js';
import { goldenPath } from '../helpers/golden.js';
import { tempDir, yamlWith } from './fixtures.js';

const dir = tempDir();
const run = join(dir, 'lora-run');

/** The last elapsed_s in a metrics.jsonl, read line by line (the definition the plan documents). */
function lastElapsed(path: string): number {
  let last = NaN;
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (line.trim() === '') continue;
    const v = JSON.parse(line) as { elapsed_s?: number };
    if (typeof v.elapsed_s === 'number') last = v.elapsed_s;
  }
  return last;
}

describe('ajar plan: the hybrid adapter cost from a LoRA run', () => {
  before(() => {
    const r = runCli(['train', '--lora', '--init-from', goldenPath('gpt2-tiny'), '--data', goldenPath('release/train.txt'),
      '--lora-r', '4', '--lora-targets', 'c_attn', '--block-size', '32', '--batch-size', '4', '--max-iters', '4',
      '--eval-interval', '2', '--eval-iters', '1', '--log-interval', '1', '--sample-tokens', '0', '--out', run]);
    assert.equal(r.code, 0, r.stderr);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('training.adapter_from_metrics reads the LoRA run: hours from its last elapsed_s, provenance says LoRA', () => {
    const elapsed = lastElapsed(join(run, 'metrics.jsonl'));
    assert.ok(elapsed > 0, `elapsed_s ${elapsed}`);
    writeFileSync(join(dir, 'scenario.yaml'), yamlWith('  adapter_compute_hours:', '  adapter_from_metrics: lora-run/metrics.jsonl'));
    const { scenario, provenance } = loadScenario(join(dir, 'scenario.yaml'));
    assert.equal(scenario.training.adapter_compute_hours, elapsed / 3600);
    const p = provenance['training.adapter_compute_hours'];
    assert.equal(p.source, 'measured');
    assert.match(p.note!, /from lora-run\/metrics\.jsonl \(a LoRA adapter run \(r 4 on c_attn\)\)/);
    // Only the hybrid pays for the adapter: its month-0 training cost exceeds closed's by exactly those hours.
    const extra = project(scenario, 'hybrid').upfront_usd - project(scenario, 'closed').upfront_usd;
    const want = (elapsed / 3600) * scenario.training.usd_per_hour;
    assert.ok(Math.abs(extra - want) <= 1e-9 * Math.max(1, want), `${extra} vs ${want}`);
  });

  it('describeRun tells a LoRA run from a full run and from a bare file', () => {
    assert.match(describeRun(join(run, 'metrics.jsonl')), /^a LoRA adapter run \(r 4 on c_attn\)$/);
    const full = join(dir, 'full-run');
    cpSync(goldenPath('gpt2-tiny'), full, { recursive: true });
    assert.match(describeRun(join(full, 'metrics.jsonl')), /^a full training run/);
    assert.match(describeRun(join(dir, 'metrics.jsonl')), /^a run of unknown kind/);
  });
});
