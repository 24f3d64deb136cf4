// Scenario parsing and validation: every mistake is an AjarError('bad_scenario') naming the field path.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseScenario } from '../../src/plan/index.js';
import { isAjarError } from '../../src/tensor/errors.js';
import { SCENARIO_YAML, yamlWith } from './fixtures.js';

/** Assert that parsing fails with bad_scenario and a message matching every pattern. */
function rejects(text: string, ...patterns: RegExp[]): void {
  assert.throws(() => parseScenario(text, { fileName: 's.yaml' }), (e: unknown) => {
    assert.ok(isAjarError(e), `not an AjarError: ${String(e)}`);
    assert.equal(e.code, 'bad_scenario');
    for (const p of patterns) assert.match(e.message, p);
    return true;
  });
}

test('a complete scenario parses; defaults are applied and marked', () => {
  const { scenario: s, provenance } = parseScenario(SCENARIO_YAML, { fileName: 's.yaml' });
  assert.equal(s.name, 'test scenario');
  assert.equal(s.horizon_months, 12);
  assert.equal(s.pricing.output_per_1m_usd, 1.5);
  assert.equal(s.demand.input_tokens_per_month, 1e9);
  // Not given: measured_cores (-> hardware.cores), training.usd_per_hour (-> hardware.usd_per_hour),
  // sensitivity.delta (-> 0.2). Each is a default the report lists as an assumption.
  assert.equal(s.throughput.measured_cores, 8);
  assert.equal(s.training.usd_per_hour, 1.0);
  assert.equal(s.sensitivity.delta, 0.2);
  for (const k of ['throughput.measured_cores', 'training.usd_per_hour', 'sensitivity.delta']) {
    assert.equal(provenance[k].source, 'default', k);
  }
  assert.equal(provenance['pricing.output_per_1m_usd'].source, 'given');
  // training.machines only matters when a run's metrics are read; here it is not, so it is not listed.
  assert.equal(provenance['training.machines'], undefined);
});

test('fields whose line (or group line) says # ASSUMPTION are marked as assumptions', () => {
  let text = yamlWith('  output_per_1m_usd:', '  output_per_1m_usd: 1.5   # USD per 1M  # ASSUMPTION: set this');
  text = yamlWith('risk:', 'risk:   # ASSUMPTION: set these', text);
  const { provenance } = parseScenario(text);
  assert.equal(provenance['pricing.output_per_1m_usd'].source, 'assumption');
  assert.equal(provenance['pricing.input_per_1m_usd'].source, 'given');
  assert.equal(provenance['risk.ip_sensitivity'].source, 'assumption');
  assert.equal(provenance['risk.team_ops_capability'].source, 'assumption');
});

test('a negative price names the field, the bound, the value and the line', () => {
  rejects(yamlWith('  output_per_1m_usd:', '  output_per_1m_usd: -3'),
    /^pricing\.output_per_1m_usd must be >= 0, got -3 \(s\.yaml:21\)$/);
});

test('a missing field names its path, meaning and unit', () => {
  rejects(SCENARIO_YAML.replace('  usd_per_hour: 1.0\n', ''),
    /hardware\.usd_per_hour is missing: rental price of one serving machine, in USD per machine-hour/);
  rejects(SCENARIO_YAML.replace(/pricing:\n.*\n.*\n/, ''), /^pricing is missing/);
  rejects(yamlWith('  output_tokens_per_month:', ''), /demand\.output_tokens_per_month is missing/);
});

test('unknown fields are errors, with a suggestion for typos', () => {
  rejects(yamlWith('  output_per_1m_usd:', '  output_per_1m_uds: 1.5'),
    /pricing\.output_per_1m_uds is not a known field; did you mean 'output_per_1m_usd'\?/);
  rejects(`${SCENARIO_YAML}colour: blue\n`, /^colour is not a known field/);
});

test('growth above 100%/month needs --allow-extreme', () => {
  const text = yamlWith('  growth_per_month:', '  growth_per_month: 5');
  rejects(text, /demand\.growth_per_month is 5 \(500%\/month\).*--allow-extreme/);
  const { scenario } = parseScenario(text, { allowExtreme: true });
  assert.equal(scenario.demand.growth_per_month, 5);
  // Exactly 100%/month is allowed; -100% or below is impossible.
  parseScenario(yamlWith('  growth_per_month:', '  growth_per_month: 1'));
  rejects(yamlWith('  growth_per_month:', '  growth_per_month: -1'), /demand\.growth_per_month must be > -1/);
});

test('units: percentages work for shares and rates, other unit strings are refused', () => {
  const ok = parseScenario(yamlWith('  growth_per_month:', "  growth_per_month: '8%'")).scenario;
  assert.equal(ok.demand.growth_per_month, 0.08);
  const share = parseScenario(yamlWith('  utilisation:', '  utilisation: 60%')).scenario;
  assert.equal(share.hardware.utilisation, 0.6);
  rejects(yamlWith('  usd_per_hour:', "  usd_per_hour: '2.5 $/h'"),
    /hardware\.usd_per_hour must be a bare number in USD per machine-hour, got '2\.5 \$\/h'/);
  rejects(yamlWith('  growth_per_month:', '  growth_per_month: 8%/year'), /demand\.growth_per_month must be a bare number/);
  // A share written as a percentage number: 60 is not a fraction; the hint says what was meant.
  rejects(yamlWith('  utilisation:', '  utilisation: 60'),
    /hardware\.utilisation must be a fraction in \[0, 1\], got 60; did you mean 0\.6 \(60%\)\?/);
  rejects(yamlWith('  cores:', '  cores: 7.5'), /hardware\.cores must be a whole number/);
  rejects(yamlWith('  cores:', '  cores: true'), /hardware\.cores must be a number in CPU cores per machine, got true/);
  rejects(yamlWith('  utilisation:', '  utilisation: 0'), /hardware\.utilisation must be > 0/);
  rejects(yamlWith('  tokens_per_s:', '  tokens_per_s: .inf'), /throughput\.tokens_per_s must be a finite number/);
});

test('either/or fields: exactly one source of each measurement', () => {
  rejects(yamlWith('  tokens_per_s:', '  tokens_per_s: 500\n  from_bench: bench.json'),
    /throughput has both throughput\.from_bench and throughput\.tokens_per_s; keep exactly one/);
  rejects(SCENARIO_YAML.replace('  tokens_per_s: 500\n', ''), /throughput needs one of throughput\.from_bench/);
  rejects(SCENARIO_YAML.replace('  compute_hours: 100\n', ''), /training needs one of training\.from_metrics, training\.compute_hours/);
  rejects(yamlWith('  compute_hours:', '  compute_hours: 100\n  machines: 4'), /training\.machines only applies to training\.from_metrics/);
  rejects(yamlWith('  input_tokens_per_month:', '  input_tokens_per_month: 1.0e9\n  from_usage: usage.json'),
    /demand\.input_tokens_per_month conflicts with demand\.from_usage/);
});

test('structure errors: not YAML, not a mapping, a group given a scalar, all weights zero', () => {
  rejects('hardware: [1, 2\n', /^s\.yaml:\d+ is not valid YAML/);
  rejects('- 1\n- 2\n', /s\.yaml must be a YAML mapping/);
  rejects(SCENARIO_YAML.replace(/pricing:\n.*\n.*\n/, 'pricing: 3\n'), /pricing must be a mapping of fields/);
  rejects(SCENARIO_YAML.replace(/factors: \{.*\}/, 'factors: {ip_protection: 0, cost: 0, user_flexibility: 0, ' +
    'team_capability: 0, market_strategy: 0, data_privacy: 0}'), /weights\.factors must not all be 0/);
  rejects(yamlWith('horizon_months:', 'horizon_months: 0'), /horizon_months must be >= 1, got 0/);
  rejects(yamlWith('  ip_sensitivity:', '  ip_sensitivity: 1.5'), /risk\.ip_sensitivity must be a fraction in \[0, 1\]/);
  rejects(yamlWith('  output_per_1m_usd:', '  output_per_1m_usd:'), /pricing\.output_per_1m_usd is missing/);
});
