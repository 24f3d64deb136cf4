// The plan's arithmetic against hand-computed cases; every expected number is worked out in the comments
// (and was checked with a few lines of Python: 1.01 ** 3 etc.).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  breakEvenMonth, computeCostPer1M, evaluate, HOURS_PER_MONTH, metrics, monthlyRate, npv, project, scorecard,
} from '../../src/plan/index.js';
import { ANNUAL_FOR_1PCT_MONTHLY, handScenario } from './fixtures.js';

function near(actual: number, expected: number, tol = 1e-6, what = ''): void {
  assert.ok(Math.abs(actual - expected) <= tol * Math.max(1, Math.abs(expected)),
    `${what} expected ${expected}, got ${actual}`);
}

test('monthly rate: (1 + annual)^(1/12) - 1', () => {
  // 1.01^12 - 1 = 0.126825... a year, so exactly 1% a month.
  near(monthlyRate(ANNUAL_FOR_1PCT_MONTHLY), 0.01);
  // 12%/year -> 1.12^(1/12) - 1 = 0.0094888 a month (not 1%: compounding).
  near(monthlyRate(0.12), 0.00948879293, 1e-8);
  assert.equal(monthlyRate(0), 0);
});

test('NPV: month 0 undiscounted, month m divided by (1 + r)^m', () => {
  // -1000 now, +100 at the end of each of 12 months, 1%/month:
  // -1000 + 100 * (1 - 1.01^-12) / 0.01 = -1000 + 100 * 11.2550775 = 125.507747
  const flows = [-1000, ...new Array<number>(12).fill(100)];
  near(npv(ANNUAL_FOR_1PCT_MONTHLY, flows), 125.5077473, 1e-8);
  // At a 0% rate NPV is the plain sum: -1000 + 1200 = 200.
  near(npv(0, flows), 200);
});

test('break-even month: first month m >= 1 whose cumulative cash is >= 0, null if never', () => {
  // -1000 + 100 m >= 0 first at m = 10 (exactly 0 counts as broken even).
  const cum = Array.from({ length: 13 }, (_, m) => -1000 + 100 * m);
  assert.equal(breakEvenMonth(cum), 10);
  assert.equal(breakEvenMonth([-5, -4, -3]), null);
  // Month 0 is not a candidate even when nothing was spent up front; month 1 is the earliest.
  assert.equal(breakEvenMonth([0, 10]), 1);
  assert.equal(breakEvenMonth([0, -1, 3]), 2);
});

test('cost per 1M tokens: usd_per_hour / (tokens_per_s * 3600 * utilisation) * 1e6', () => {
  // $2/h, 2000 tok/s, 50% busy: a paid hour serves 2000 * 3600 * 0.5 = 3.6e6 tokens -> $2 / 3.6 = $0.5556 per 1M.
  near(computeCostPer1M(2, 2000, 0.5), 2 / 3.6);
  // $0.68/h, 400 tok/s, 50%: 0.68 / (400 * 3600 * 0.5) * 1e6 = $0.9444 per 1M.
  near(computeCostPer1M(0.68, 400, 0.5), 0.944444444);
  // The hand scenario measures 1000 tok/s on 4 cores and serves on 8: 2000 tok/s per machine.
  near(evaluate(handScenario()).compute_cost_per_1m_usd, 2 / 3.6);
});

test('closed: a 3-month projection by hand', () => {
  const s = handScenario();
  const p = project(s, 'closed');
  // Month 0: training 100 machine-hours x $3 = $300.
  assert.equal(p.upfront_usd, 300);
  // A paid machine-hour serves 2000 tok/s x 3600 x 0.5 = 3.6e6 generated-token equivalents.
  // Month m demand = month-1 demand x 1.1^(m-1); a prompt token costs 0.5 of a generated one.
  //   m1: 7.2e9 in, 3.6e9 out -> 3.6e9 + 0.5 x 7.2e9 = 7.2e9 eq -> 2000 h (> 730 h floor) -> $4000
  //       revenue 7200 x $0.5 + 3600 x $2 = $10800; fixed 1000 + 500 + 300 = $1800
  //       margin 10800 - 4000 - 1800 = $5000; cumulative -300 + 5000 = $4700
  //   m2: x1.1 -> 2200 h -> $4400; revenue $11880; margin $5680; cumulative $10380
  //   m3: x1.21 -> 2420 h -> $4840; revenue $13068; margin $6428; cumulative $16808
  const expected = [
    { compute: 2000, serving: 4000, revenue: 10800, margin: 5000, cumulative: 4700 },
    { compute: 2200, serving: 4400, revenue: 11880, margin: 5680, cumulative: 10380 },
    { compute: 2420, serving: 4840, revenue: 13068, margin: 6428, cumulative: 16808 },
  ];
  assert.equal(p.months.length, 3);
  expected.forEach((e, i) => {
    const r = p.months[i];
    assert.equal(r.month, i + 1);
    near(r.compute_hours, e.compute, 1e-9, `m${i + 1} compute hours`);
    near(r.machine_hours, e.compute, 1e-9, `m${i + 1} machine hours`);
    near(r.serving_usd, e.serving, 1e-9, `m${i + 1} serving`);
    near(r.revenue_usd, e.revenue, 1e-9, `m${i + 1} revenue`);
    assert.equal(r.fixed_usd, 1800);
    near(r.margin_usd, e.margin, 1e-9, `m${i + 1} margin`);
    near(r.cumulative_usd, e.cumulative, 1e-9, `m${i + 1} cumulative`);
  });
  const m = metrics(s, p);
  // NPV at 1%/month: -300 + 5000/1.01 + 5680/1.01^2 + 6428/1.01^3 = 16457.5301
  near(m.npv_usd, 16457.53008101516, 1e-9);
  assert.equal(m.break_even_month, 1);
  near(m.final_cash_usd, 16808);
  assert.equal(m.min_cash_usd, -300);
  // Serving cost per 1M tokens: (4000 + 4400 + 4840) / (10.8e9 x 3.31) x 1e6 = 4000 / 10800 = $0.37037
  near(m.serving_cost_per_1m_usd!, 4000 / 10800);
  // Committed: 300 + 3 x (1800 fixed + 1 machine x 730 h x $2) = 300 + 3 x 3260 = 10080
  near(m.committed_cost_usd, 10080);
});

test('open: hosting for paying adopters hits the always-on floor; never breaks even in 3 months', () => {
  const s = handScenario();
  const p = project(s, 'open');
  // 10 adopters x 20% = 2 paying, each hosted 1.8e9 tokens = 3.6e9 tokens in the API's mix
  // (7.2e9 / 10.8e9 = 2/3 prompt): 2.4e9 in + 1.2e9 out = 1.2e9 + 0.5 x 2.4e9 = 2.4e9 eq = 666.7 h,
  // below the 1 machine x 730 h floor -> 730 h x $2 = $1460.
  // Margin: 2 x $1000 - 1460 - (400 + 100 + 0) = $40 a month; cumulative -300 + 40 m.
  for (const r of p.months) {
    near(r.paying_adopters, 2);
    near(r.input_tokens, 2.4e9);
    near(r.output_tokens, 1.2e9);
    near(r.compute_hours, 2.4e9 / 3.6e6);
    assert.equal(r.machine_hours, HOURS_PER_MONTH);
    near(r.margin_usd, 40);
  }
  const m = metrics(s, p);
  assert.equal(m.break_even_month, null);
  near(m.final_cash_usd, -180);
  // NPV: -300 + 40 (1/1.01 + 1/1.01^2 + 1/1.01^3) = -182.3606
  near(m.npv_usd, -182.36059171057778, 1e-9);
});

test('hybrid: half the API demand at 1.5x the price, half the adopters, base + adapter training', () => {
  const s = handScenario();
  const p = project(s, 'hybrid');
  // Training: (100 + 20) h x $3 = $360.
  assert.equal(p.upfront_usd, 360);
  // m1: API 3.6e9 in + 1.8e9 out; 5 adopters x 20% = 1 paying, hosted 1.8e9 = 1.2e9 in + 0.6e9 out.
  // Tokens 4.8e9 in + 2.4e9 out = 2.4e9 + 0.5 x 4.8e9 = 4.8e9 eq -> 1333.3 h -> $2666.67.
  // Revenue (3600 x 0.5 + 1800 x 2) x 1.5 + 1 x $1000 = $9100; fixed $2300; margin $4133.33.
  const r = p.months[0];
  near(r.api_revenue_usd, 8100);
  near(r.paid_revenue_usd, 1000);
  near(r.serving_usd, 2666.6666666666665);
  near(r.margin_usd, 4133.333333333334);
  near(r.cumulative_usd, 3773.333333333334);
  near(metrics(s, p).npv_usd, 13637.378759540501, 1e-9);
});

test('scorecard: each rule by hand', () => {
  const s = handScenario();
  const e = evaluate(s);
  const card = scorecard(s, e.metrics);
  const sc = card.scores;
  // IP: 10 (1 - 0.8 o), o = openness (open 1, hybrid 0.5, closed 0)
  near(sc.open.ip_protection, 2);
  near(sc.hybrid.ip_protection, 6);
  near(sc.closed.ip_protection, 10);
  // Flexibility: 10 (1 - 0.4 (1 - o)); privacy: 10 (1 - 0.5 (1 - o))
  near(sc.closed.user_flexibility, 6);
  near(sc.hybrid.user_flexibility, 8);
  near(sc.closed.data_privacy, 5);
  near(sc.hybrid.data_privacy, 7.5);
  // Market, p = 0.25: 10 (p o + (1 - p)(1 - o)): open 2.5, hybrid 5, closed 7.5
  near(sc.open.market_strategy, 2.5);
  near(sc.hybrid.market_strategy, 5);
  near(sc.closed.market_strategy, 7.5);
  // Team: 10 (1 - burden x (1 - 0.5)), burden = tokens served / closed's 35.748e9 (the most):
  // open 10.8e9 -> 8.4894; hybrid 17.874e9 + 5.4e9 = 23.274e9 -> 6.7447; closed 5
  near(sc.open.team_capability, 8.489425981873111);
  near(sc.hybrid.team_capability, 6.744712990936557);
  near(sc.closed.team_capability, 5);
  // Cost: 10 x lowest committed / committed: open 6180 (300 + 3 x (500 + 1460)), closed 10080, hybrid 11640
  near(sc.open.cost, 10);
  near(sc.closed.cost, (10 * 6180) / 10080);
  near(sc.hybrid.cost, (10 * 6180) / 11640);
  // Total = weighted mean with weights 2,1,1,1,1,2 / 8:
  // closed (2 x 10 + 6.131 + 6 + 5 + 7.5 + 2 x 5) / 8 = 6.8289
  near(card.totals.closed, 6.8288690476190474);
  near(card.totals.open, 6.873678247734139);
  near(card.weights.ip_protection, 0.25);
});

test('decision: financial = 0.5 + 0.5 NPV / max |NPV|; combined = a financial + (1 - a) scorecard / 10', () => {
  const e = evaluate(handScenario());
  // NPVs: closed 16457.53, hybrid 13637.38, open -182.36 -> financial 1, 0.91432, 0.49446
  near(e.decision.financial.closed, 1);
  near(e.decision.financial.hybrid, 0.9143203352024285);
  near(e.decision.financial.open, 0.4944596609936948);
  // combined closed = 0.5 x 1 + 0.5 x 0.68289 = 0.84144
  near(e.decision.combined.closed, 0.8414434523809524);
  near(e.decision.combined.hybrid, 0.7824976134852893);
  near(e.decision.combined.open, 0.5909137428835544);
  assert.deepEqual(e.decision.ranking, ['closed', 'hybrid', 'open']);
  assert.equal(e.decision.winner, 'closed');
});

test('no tokens served: no cost per token, no always-on machines for open support only', () => {
  const s = handScenario();
  s.open.hosted_tokens_per_paid_month = 0;
  const e = evaluate(s);
  assert.equal(e.metrics.open.serving_cost_per_1m_usd, null);
  assert.equal(e.projections.open.months[0].machine_hours, 0);
  // Margin: 2 paying x $1000 - $500 fixed = $1500 a month.
  near(e.projections.open.months[0].margin_usd, 1500);
});
