// The shapes shared by the plan modules: strategies and the resolved scenario (units as in schema.ts).
import type { Factor } from './schema.js';

export type Strategy = 'open' | 'closed' | 'hybrid';
export const STRATEGIES: readonly Strategy[] = ['open', 'closed', 'hybrid'];

export interface FixedCosts {
  engineering_usd_per_month: number;
  support_usd_per_month: number;
  hosting_usd_per_month: number;
}

/** A resolved scenario: every measurement read, every default applied. Units as in schema.ts. */
export interface Scenario {
  name: string;
  horizon_months: number;
  discount_rate_annual: number;
  hardware: { usd_per_hour: number; cores: number; utilisation: number; min_machines: number };
  throughput: { tokens_per_s: number; measured_cores: number; input_token_cost: number };
  /** compute_hours is total machine-hours (from_metrics: elapsed_s / 3600 * machines). */
  training: { compute_hours: number; usd_per_hour: number; adapter_compute_hours: number };
  demand: { input_tokens_per_month: number; output_tokens_per_month: number; growth_per_month: number };
  pricing: { input_per_1m_usd: number; output_per_1m_usd: number };
  fixed_costs: Record<Strategy, FixedCosts>;
  open: {
    adopters_month1: number;
    adopter_growth_per_month: number;
    paid_conversion: number;
    paid_price_usd_per_month: number;
    hosted_tokens_per_paid_month: number;
  };
  hybrid: { base_share: number; api_demand_share: number; price_multiplier: number };
  risk: {
    ip_sensitivity: number;
    privacy_requirement: number;
    competitive_pressure: number;
    user_flexibility_need: number;
    team_ops_capability: number;
  };
  weights: { financial: number; factors: Record<Factor, number> };
  sensitivity: { delta: number };
}

/**
 * Where a resolved number came from: given in the scenario, given but marked '# ASSUMPTION' there,
 * measured from a file ajar wrote, or a code default. 'assumption' and 'default' are the ones to set.
 */
export interface Provenance {
  source: 'given' | 'assumption' | 'measured' | 'default';
  note?: string;
}

export interface LoadedScenario {
  scenario: Scenario;
  provenance: Record<string, Provenance>;
}
