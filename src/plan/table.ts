// The plan as terminal text: a metrics table with one column per strategy, the scorecard, the explained
// recommendation and the largest sensitivities. ANSI colour only when the caller says so (a TTY).
import { assumptionNote, inputsBySource, type Plan } from './build.js';
import { FACTOR_LABELS } from './explain.js';
import { fieldValue, money, pct, sig } from './format.js';
import { monthlyRate } from './model.js';
import { FACTORS } from './schema.js';
import { STRATEGIES, type Strategy } from './types.js';

export interface TableOptions {
  color: boolean;
  /** Wrap prose at this many columns. */
  width: number;
}

const BOLD = '\x1b[1m';
const GREEN = '\x1b[32m';
const DIM = '\x1b[2m';
const RESET = '\x1b[0m';

/** Greedy word wrap of one paragraph. */
export function wrap(text: string, width: number, indent = ''): string {
  const lines: string[] = [];
  let line = indent;
  for (const word of text.split(/\s+/)) {
    if (line.trim() !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = indent + word;
    } else {
      line = line.trim() === '' ? indent + word : `${line} ${word}`;
    }
  }
  if (line.trim() !== '') lines.push(line);
  return lines.join('\n');
}

export function renderTable(plan: Plan, opts: TableOptions): string {
  const s = plan.scenario;
  const win = plan.recommendation.strategy;
  const paint = (code: string, x: string): string => (opts.color ? `${code}${x}${RESET}` : x);
  const H = s.horizon_months;

  const rows: [string, (k: Strategy) => string][] = [
    ['NPV', (k) => money(plan.metrics[k].npv_usd)],
    ['break-even month', (k) => String(plan.metrics[k].break_even_month ?? 'never')],
    [`cash at month ${H}`, (k) => money(plan.metrics[k].final_cash_usd)],
    ['lowest cash (funding need)', (k) => money(plan.metrics[k].min_cash_usd)],
    [`revenue, ${H} months`, (k) => money(plan.metrics[k].total_revenue_usd)],
    [`costs, ${H} months`, (k) => money(plan.metrics[k].total_cost_usd)],
    ['  of which committed', (k) => money(plan.metrics[k].committed_cost_usd)],
    ['serving cost / 1M tokens', (k) => optMoney(plan.metrics[k].serving_cost_per_1m_usd)],
    ['all-in cost / 1M tokens', (k) => optMoney(plan.metrics[k].all_in_cost_per_1m_usd)],
    ...FACTORS.map((f): [string, (k: Strategy) => string] =>
      [`  ${FACTOR_LABELS[f]} (w ${pct(plan.scorecard.weights[f])})`, (k) => plan.scorecard.scores[k][f].toFixed(1)]),
    ['scorecard (0-10)', (k) => plan.scorecard.totals[k].toFixed(1)],
    [`financial score (0-1)`, (k) => plan.financial_scores[k].toFixed(2)],
    ['combined score (0-1)', (k) => plan.recommendation.combined[k].toFixed(2)],
  ];
  const labelW = Math.max(...rows.map(([l]) => l.length)) + 2;
  const colW = Math.max(10, ...rows.flatMap(([, f]) => STRATEGIES.map((k) => f(k).length))) + 2;
  const cell = (k: Strategy, x: string): string => {
    const padded = x.padStart(colW);
    return k === win ? paint(BOLD, padded) : padded;
  };

  const out: string[] = [];
  out.push(paint(BOLD, `ajar plan: ${s.name}`));
  out.push(`${H} months, discount ${pct(s.discount_rate_annual)}/year (${pct(monthlyRate(s.discount_rate_annual))}` +
    `/month); serving ${money(s.hardware.usd_per_hour)}/machine-hour at ${sig(s.throughput.tokens_per_s)} tokens/s ` +
    `-> ${money(plan.compute_cost_per_1m_usd)} per 1M generated tokens`);
  out.push('');
  out.push(' '.repeat(labelW) + STRATEGIES.map((k) => cell(k, k === win ? `${k} *` : k)).join(''));
  for (const [label, f] of rows) {
    out.push(label.padEnd(labelW) + STRATEGIES.map((k) => cell(k, f(k))).join(''));
  }
  out.push(paint(DIM, `${' '.repeat(labelW)}* recommended`));
  out.push('');
  const caveat = assumptionNote(plan);
  const heading = `Recommendation${caveat !== '' ? ` (${caveat})` : ''}:`;
  out.push(wrap(`${paint(GREEN + BOLD, heading)} ${plan.recommendation.text}`, opts.width));
  out.push('');

  const sens = plan.sensitivity;
  const top = sens.rows.filter((r) => r.swing > 0).slice(0, 5);
  if (top.length > 0) {
    out.push(`Largest NPV swings for ${sens.strategy} (NPV ${money(sens.base_npv)}; each input ` +
      `+-${pct(sens.delta)} alone):`);
    const w = Math.max(...top.map((r) => r.field.length)) + 2;
    for (const r of top) {
      const flips = r.winner_low !== sens.strategy || r.winner_high !== sens.strategy ? '  (flips the recommendation)' : '';
      out.push(`  ${r.field.padEnd(w)}${money(r.npv_low).padStart(9)} .. ${money(r.npv_high).padEnd(9)}` +
        `  (${fieldValue(r.field, r.low_value)} .. ${fieldValue(r.field, r.high_value)})${flips}`);
    }
    out.push('');
  }
  const count = (src: 'given' | 'assumption' | 'measured' | 'default'): number => inputsBySource(plan, src).length;
  out.push(`Inputs: ${count('measured')} measured by ajar, ${count('given')} given, ${count('assumption')} marked ` +
    `ASSUMPTION in the scenario, ${count('default')} left at a default.`);
  const defaults = inputsBySource(plan, 'default');
  if (defaults.length > 0) {
    out.push(wrap(`Defaults used (assumptions; set them in the scenario): ${defaults.map(([k]) => k).join(', ')}.`,
      opts.width));
  }
  return out.join('\n');
}

function optMoney(x: number | null): string {
  return x === null ? '-' : money(x);
}
