// A whole plan for one loaded scenario: evaluation, sensitivity, flips and the explained recommendation,
// in the one shape that `ajar plan --json` prints and the reports render.
import { recommend, type Recommendation } from './explain.js';
import { evaluate, type Metrics, type Projection, type Scorecard } from './model.js';
import { findFlips, sensitivity, type Sensitivity } from './sensitivity.js';
import type { LoadedScenario, Provenance, Scenario, Strategy } from './types.js';

export interface Plan {
  scenario: Scenario;
  /** Where each input came from; source 'default' marks an assumption to set. */
  provenance: Record<string, Provenance>;
  compute_cost_per_1m_usd: number;
  projections: Record<Strategy, Projection>;
  metrics: Record<Strategy, Metrics>;
  scorecard: Scorecard;
  /** 0..1 financial (normalised NPV) and combined scores per strategy. */
  financial_scores: Record<Strategy, number>;
  sensitivity: Sensitivity;
  recommendation: Recommendation;
}

export function buildPlan(loaded: LoadedScenario): Plan {
  const s = loaded.scenario;
  const e = evaluate(s);
  return {
    scenario: s,
    provenance: loaded.provenance,
    compute_cost_per_1m_usd: e.compute_cost_per_1m_usd,
    projections: e.projections,
    metrics: e.metrics,
    scorecard: e.scorecard,
    financial_scores: e.decision.financial,
    sensitivity: sensitivity(s),
    recommendation: recommend(s, e, findFlips(s)),
  };
}

/** Inputs of one provenance kind, e.g. 'default' (code defaults) or 'assumption' (marked in the scenario). */
export function inputsBySource(plan: Plan, source: Provenance['source']): [string, Provenance][] {
  return Object.entries(plan.provenance).filter(([, p]) => p.source === source);
}

/**
 * What the recommendation rests on, said in its heading rather than in a footer: how many inputs are assumptions
 * (marked ASSUMPTION in the scenario, or left at a code default), e.g. "resting on 43 inputs marked ASSUMPTION: check
 * them before acting on it". Empty when none are.
 */
export function assumptionNote(plan: Plan): string {
  const marked = inputsBySource(plan, 'assumption').length;
  const defaults = inputsBySource(plan, 'default').length;
  if (marked + defaults === 0) return '';
  const inputs = (n: number): string => `${n} input${n === 1 ? '' : 's'}`;
  const parts = [marked > 0 ? `${inputs(marked)} marked ASSUMPTION` : '',
    defaults > 0 ? `${marked > 0 ? defaults : inputs(defaults)} left at a default` : ''].filter((x) => x !== '');
  return `resting on ${parts.join(' and ')}: check them before acting on it`;
}
