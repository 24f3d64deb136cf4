// Scenarios for the plan tests: a small one whose numbers are easy to follow by hand, a balanced one where
// the recommendation sits near a boundary (so direction tests can move it), and scenario text for file tests.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Scenario } from '../../src/plan/index.js';

/** Annual rate whose monthly equivalent is exactly 1%: 1.01^12 - 1. */
export const ANNUAL_FOR_1PCT_MONTHLY = Math.pow(1.01, 12) - 1;

/**
 * Hand-computable: each machine does 1000 tok/s x (8 / 4 cores) = 2000 tok/s; at 50% utilisation a paid hour
 * serves 2000 x 3600 x 0.5 = 3.6e6 generated-token equivalents. Month 1 closed demand is 7.2e9 prompt +
 * 3.6e9 generated tokens = 3.6e9 + 0.5 x 7.2e9 = 7.2e9 equivalents = 2000 machine-hours.
 */
export function handScenario(): Scenario {
  return {
    name: 'hand',
    horizon_months: 3,
    discount_rate_annual: ANNUAL_FOR_1PCT_MONTHLY,
    hardware: { usd_per_hour: 2, cores: 8, utilisation: 0.5, min_machines: 1 },
    throughput: { tokens_per_s: 1000, measured_cores: 4, input_token_cost: 0.5 },
    training: { compute_hours: 100, usd_per_hour: 3, adapter_compute_hours: 20 },
    demand: { input_tokens_per_month: 7.2e9, output_tokens_per_month: 3.6e9, growth_per_month: 0.1 },
    pricing: { input_per_1m_usd: 0.5, output_per_1m_usd: 2 },
    fixed_costs: {
      open: { engineering_usd_per_month: 400, support_usd_per_month: 100, hosting_usd_per_month: 0 },
      closed: { engineering_usd_per_month: 1000, support_usd_per_month: 500, hosting_usd_per_month: 300 },
      hybrid: { engineering_usd_per_month: 1500, support_usd_per_month: 500, hosting_usd_per_month: 300 },
    },
    open: { adopters_month1: 10, adopter_growth_per_month: 0, paid_conversion: 0.2, paid_price_usd_per_month: 1000,
      hosted_tokens_per_paid_month: 1.8e9 },
    hybrid: { base_share: 0.5, api_demand_share: 0.5, price_multiplier: 1.5 },
    risk: { ip_sensitivity: 0.8, privacy_requirement: 0.5, competitive_pressure: 0.25, user_flexibility_need: 0.4,
      team_ops_capability: 0.5 },
    weights: { financial: 0.5, factors: { ip_protection: 2, cost: 1, user_flexibility: 1, team_capability: 1,
      market_strategy: 1, data_privacy: 2 } },
    sensitivity: { delta: 0.2 },
  };
}

/**
 * The example scenario's numbers with demand at 60% and IP weighted 4: open wins at low IP sensitivity and
 * closed at high, so moving one input moves the recommendation.
 */
export function balancedScenario(): Scenario {
  return {
    name: 'balanced',
    horizon_months: 24,
    discount_rate_annual: 0.12,
    hardware: { usd_per_hour: 0.68, cores: 16, utilisation: 0.5, min_machines: 2 },
    throughput: { tokens_per_s: 400, measured_cores: 16, input_token_cost: 0.1 },
    training: { compute_hours: 300, usd_per_hour: 2.5, adapter_compute_hours: 40 },
    demand: { input_tokens_per_month: 1.2e10, output_tokens_per_month: 2.4e9, growth_per_month: 0.08 },
    pricing: { input_per_1m_usd: 0.5, output_per_1m_usd: 2 },
    fixed_costs: {
      open: { engineering_usd_per_month: 6000, support_usd_per_month: 2000, hosting_usd_per_month: 200 },
      closed: { engineering_usd_per_month: 12000, support_usd_per_month: 3000, hosting_usd_per_month: 1500 },
      hybrid: { engineering_usd_per_month: 14000, support_usd_per_month: 3500, hosting_usd_per_month: 1700 },
    },
    open: { adopters_month1: 30, adopter_growth_per_month: 0.1, paid_conversion: 0.08, paid_price_usd_per_month: 1500,
      hosted_tokens_per_paid_month: 2e8 },
    hybrid: { base_share: 0.5, api_demand_share: 0.6, price_multiplier: 1.2 },
    risk: { ip_sensitivity: 0.6, privacy_requirement: 0.4, competitive_pressure: 0.6, user_flexibility_need: 0.5,
      team_ops_capability: 0.5 },
    weights: { financial: 0.5, factors: { ip_protection: 4, cost: 1, user_flexibility: 1, team_capability: 1,
      market_strategy: 1, data_privacy: 1 } },
    sensitivity: { delta: 0.2 },
  };
}

/** A complete, valid scenario file (every required field, no measurement files). */
export const SCENARIO_YAML = `name: test scenario
horizon_months: 12
discount_rate_annual: 0.1
hardware:
  usd_per_hour: 1.0
  cores: 8
  utilisation: 0.5
  min_machines: 1
throughput:
  tokens_per_s: 500
  input_token_cost: 0.2
training:
  compute_hours: 100
  adapter_compute_hours: 10
demand:
  input_tokens_per_month: 1.0e9
  output_tokens_per_month: 2.0e8
  growth_per_month: 0.05
pricing:
  input_per_1m_usd: 0.5
  output_per_1m_usd: 1.5
fixed_costs:
  open: {engineering_usd_per_month: 1000, support_usd_per_month: 200, hosting_usd_per_month: 50}
  closed: {engineering_usd_per_month: 2000, support_usd_per_month: 300, hosting_usd_per_month: 100}
  hybrid: {engineering_usd_per_month: 2500, support_usd_per_month: 300, hosting_usd_per_month: 100}
open:
  adopters_month1: 10
  adopter_growth_per_month: 0.05
  paid_conversion: 0.1
  paid_price_usd_per_month: 500
  hosted_tokens_per_paid_month: 0
hybrid:
  base_share: 0.5
  api_demand_share: 0.7
  price_multiplier: 1.0
risk:
  ip_sensitivity: 0.5
  privacy_requirement: 0.5
  competitive_pressure: 0.5
  user_flexibility_need: 0.5
  team_ops_capability: 0.5
weights:
  financial: 0.5
  factors: {ip_protection: 1, cost: 1, user_flexibility: 1, team_capability: 1, market_strategy: 1, data_privacy: 1}
`;

/** SCENARIO_YAML with one line replaced (matched by its start, e.g. '  output_per_1m_usd:'). */
export function yamlWith(lineStart: string, replacement: string, text = SCENARIO_YAML): string {
  const lines = text.split('\n');
  const i = lines.findIndex((l) => l.startsWith(lineStart));
  if (i < 0) throw new Error(`fixture has no line starting '${lineStart}'`);
  lines[i] = replacement;
  return lines.join('\n');
}

/** A fresh temp directory holding the given files. */
export function tempDir(files: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'ajar-plan-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}
