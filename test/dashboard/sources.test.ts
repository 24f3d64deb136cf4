// The dashboard's data sources without a server: runs found under --runs and read from a byte offset (whole lines
// only, a shrunk file starts again), and the plan recomputed with an edited input (bounds checked).
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { planView, runSource } from '../../src/dashboard/index.js';
import { repoRoot } from '../helpers/cli.js';

describe('dashboard sources', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'ajar-dash-src-'));
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it('lists runs by folder and reads whole lines from an offset', () => {
    mkdirSync(join(tmp, 'a', 'b'), { recursive: true });
    mkdirSync(join(tmp, '.hidden'));
    writeFileSync(join(tmp, '.hidden', 'metrics.jsonl'), '{"step":1}\n');
    const first = '{"step":1,"train_loss":2.5}\n';
    writeFileSync(join(tmp, 'a', 'b', 'metrics.jsonl'), `${first}{"step":2,"train_lo`);
    writeFileSync(join(tmp, 'a', 'training_args.json'), '{}');
    const src = runSource(tmp);
    assert.deepEqual(src.list().map((r) => r.id), ['a/b']);
    const c1 = src.read('a/b', 0);
    assert.deepEqual(c1.rows, [{ step: 1, train_loss: 2.5 }]);
    assert.equal(c1.offset, Buffer.byteLength(first));
    writeFileSync(join(tmp, 'a', 'b', 'metrics.jsonl'), `${first}{"step":2,"train_loss":2.25}\nnot json\n`);
    const c2 = src.read('a/b', c1.offset);
    assert.deepEqual(c2.rows, [{ step: 2, train_loss: 2.25 }]);
    assert.equal(c2.reset, false);
    writeFileSync(join(tmp, 'a', 'b', 'metrics.jsonl'), '{"step":1}\n'); // restarted without --resume
    const c3 = src.read('a/b', c2.offset);
    assert.equal(c3.reset, true);
    assert.deepEqual(c3.rows, [{ step: 1 }]);
    assert.throws(() => src.read('../etc', 0), { code: 'not_found' });
    assert.throws(() => src.read('.hidden', 0), { code: 'not_found' });
  });

  it('recomputes the plan with an edited input, and refuses one out of bounds or unknown', () => {
    const scenario = readFileSync(join(repoRoot, 'examples', 'plan', 'scenario.yaml'), 'utf8');
    const base = planView({ scenario, fileName: 'scenario.yaml', overrides: {} }, tmp);
    const price = base.inputs.find((i) => i.path === 'pricing.output_per_1m_usd')!;
    assert.ok(price.value > 0);
    const edited = planView({ scenario, fileName: 'scenario.yaml', overrides: { 'pricing.output_per_1m_usd': price.value * 2 } }, tmp);
    assert.equal(edited.plan.scenario.pricing.output_per_1m_usd, price.value * 2);
    // Doubling the API's output price raises the closed strategy's revenue.
    assert.ok(edited.plan.metrics.closed.total_revenue_usd > base.plan.metrics.closed.total_revenue_usd);
    assert.match(edited.cash_svg, /^<svg/);
    assert.throws(() => planView({ scenario, fileName: 's', overrides: { 'pricing.output_per_1m_usd': -1 } }, tmp),
      { code: 'bad_scenario', message: /pricing\.output_per_1m_usd must be >= 0, got -1/ });
    assert.throws(() => planView({ scenario, fileName: 's', overrides: { 'no.such': 1 } }, tmp), { code: 'bad_scenario' });
  });
});
