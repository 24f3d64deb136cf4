// The recommendation moves the expected way when IP sensitivity, demand or price move, the sensitivity
// analysis varies one input at a time, and every reported flip really flips the recommendation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  buildPlan, evaluate, findFlips, getNumber, sensitivity, strategyShape, withNumber, type Scenario, type Strategy,
} from '../../src/plan/index.js';
import { balancedScenario, handScenario } from './fixtures.js';

/** How open the recommended strategy is: open 1, hybrid base_share, closed 0. */
function openness(s: Scenario): number {
  return strategyShape(s, evaluate(s).decision.winner).openness;
}

function winner(s: Scenario): Strategy {
  return evaluate(s).decision.winner;
}

function scaleDemand(s: Scenario, k: number): Scenario {
  const t = withNumber(s, 'demand.input_tokens_per_month', s.demand.input_tokens_per_month * k);
  return withNumber(t, 'demand.output_tokens_per_month', s.demand.output_tokens_per_month * k);
}

function scalePrice(s: Scenario, k: number): Scenario {
  const t = withNumber(s, 'pricing.input_per_1m_usd', s.pricing.input_per_1m_usd * k);
  return withNumber(t, 'pricing.output_per_1m_usd', s.pricing.output_per_1m_usd * k);
}

/** Assert xs never increases. */
function nonIncreasing(xs: number[], what: string): void {
  for (let i = 1; i < xs.length; i++) assert.ok(xs[i] <= xs[i - 1] + 1e-12, `${what}: ${xs.join(', ')}`);
}

test('raising IP sensitivity moves the recommendation toward closed, never toward open', () => {
  const base = balancedScenario();
  const grid = Array.from({ length: 21 }, (_, i) => i / 20);
  const path = grid.map((x) => withNumber(base, 'risk.ip_sensitivity', x));
  nonIncreasing(path.map(openness), 'openness of the winner as ip_sensitivity rises');
  // In this scenario the move is real: open with nothing to protect, closed when the weights are the business.
  assert.equal(winner(path[0]), 'open');
  assert.equal(winner(path[20]), 'closed');
  // And it holds for the hand scenario and for a hybrid-leaning one too.
  const hybridish = withNumber(base, 'hybrid.api_demand_share', 0.8);
  nonIncreasing(grid.map((x) => openness(withNumber(hybridish, 'risk.ip_sensitivity', x))), 'hybrid-leaning');
  nonIncreasing(grid.map((x) => openness(withNumber(handScenario(), 'risk.ip_sensitivity', x))), 'hand');
});

test('raising API demand moves the recommendation from open toward closed', () => {
  const base = balancedScenario();
  const ks = [0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8];
  nonIncreasing(ks.map((k) => openness(scaleDemand(base, k))), 'openness of the winner as demand rises');
  assert.equal(winner(scaleDemand(base, 0.1)), 'open');
  assert.equal(winner(scaleDemand(base, 4)), 'closed');
  // With a strong adapter API the middle of the range goes hybrid before closed.
  const hybridish = withNumber(base, 'hybrid.api_demand_share', 0.8);
  assert.deepEqual([0.1, 1, 8].map((k) => winner(scaleDemand(hybridish, k))), ['open', 'hybrid', 'closed']);
});

test('raising the API price moves the recommendation from open toward closed', () => {
  const base = balancedScenario();
  const ks = [0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8];
  nonIncreasing(ks.map((k) => openness(scalePrice(base, k))), 'openness of the winner as price rises');
  assert.equal(winner(scalePrice(base, 0.25)), 'open');
  assert.equal(winner(scalePrice(base, 4)), 'closed');
});

test('more value in the open adoption channel moves the recommendation toward open', () => {
  const base = scaleDemand(balancedScenario(), 1.5);
  const prices = [500, 1000, 2000, 4000, 8000, 16000];
  const o = prices.map((p) => openness(withNumber(base, 'open.paid_price_usd_per_month', p)));
  for (let i = 1; i < o.length; i++) assert.ok(o[i] >= o[i - 1], `openness as support price rises: ${o.join(', ')}`);
  assert.notEqual(winner(withNumber(base, 'open.paid_price_usd_per_month', 16000)), 'closed');
});

test('sensitivity: one input at a time by +-delta, sorted by NPV swing', () => {
  const s = handScenario();
  const sens = sensitivity(s, 0.2);
  const base = evaluate(s);
  assert.equal(sens.strategy, base.decision.winner);
  assert.equal(sens.base_npv, base.metrics[sens.strategy].npv_usd);
  for (let i = 1; i < sens.rows.length; i++) assert.ok(sens.rows[i].swing <= sens.rows[i - 1].swing);
  // Every row matches a direct evaluation with only that input moved.
  const out = sens.rows.find((r) => r.field === 'pricing.output_per_1m_usd')!;
  assert.equal(out.low_value, 1.6);
  assert.equal(out.high_value, 2.4);
  const hi = evaluate(withNumber(s, 'pricing.output_per_1m_usd', 2.4));
  assert.equal(out.npv_high, hi.metrics[sens.strategy].npv_usd);
  // Shares are clamped to [0, 1]: utilisation 0.5 -> 0.4 .. 0.6; a share of 0.9 would stop at 1.
  const util = sens.rows.find((r) => r.field === 'hardware.utilisation')!;
  assert.deepEqual([util.low_value, util.high_value], [0.4, 0.6]);
  const capped = sensitivity(withNumber(s, 'open.paid_conversion', 0.9), 0.2).rows
    .find((r) => r.field === 'open.paid_conversion')!;
  assert.equal(capped.high_value, 1);
  // Risk inputs do not touch the cash, so their NPV swing is 0 (they are in the flip search instead).
  assert.equal(sens.rows.find((r) => r.field === 'risk.ip_sensitivity')!.swing, 0);
  // Settings are not varied.
  assert.equal(sens.rows.find((r) => r.field === 'horizon_months' || r.field.startsWith('weights.')), undefined);
});

test('every flip is real: just short of the threshold keeps the winner, just past it changes it', () => {
  const s = balancedScenario();
  const w = winner(s);
  const flips = findFlips(s);
  assert.ok(flips.length > 0);
  for (let i = 1; i < flips.length; i++) assert.ok(flips[i].distance >= flips[i - 1].distance);
  for (const f of flips) {
    const v = getNumber(s, f.field)!;
    const eps = 1e-3 * Math.max(1e-3, Math.abs(f.at - v));
    const before = f.direction === 'rises above' ? f.at - eps : f.at + eps;
    const after = f.direction === 'rises above' ? f.at + eps : f.at - eps;
    assert.equal(winner(withNumber(s, f.field, before)), w, `${f.field} before ${f.at}`);
    assert.equal(winner(withNumber(s, f.field, after)), f.to, `${f.field} after ${f.at}`);
    assert.notEqual(f.to, w);
  }
});

test('the recommendation explains itself and names the nearest flip', () => {
  const s = withNumber(balancedScenario(), 'risk.ip_sensitivity', 0.3);
  const plan = buildPlan({ scenario: s, provenance: {} });
  const rec = plan.recommendation;
  assert.equal(rec.strategy, 'open');
  assert.match(rec.text, /^open \(combined score 0\.\d\d, against 0\.\d\d for (closed|hybrid)/);
  assert.match(rec.text, /Open wins because /);
  assert.match(rec.text, new RegExp(`It flips to ${rec.flips[0].to} if ${rec.flips[0].field.replace(/\./g, '\\.')} ` +
    `(rises above|falls below) `));
  // The IP flip is found and points the expected way: more sensitivity, away from open.
  const ip = rec.flips.find((f) => f.field === 'risk.ip_sensitivity')!;
  assert.equal(ip.direction, 'rises above');
  assert.notEqual(ip.to, 'open');
  assert.ok(ip.at > 0.3 && ip.at < 0.6, `ip flip at ${ip.at}`);
});
