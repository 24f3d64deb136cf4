// The economics of open, closed and hybrid: pure functions from a resolved Scenario to monthly projections,
// metrics (NPV, break-even, cost per 1M tokens), the factor scorecard and the combined decision.
// Every formula here is written out, with units, in docs/plan.md; the names below match it.
import { FACTORS, type Factor } from './schema.js';
import { STRATEGIES, type Scenario, type Strategy } from './types.js';

/** Hours in the model's month: 8760 hours a year / 12. */
export const HOURS_PER_MONTH = 730;

/** Monthly discount rate equivalent to an annual one: (1 + r_year)^(1/12) - 1. */
export function monthlyRate(annual: number): number {
  return Math.pow(1 + annual, 1 / 12) - 1;
}

/**
 * Net present value of cash flows at month ends: cashFlows[0] is month 0 (today, undiscounted),
 * cashFlows[m] is month m, discounted by (1 + r_month)^m.
 */
export function npv(annualRate: number, cashFlows: readonly number[]): number {
  const r = monthlyRate(annualRate);
  let total = 0;
  for (let m = 0; m < cashFlows.length; m++) total += cashFlows[m] / Math.pow(1 + r, m);
  return total;
}

/** First month m >= 1 whose cumulative cash is >= 0; cumulative[0] is month 0. Null when none is. */
export function breakEvenMonth(cumulative: readonly number[]): number | null {
  for (let m = 1; m < cumulative.length; m++) if (cumulative[m] >= 0) return m;
  return null;
}

/** Generated tokens per second one serving machine sustains: measured rate scaled linearly by cores. */
export function machineTokensPerS(s: Scenario): number {
  return s.throughput.tokens_per_s * (s.hardware.cores / s.throughput.measured_cores);
}

/**
 * Hardware cost of 1M generated tokens (or 1M / input_token_cost prompt tokens), in USD:
 * usd_per_hour / (tokens_per_s * 3600 s/h * utilisation) * 1e6.
 */
export function computeCostPer1M(usdPerHour: number, tokensPerS: number, utilisation: number): number {
  return (usdPerHour / (tokensPerS * 3600 * utilisation)) * 1e6;
}

export interface MonthRow {
  month: number;
  /** Closed-API prompt and generated tokens served (API + hosting for paying open adopters). */
  input_tokens: number;
  output_tokens: number;
  /** Organisations using the open weights (expected value; may be fractional). */
  adopters: number;
  paying_adopters: number;
  /** Machine-hours the tokens need at the measured rate, and machine-hours paid (>= the always-on floor). */
  compute_hours: number;
  machine_hours: number;
  serving_usd: number;
  fixed_usd: number;
  api_revenue_usd: number;
  paid_revenue_usd: number;
  revenue_usd: number;
  cost_usd: number;
  margin_usd: number;
  cumulative_usd: number;
}

export interface Projection {
  strategy: Strategy;
  /** One-off training cost paid in month 0 (negative cash flow). */
  upfront_usd: number;
  months: MonthRow[];
}

/** What each strategy shares of the closed offer and of the open one. See docs/plan.md#strategies. */
export interface StrategyShape {
  /** Share of closed API demand served (closed 1, hybrid hybrid.api_demand_share, open 0). */
  api_share: number;
  /** API price relative to pricing.* (closed 1, hybrid hybrid.price_multiplier). */
  price_multiplier: number;
  /** Share of open adopters (open 1, hybrid hybrid.base_share, closed 0). */
  adopter_share: number;
  /** Share of the model's capability and IP whose weights are public (open 1, hybrid base_share, closed 0). */
  openness: number;
  /** Whether it runs a service that keeps hardware.min_machines on. */
  runs_service: boolean;
  /** Training machine-hours paid in month 0. */
  training_hours: number;
}

export function strategyShape(s: Scenario, strategy: Strategy): StrategyShape {
  const t = s.training;
  switch (strategy) {
    case 'closed':
      return { api_share: 1, price_multiplier: 1, adopter_share: 0, openness: 0, runs_service: true,
        training_hours: t.compute_hours };
    case 'open':
      return { api_share: 0, price_multiplier: 1, adopter_share: 1, openness: 1,
        runs_service: s.open.hosted_tokens_per_paid_month > 0, training_hours: t.compute_hours };
    case 'hybrid':
      return { api_share: s.hybrid.api_demand_share, price_multiplier: s.hybrid.price_multiplier,
        adopter_share: s.hybrid.base_share, openness: s.hybrid.base_share, runs_service: true,
        training_hours: t.compute_hours + t.adapter_compute_hours };
  }
}

/** Month-by-month cash of one strategy over s.horizon_months. */
export function project(s: Scenario, strategy: Strategy): Projection {
  const shape = strategyShape(s, strategy);
  const upfront = shape.training_hours * s.training.usd_per_hour;
  const d = s.demand;
  const demandTotal = d.input_tokens_per_month + d.output_tokens_per_month;
  // NOTE: hosted tokens of paying adopters follow the API's prompt/generated mix; with no API demand to
  // take the mix from they count as generated tokens, the dearer kind.
  const inputShare = demandTotal > 0 ? d.input_tokens_per_month / demandTotal : 0;
  const tokensPerHour = machineTokensPerS(s) * 3600 * s.hardware.utilisation;
  const floorHours = shape.runs_service ? s.hardware.min_machines * HOURS_PER_MONTH : 0;
  const fc = s.fixed_costs[strategy];
  const fixed = fc.engineering_usd_per_month + fc.support_usd_per_month + fc.hosting_usd_per_month;

  const months: MonthRow[] = [];
  let cumulative = -upfront;
  for (let m = 1; m <= s.horizon_months; m++) {
    const demandGrowth = Math.pow(1 + d.growth_per_month, m - 1);
    const apiIn = d.input_tokens_per_month * demandGrowth * shape.api_share;
    const apiOut = d.output_tokens_per_month * demandGrowth * shape.api_share;
    const adopters = s.open.adopters_month1 * Math.pow(1 + s.open.adopter_growth_per_month, m - 1) * shape.adopter_share;
    const paying = adopters * s.open.paid_conversion;
    const hosted = paying * s.open.hosted_tokens_per_paid_month;
    const inTok = apiIn + hosted * inputShare;
    const outTok = apiOut + hosted * (1 - inputShare);
    const computeHours = (outTok + s.throughput.input_token_cost * inTok) / tokensPerHour;
    const machineHours = Math.max(computeHours, floorHours);
    const serving = machineHours * s.hardware.usd_per_hour;
    const apiRevenue = ((apiIn * s.pricing.input_per_1m_usd + apiOut * s.pricing.output_per_1m_usd) / 1e6) *
      shape.price_multiplier;
    const paidRevenue = paying * s.open.paid_price_usd_per_month;
    const revenue = apiRevenue + paidRevenue;
    const cost = serving + fixed;
    cumulative += revenue - cost;
    months.push({
      month: m, input_tokens: inTok, output_tokens: outTok, adopters, paying_adopters: paying,
      compute_hours: computeHours, machine_hours: machineHours, serving_usd: serving, fixed_usd: fixed,
      api_revenue_usd: apiRevenue, paid_revenue_usd: paidRevenue, revenue_usd: revenue, cost_usd: cost,
      margin_usd: revenue - cost, cumulative_usd: cumulative,
    });
  }
  return { strategy, upfront_usd: upfront, months };
}

export interface Metrics {
  npv_usd: number;
  break_even_month: number | null;
  final_cash_usd: number;
  /** Lowest cumulative cash (month 0 included): the funding the strategy needs before it pays back. */
  min_cash_usd: number;
  total_revenue_usd: number;
  /** Training + serving + fixed costs over the horizon, undiscounted. */
  total_cost_usd: number;
  /**
   * The part of total_cost_usd committed whatever the demand: training + fixed costs + the always-on
   * machines (hardware.min_machines) over the horizon. The scorecard's cost factor compares it.
   */
  committed_cost_usd: number;
  served_tokens: number;
  /** Serving cost over the horizon / tokens served * 1e6 (includes idle always-on machines); null if none. */
  serving_cost_per_1m_usd: number | null;
  /** Every cost over the horizon / tokens served * 1e6; null if none served. */
  all_in_cost_per_1m_usd: number | null;
}

export function metrics(s: Scenario, p: Projection): Metrics {
  const r = monthlyRate(s.discount_rate_annual);
  const floorUsd = strategyShape(s, p.strategy).runs_service
    ? s.hardware.min_machines * HOURS_PER_MONTH * s.hardware.usd_per_hour : 0;
  // One pass over the months (this runs thousands of times in the flip search).
  let presentValue = -p.upfront_usd;
  let minCash = -p.upfront_usd;
  let breakEven: number | null = null;
  let revenue = 0, cost = p.upfront_usd, committed = p.upfront_usd, served = 0, serving = 0;
  for (const row of p.months) {
    presentValue += row.margin_usd / Math.pow(1 + r, row.month);
    minCash = Math.min(minCash, row.cumulative_usd);
    if (breakEven === null && row.cumulative_usd >= 0) breakEven = row.month;
    revenue += row.revenue_usd;
    cost += row.cost_usd;
    committed += row.fixed_usd + floorUsd;
    served += row.input_tokens + row.output_tokens;
    serving += row.serving_usd;
  }
  return {
    npv_usd: presentValue,
    break_even_month: breakEven,
    final_cash_usd: p.months.length > 0 ? p.months[p.months.length - 1].cumulative_usd : -p.upfront_usd,
    min_cash_usd: minCash,
    total_revenue_usd: revenue,
    total_cost_usd: cost,
    committed_cost_usd: committed,
    served_tokens: served,
    serving_cost_per_1m_usd: served > 0 ? (serving / served) * 1e6 : null,
    all_in_cost_per_1m_usd: served > 0 ? (cost / served) * 1e6 : null,
  };
}

function sum(xs: readonly number[]): number {
  let t = 0;
  for (const x of xs) t += x;
  return t;
}

export type Scores = Record<Factor, number>;

export interface Scorecard {
  /** Per strategy, each factor scored 0..10 by the rules in docs/plan.md#scorecard. */
  scores: Record<Strategy, Scores>;
  /** Weighted mean of the factor scores, 0..10. */
  totals: Record<Strategy, number>;
  /** The factor weights normalised to sum to 1. */
  weights: Record<Factor, number>;
}

/**
 * Score each strategy 0..10 per factor. With o = openness (open 1, hybrid base_share, closed 0):
 *   ip_protection    = 10 (1 - ip_sensitivity * o)
 *   user_flexibility = 10 (1 - user_flexibility_need * (1 - o))
 *   data_privacy     = 10 (1 - privacy_requirement * (1 - o))
 *   market_strategy  = 10 (p o + (1 - p)(1 - o)),  p = competitive_pressure
 *   team_capability  = 10 (1 - b (1 - team_ops_capability)),  b = tokens served / most tokens any strategy serves
 *   cost             = 10 * lowest committed cost / this committed cost (Metrics.committed_cost_usd)
 */
export function scorecard(s: Scenario, m: Record<Strategy, Metrics>): Scorecard {
  const r = s.risk;
  const mostServed = Math.max(...STRATEGIES.map((k) => m[k].served_tokens));
  const leastCost = Math.min(...STRATEGIES.map((k) => m[k].committed_cost_usd));
  const wSum = sum(FACTORS.map((f) => s.weights.factors[f]));
  const weights = Object.fromEntries(FACTORS.map((f) => [f, s.weights.factors[f] / wSum])) as Record<Factor, number>;
  const scores = {} as Record<Strategy, Scores>;
  const totals = {} as Record<Strategy, number>;
  for (const k of STRATEGIES) {
    const o = strategyShape(s, k).openness;
    const burden = mostServed > 0 ? m[k].served_tokens / mostServed : 0;
    const cost = m[k].committed_cost_usd;
    const sc: Scores = {
      ip_protection: 10 * (1 - r.ip_sensitivity * o),
      cost: cost > 0 ? (10 * leastCost) / cost : 10,
      user_flexibility: 10 * (1 - r.user_flexibility_need * (1 - o)),
      team_capability: 10 * (1 - burden * (1 - r.team_ops_capability)),
      market_strategy: 10 * (r.competitive_pressure * o + (1 - r.competitive_pressure) * (1 - o)),
      data_privacy: 10 * (1 - r.privacy_requirement * (1 - o)),
    };
    scores[k] = sc;
    totals[k] = sum(FACTORS.map((f) => weights[f] * sc[f]));
  }
  return { scores, totals, weights };
}

export interface Decision {
  /** 0.5 + 0.5 * NPV / max |NPV| over the strategies: 0..1, > 0.5 for a positive NPV. */
  financial: Record<Strategy, number>;
  /** weights.financial * financial + (1 - weights.financial) * scorecard total / 10. */
  combined: Record<Strategy, number>;
  /** Strategies by combined score, best first (ties: higher NPV, then closed, hybrid, open). */
  ranking: Strategy[];
  winner: Strategy;
}

const TIE_ORDER: Record<Strategy, number> = { closed: 0, hybrid: 1, open: 2 };

export function decide(s: Scenario, m: Record<Strategy, Metrics>, card: Scorecard): Decision {
  const maxAbs = Math.max(...STRATEGIES.map((k) => Math.abs(m[k].npv_usd)));
  const a = s.weights.financial;
  const financial = {} as Record<Strategy, number>;
  const combined = {} as Record<Strategy, number>;
  for (const k of STRATEGIES) {
    financial[k] = maxAbs > 0 ? 0.5 + (0.5 * m[k].npv_usd) / maxAbs : 0.5;
    combined[k] = a * financial[k] + ((1 - a) * card.totals[k]) / 10;
  }
  const ranking = [...STRATEGIES].sort((x, y) => (combined[y] - combined[x]) ||
    (m[y].npv_usd - m[x].npv_usd) || (TIE_ORDER[x] - TIE_ORDER[y]));
  return { financial, combined, ranking, winner: ranking[0] };
}

export interface Evaluation {
  projections: Record<Strategy, Projection>;
  metrics: Record<Strategy, Metrics>;
  scorecard: Scorecard;
  decision: Decision;
  /** Hardware cost of 1M generated tokens at the measured rate (see computeCostPer1M). */
  compute_cost_per_1m_usd: number;
}

/** Everything the plan computes for one scenario, before sensitivity. */
export function evaluate(s: Scenario): Evaluation {
  const projections = {} as Record<Strategy, Projection>;
  const ms = {} as Record<Strategy, Metrics>;
  for (const k of STRATEGIES) {
    projections[k] = project(s, k);
    ms[k] = metrics(s, projections[k]);
  }
  const card = scorecard(s, ms);
  return {
    projections, metrics: ms, scorecard: card, decision: decide(s, ms, card),
    compute_cost_per_1m_usd: computeCostPer1M(s.hardware.usd_per_hour, machineTokensPerS(s), s.hardware.utilisation),
  };
}
