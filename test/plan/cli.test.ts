// `ajar plan` end to end in-process: a temp scenario through the CLI, its exit codes, its output and files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { main } from '../../src/cli/main.js';
import { runPlan, type PlanIo } from '../../src/cli/plan.js';
import { isAjarError } from '../../src/tensor/errors.js';
import { SCENARIO_YAML, tempDir, yamlWith } from './fixtures.js';

function capture(color = false): { io: PlanIo; out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { out: (t) => out.push(t), err: (t) => err.push(t), color, columns: 100 }, out, err };
}

/** Run the real dispatcher with console.error captured; returns the exit code and what went to stderr. */
async function mainCapturing(argv: string[]): Promise<{ code: number; stderr: string; stdout: string }> {
  const errors: string[] = [];
  const logs: string[] = [];
  const origErr = console.error;
  const origLog = console.log;
  console.error = (...a: unknown[]) => errors.push(a.join(' '));
  console.log = (...a: unknown[]) => logs.push(a.join(' '));
  try {
    return { code: await main(argv), stderr: errors.join('\n'), stdout: logs.join('\n') };
  } finally {
    console.error = origErr;
    console.log = origLog;
  }
}

test('ajar plan SCENARIO prints the table and exits 0, without colour when not a TTY', async () => {
  const dir = tempDir({ 'scenario.yaml': SCENARIO_YAML });
  const { io, out } = capture(false);
  assert.equal(await runPlan([join(dir, 'scenario.yaml')], io), 0);
  const text = out.join('\n');
  assert.match(text, /^ajar plan: test scenario/);
  assert.match(text, /NPV\s+-?\$[\d.]+k?\s+-?\$[\d.]+k?\s+-?\$[\d.]+k?/);
  assert.match(text, /break-even month/);
  assert.match(text, /Recommendation \(resting on \d+ inputs left at a default: check them before acting on it\): (open|closed|hybrid)\s+\(combined\s+score/);
  assert.doesNotMatch(text, /\x1b\[/);
  // With colour (a TTY), the winner is bold.
  const tty = capture(true);
  await runPlan([join(dir, 'scenario.yaml')], tty.io);
  assert.match(tty.out.join('\n'), /\x1b\[1m/);
});

test('--json prints one object with projections, metrics, sensitivity, scorecard and recommendation', async () => {
  const dir = tempDir({ 'scenario.yaml': SCENARIO_YAML });
  const { io, out } = capture();
  assert.equal(await runPlan([join(dir, 'scenario.yaml'), '--json'], io), 0);
  assert.equal(out.length, 1);
  const plan = JSON.parse(out[0]);
  for (const k of ['projections', 'metrics', 'sensitivity', 'scorecard', 'recommendation', 'scenario', 'provenance']) {
    assert.ok(k in plan, `--json lacks ${k}`);
  }
  assert.equal(plan.projections.closed.months.length, 12);
  assert.ok(['open', 'closed', 'hybrid'].includes(plan.recommendation.strategy));
  assert.equal(typeof plan.metrics.hybrid.npv_usd, 'number');
});

test('--report writes report.md, cash.svg and tornado.svg; a second run without --force is refused', async () => {
  const dir = tempDir({ 'scenario.yaml': SCENARIO_YAML });
  const report = join(dir, 'out', 'report');
  const { io, out } = capture();
  assert.equal(await runPlan([join(dir, 'scenario.yaml'), '--report', report], io), 0);
  assert.deepEqual(readdirSync(report).sort(), ['cash.svg', 'report.md', 'tornado.svg']);
  assert.match(out.join('\n'), /wrote .*report\.md/);
  assert.match(readFileSync(join(report, 'report.md'), 'utf8'), /^# ajar plan: test scenario/);
  await assert.rejects(runPlan([join(dir, 'scenario.yaml'), '--report', report], capture().io),
    (e: unknown) => isAjarError(e) && /exists and is not empty/.test(e.message));
  const again = capture();
  assert.equal(await runPlan([join(dir, 'scenario.yaml'), '--report', report, '--force', '--json'], again.io), 0);
  JSON.parse(again.out[0]);
  assert.match(again.err.join('\n'), /wrote /);
});

test('bad input exits 2 through the dispatcher with one line naming the field', async () => {
  const dir = tempDir({ 'scenario.yaml': yamlWith('  output_per_1m_usd:', '  output_per_1m_usd: -3') });
  const r = await mainCapturing(['plan', join(dir, 'scenario.yaml')]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^ajar plan: pricing\.output_per_1m_usd must be >= 0, got -3 \(.*scenario\.yaml:21\)$/);
  assert.equal(r.stderr.split('\n').length, 1);

  const extreme = tempDir({ 'scenario.yaml': yamlWith('  growth_per_month:', '  growth_per_month: 5') });
  const e = await mainCapturing(['plan', join(extreme, 'scenario.yaml')]);
  assert.equal(e.code, 2);
  assert.match(e.stderr, /demand\.growth_per_month is 5 \(500%\/month\).*--allow-extreme/);
  assert.equal((await mainCapturing(['plan', join(extreme, 'scenario.yaml'), '--allow-extreme', '--json'])).code, 0);

  assert.equal((await mainCapturing(['plan', join(dir, 'nope.yaml')])).code, 2);
  assert.equal((await mainCapturing(['plan'])).code, 2);
  assert.equal((await mainCapturing(['plan', 'a.yaml', '--colour'])).code, 2);
  const f = await mainCapturing(['plan', join(dir, 'scenario.yaml'), '--force']);
  assert.equal(f.code, 2);
  assert.match(f.stderr, /--force only applies with --report/);
});

test('a refused report leaves nothing behind; --help exits 0', async () => {
  const dir = tempDir({ 'scenario.yaml': yamlWith('  cores:', '  cores: 0') });
  const report = join(dir, 'report');
  const r = await mainCapturing(['plan', join(dir, 'scenario.yaml'), '--report', report]);
  assert.equal(r.code, 2);
  assert.equal(existsSync(report), false);
  assert.deepEqual(readdirSync(dir), ['scenario.yaml']);
  const h = await mainCapturing(['plan', '--help']);
  assert.equal(h.code, 0);
  assert.match(h.stdout, /usage: ajar plan SCENARIO\.yaml/);
});
