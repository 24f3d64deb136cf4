// Reading ajar's own measurements into a scenario: bench JSON, a run's metrics.jsonl, a server's usage JSON.
// Each error names the scenario field that pointed at the file, and the file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadScenario, parseMetrics, parseUsage } from '../../src/plan/index.js';
import { isAjarError } from '../../src/tensor/errors.js';
import { SCENARIO_YAML, tempDir, yamlWith } from './fixtures.js';

function near(actual: number, expected: number, tol = 1e-9): void {
  assert.ok(Math.abs(actual - expected) <= tol * Math.max(1, Math.abs(expected)), `expected ${expected}, got ${actual}`);
}

function loadFails(dir: string, ...patterns: RegExp[]): void {
  assert.throws(() => loadScenario(join(dir, 'scenario.yaml')), (e: unknown) => {
    assert.ok(isAjarError(e));
    assert.equal(e.code, 'bad_scenario');
    for (const p of patterns) assert.match(e.message, p);
    return true;
  });
}

const src = { field: 'demand.from_usage', file: 'usage.json' };

/** Usage rows: one per day from `start` for `days` days, tokens given per day by f(dayIndex). */
function usageRows(start: string, days: number, f: (i: number) => [number, number]): string {
  const t0 = Date.parse(`${start}T00:00:00Z`);
  const rows = Array.from({ length: days }, (_, i) => {
    const [p, c] = f(i);
    return { key_id: 'k1', day: new Date(t0 + i * 86_400_000).toISOString().slice(0, 10), requests: 1,
      prompt_tokens: p, completion_tokens: c };
  });
  return JSON.stringify(rows);
}

test('throughput.from_bench reads tokens_per_s; paths are relative to the scenario file', () => {
  const bench = { workload: 'decode-gpt2', step_ms_median: 12.5, tokens_per_s: 640, peak_rss_mib: 900 };
  const text = yamlWith('  tokens_per_s:', '  from_bench: bench.json');
  const dir = tempDir({ 'scenario.yaml': text, 'bench.json': JSON.stringify(bench) });
  const { scenario, provenance } = loadScenario(join(dir, 'scenario.yaml'));
  assert.equal(scenario.throughput.tokens_per_s, 640);
  assert.equal(provenance['throughput.tokens_per_s'].source, 'measured');
  assert.match(provenance['throughput.tokens_per_s'].note!, /bench\.json \(workload decode-gpt2\)/);
});

test('a missing or malformed bench file is an error naming the field and the file', () => {
  const text = yamlWith('  tokens_per_s:', '  from_bench: results/bench.json');
  loadFails(tempDir({ 'scenario.yaml': text }), /^throughput\.from_bench: 'results\/bench\.json' does not exist/);
  loadFails(tempDir({ 'scenario.yaml': yamlWith('  tokens_per_s:', '  from_bench: b.json'), 'b.json': '{"x": 1' }),
    /throughput\.from_bench: 'b\.json' is not JSON/);
  loadFails(tempDir({ 'scenario.yaml': yamlWith('  tokens_per_s:', '  from_bench: b.json'),
    'b.json': '{"workload": "w", "tokens_per_s": 0}' }), /throughput\.from_bench: 'b\.json' has no tokens_per_s > 0/);
});

test('training.from_metrics: compute hours = last elapsed_s / 3600 x machines', () => {
  // The last line is a validation record without elapsed_s; the wall time is the last elapsed_s seen, 7200 s.
  const metrics = [
    { step: 100, train_loss: 2.1, lr: 0.001, tokens_per_s: 12000, elapsed_s: 3600 },
    { step: 200, train_loss: 1.9, lr: 0.001, tokens_per_s: 11000, elapsed_s: 7200 },
    { step: 200, val_loss: 2.0 },
  ].map((m) => JSON.stringify(m)).join('\n') + '\n';
  let text = yamlWith('  compute_hours:', '  from_metrics: run/metrics.jsonl\n  machines: 4');
  text = yamlWith('  adapter_compute_hours:', '  adapter_from_metrics: run/metrics.jsonl', text);
  const dir = tempDir({ 'scenario.yaml': text });
  mkdirSync(join(dir, 'run'));
  writeFileSync(join(dir, 'run', 'metrics.jsonl'), metrics);
  const { scenario, provenance } = loadScenario(join(dir, 'scenario.yaml'));
  // 7200 s / 3600 = 2 h x 4 machines = 8 machine-hours (the adapter run uses the same machines count).
  assert.equal(scenario.training.compute_hours, 8);
  assert.equal(scenario.training.adapter_compute_hours, 8);
  assert.equal(provenance['training.compute_hours'].source, 'measured');
  assert.equal(provenance['training.machines'].source, 'given');
  // throughput.from_metrics takes the median tokens_per_s: (12000 + 11000) / 2.
  assert.equal(parseMetrics(metrics, { field: 'throughput.from_metrics', file: 'm' }).tokens_per_s_median, 11500);
});

test('metrics.jsonl errors name the line', () => {
  const f = { field: 'training.from_metrics', file: 'm.jsonl' };
  assert.throws(() => parseMetrics('{"step": 1, "elapsed_s": 3}\nnot json\n', f),
    /training\.from_metrics: 'm\.jsonl' line 2 is not JSON/);
  assert.throws(() => parseMetrics('{"step": 1}\n', f), /has no line with elapsed_s/);
  assert.throws(() => parseMetrics('\n', f), /is empty/);
});

test('demand.from_usage: last 30 days scaled to a month; growth month over month', () => {
  // 60 days from 2024-01-01: the first 30 days 1e6 prompt + 2e5 completion a day, the last 30 days 10% more.
  const text = usageRows('2024-01-01', 60, (i) => (i < 30 ? [1e6, 2e5] : [1.1e6, 2.2e5]));
  const u = parseUsage(text, src);
  // Month = 365/12 = 30.4167 days: 1.1e6 x 30 days / 30 x 30.4167 = 33,458,333 prompt tokens a month.
  near(u.input_tokens_per_month, 1.1e6 * (365 / 12));
  near(u.output_tokens_per_month, 2.2e5 * (365 / 12));
  near(u.growth_per_month!, 0.1);
  assert.equal(u.window_days, 30);
  assert.equal(u.last_day, '2024-02-29');
});

test('demand.from_usage with less than two months needs growth_per_month from the scenario', () => {
  const text = usageRows('2024-03-01', 10, () => [3e6, 1e6]);
  const u = parseUsage(text, src);
  // 10 days of data: 3e6 x 10 / 10 days x 30.4167 days a month.
  assert.equal(u.window_days, 10);
  near(u.input_tokens_per_month, 3e6 * (365 / 12));
  assert.equal(u.growth_per_month, null);

  const scenario = SCENARIO_YAML.replace(/demand:\n.*\n.*\n.*\n/, 'demand:\n  from_usage: usage.json\n');
  loadFails(tempDir({ 'scenario.yaml': scenario, 'usage.json': text }),
    /demand\.growth_per_month is missing: usage\.json covers 2024-03-01\.\.2024-03-10/);
  const withGrowth = scenario.replace('  from_usage: usage.json\n', '  from_usage: usage.json\n  growth_per_month: 0.03\n');
  const dir = tempDir({ 'scenario.yaml': withGrowth, 'usage.json': text });
  const { scenario: s, provenance } = loadScenario(join(dir, 'scenario.yaml'));
  assert.equal(s.demand.growth_per_month, 0.03);
  assert.equal(provenance['demand.input_tokens_per_month'].source, 'measured');
});

test('usage errors name the row', () => {
  assert.throws(() => parseUsage('{}', src), /demand\.from_usage: 'usage\.json' is not a JSON array/);
  assert.throws(() => parseUsage('[]', src), /holds no usage rows/);
  assert.throws(() => parseUsage('[{"day": "2024-13-01", "prompt_tokens": 1, "completion_tokens": 1}]', src),
    /row 0: day must be 'YYYY-MM-DD', got "2024-13-01"/);
  assert.throws(() => parseUsage('[{"day": "2024-01-01", "prompt_tokens": -1, "completion_tokens": 1}]', src),
    /row 0: prompt_tokens must be a number >= 0, got -1/);
});

test('measured growth above 100%/month needs --allow-extreme too', () => {
  const text = usageRows('2024-01-01', 60, (i) => (i < 30 ? [1e6, 0] : [5e6, 0]));
  const scenario = SCENARIO_YAML.replace(/demand:\n.*\n.*\n.*\n/, 'demand:\n  from_usage: usage.json\n');
  const dir = tempDir({ 'scenario.yaml': scenario, 'usage.json': text });
  loadFails(dir, /demand\.from_usage: 'usage\.json' shows 400%\/month growth/);
  const s = loadScenario(join(dir, 'scenario.yaml'), { allowExtreme: true }).scenario;
  near(s.demand.growth_per_month, 4);
});
