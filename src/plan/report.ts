// The plan as files: report.md (Markdown) with two hand-written SVG charts, cash.svg (cumulative cash per
// strategy over time) and tornado.svg (the sensitivity analysis). renderReport is pure; writeReport writes
// the files into a temp directory beside the target and renames it into place, so nothing is half-written.
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { replaceDir } from '../io/atomic.js';
import { AjarError } from '../tensor/errors.js';
import { assumptionNote, inputsBySource, type Plan } from './build.js';
import { FACTOR_LABELS, flipText } from './explain.js';
import { compact, fieldValue, money, pct, sig } from './format.js';
import { monthlyRate } from './model.js';
import { fieldAt, FACTORS, leafFields } from './schema.js';
import { getNumber, variableParams } from './sensitivity.js';
import { STRATEGIES, type Provenance, type Strategy } from './types.js';

/** Okabe-Ito colours (distinguishable with colour-blindness) plus a dash pattern each for greyscale prints. */
export const STYLE: Record<Strategy, { color: string; dash: string }> = {
  open: { color: '#0072B2', dash: '' },
  closed: { color: '#D55E00', dash: '8 4' },
  hybrid: { color: '#009E73', dash: '2 3' },
};

const FONT = 'font-family="Helvetica, Arial, sans-serif"';

function esc(x: string): string {
  return x.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Round numbers for an axis: about `count` ticks covering [lo, hi], steps of 1, 2 or 5 x 10^k. */
export function niceTicks(lo: number, hi: number, count = 6): number[] {
  if (lo === hi) {
    const pad = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  const raw = (hi - lo) / count;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((st) => st >= raw)!;
  const ticks: number[] = [];
  for (let t = Math.floor(lo / step) * step; t <= hi + step * 1e-9; t += step) ticks.push(Number(t.toPrecision(12)));
  if (ticks[ticks.length - 1] < hi) ticks.push(Number((ticks[ticks.length - 1] + step).toPrecision(12)));
  return ticks;
}

function fmt(x: number): string {
  return Number(x.toFixed(1)).toString();
}

/** Line chart of cumulative cash per strategy, month 0 (after training) to the horizon. */
export function cashSvg(plan: Plan): string {
  const W = 820, Hgt = 500, L = 96, R = 24, T = 126, B = 58;
  const H = plan.scenario.horizon_months;
  const series = STRATEGIES.map((k) => ({
    k, pts: [-plan.projections[k].upfront_usd, ...plan.projections[k].months.map((r) => r.cumulative_usd)],
  }));
  const all = series.flatMap((sr) => sr.pts);
  const yt = niceTicks(Math.min(0, ...all), Math.max(0, ...all));
  const y0 = yt[0], y1 = yt[yt.length - 1];
  const px = (m: number): number => L + ((W - L - R) * m) / H;
  const py = (v: number): number => T + ((Hgt - T - B) * (y1 - v)) / (y1 - y0);
  const xStep = [1, 2, 3, 6, 12, 24, 60, 120].find((st) => H / st <= 12) ?? 120;

  const o: string[] = [];
  o.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${Hgt}" viewBox="0 0 ${W} ${Hgt}" ${FONT}>`);
  o.push(`<rect width="${W}" height="${Hgt}" fill="#ffffff"/>`);
  o.push(`<text x="${L}" y="26" font-size="17" font-weight="bold" fill="#222">Cumulative cash by strategy: ` +
    `${esc(plan.scenario.name)}</text>`);
  o.push(`<text x="${L}" y="46" font-size="12" fill="#555">USD, after the month-0 training cost; ` +
    `${esc(`${H} months, recommended: ${plan.recommendation.strategy}`)}</text>`);
  for (const t of yt) {
    const y = fmt(py(t));
    o.push(`<line x1="${L}" y1="${y}" x2="${W - R}" y2="${y}" stroke="${t === 0 ? '#555' : '#e3e3e3'}" ` +
      `stroke-width="${t === 0 ? 1.2 : 1}"/>`);
    o.push(`<text x="${L - 8}" y="${fmt(py(t) + 4)}" font-size="12" text-anchor="end" fill="#333">${esc(money(t))}</text>`);
  }
  for (let m = 0; m <= H; m += xStep) {
    o.push(`<line x1="${fmt(px(m))}" y1="${Hgt - B}" x2="${fmt(px(m))}" y2="${Hgt - B + 5}" stroke="#555"/>`);
    o.push(`<text x="${fmt(px(m))}" y="${Hgt - B + 20}" font-size="12" text-anchor="middle" fill="#333">${m}</text>`);
  }
  o.push(`<line x1="${L}" y1="${T}" x2="${L}" y2="${Hgt - B}" stroke="#555"/>`);
  o.push(`<line x1="${L}" y1="${Hgt - B}" x2="${W - R}" y2="${Hgt - B}" stroke="#555"/>`);
  o.push(`<text x="${fmt((L + W - R) / 2)}" y="${Hgt - 14}" font-size="13" text-anchor="middle" fill="#333">month</text>`);
  o.push(`<text transform="translate(18 ${fmt((T + Hgt - B) / 2)}) rotate(-90)" font-size="13" text-anchor="middle" ` +
    `fill="#333">cumulative cash (USD)</text>`);
  for (const { k, pts } of series) {
    const st = STYLE[k];
    const d = pts.map((v, m) => `${fmt(px(m))},${fmt(py(v))}`).join(' ');
    o.push(`<polyline points="${d}" fill="none" stroke="${st.color}" stroke-width="${k === plan.recommendation.strategy
      ? 3.2 : 2.2}" stroke-linejoin="round"${st.dash ? ` stroke-dasharray="${st.dash}"` : ''}/>`);
    const be = plan.metrics[k].break_even_month;
    if (be !== null) {
      o.push(`<circle cx="${fmt(px(be))}" cy="${fmt(py(pts[be]))}" r="4.5" fill="#fff" stroke="${st.color}" stroke-width="2"/>`);
    }
  }
  // Legend: one line per strategy above the plot; circles mark break-even months.
  STRATEGIES.forEach((k, i) => {
    const st = STYLE[k];
    const m = plan.metrics[k];
    const y = 66 + i * 18;
    const label = `${k}${k === plan.recommendation.strategy ? ' (recommended)' : ''}: NPV ${money(m.npv_usd)}, ` +
      `break-even ${m.break_even_month === null ? 'never' : `month ${m.break_even_month} (circle)`}`;
    o.push(`<line x1="${L}" y1="${y - 4}" x2="${L + 30}" y2="${y - 4}" stroke="${st.color}" stroke-width="3"` +
      `${st.dash ? ` stroke-dasharray="${st.dash}"` : ''}/>`);
    o.push(`<text x="${L + 38}" y="${y}" font-size="12" fill="#222">${esc(label)}</text>`);
  });
  o.push('</svg>');
  return o.join('\n') + '\n';
}

/**
 * A scenario field in words for a chart, from its schema doc: the doc up to its first ';', ' (' or ': ', and for
 * the per-strategy fixed costs the strategy named ("engineering salaries and contractors (open)").
 */
export function fieldLabel(path: string): string {
  const field = fieldAt(path);
  if (field === undefined) return path;
  let text = field.doc.split(/;| \(|: /)[0].trim().replace(/ attributable to this strategy$/, '');
  const parts = path.split('.');
  if (parts[0] === 'fixed_costs' && parts.length === 3) text = `${text} (${parts[1]})`;
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** Horizontal bars: the recommended strategy's NPV with each input at -delta (upper half) and +delta (lower half). */
export function tornadoSvg(plan: Plan, maxRows = 12): string {
  const sens = plan.sensitivity;
  const rows = sens.rows.filter((r) => r.swing > 0).slice(0, maxRows);
  const labels = rows.map((r) => fieldLabel(r.field));
  // NOTE: SVG cannot measure text, so the label column is sized from the longest label at ~7px a character
  // (12px sans-serif), generously, so no label is clipped. The plot area starts VALUE_ROOM px right of the label
  // column: a bar that reaches the axis's low end writes its value to its left, which would otherwise run into
  // the row's label.
  const longest = Math.max(10, ...labels.map((l) => l.length + 2));
  const VALUE_ROOM = 70;
  const L = 24 + Math.ceil(longest * 7), R = 90, T = 92, B = 52, rowH = 30;
  const P = L + VALUE_ROOM; // left edge of the plot area
  const W = P + 560;
  const Hgt = T + B + Math.max(1, rows.length) * rowH;
  const values = [sens.base_npv, ...rows.flatMap((r) => [r.npv_low, r.npv_high])];
  const xt = niceTicks(Math.min(...values), Math.max(...values), 5);
  const x0 = xt[0], x1 = xt[xt.length - 1];
  const px = (v: number): number => P + ((W - P - R) * (v - x0)) / (x1 - x0);
  const low = '#56B4E9', high = '#E69F00';
  const d = pct(sens.delta);

  const o: string[] = [];
  o.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${Hgt}" viewBox="0 0 ${W} ${Hgt}" ${FONT}>`);
  o.push(`<rect width="${W}" height="${Hgt}" fill="#ffffff"/>`);
  o.push(`<text x="24" y="26" font-size="17" font-weight="bold" fill="#222">NPV of ${sens.strategy} when one input ` +
    `moves ${esc(`\u00b1${d}`)}</text>`);
  o.push(`<text x="24" y="46" font-size="12" fill="#555">${esc(`${plan.scenario.name}; base NPV ${money(sens.base_npv)}; ` +
    `inputs sorted by swing; * = the recommendation changes`)}</text>`);
  o.push(`<rect x="24" y="58" width="14" height="10" fill="${low}"/>`);
  o.push(`<text x="44" y="67" font-size="12" fill="#222">input -${esc(d)}</text>`);
  o.push(`<rect x="134" y="58" width="14" height="10" fill="${high}"/>`);
  o.push(`<text x="154" y="67" font-size="12" fill="#222">input +${esc(d)}</text>`);
  for (const t of xt) {
    o.push(`<line x1="${fmt(px(t))}" y1="${T - 6}" x2="${fmt(px(t))}" y2="${Hgt - B}" stroke="#e3e3e3"/>`);
    o.push(`<text x="${fmt(px(t))}" y="${Hgt - B + 18}" font-size="12" text-anchor="middle" fill="#333">${esc(money(t))}</text>`);
  }
  o.push(`<text x="${fmt((P + W - R) / 2)}" y="${Hgt - 12}" font-size="13" text-anchor="middle" fill="#333">` +
    `NPV of ${sens.strategy} (USD)</text>`);
  rows.forEach((r, i) => {
    const y = T + i * rowH;
    const flips = r.winner_low !== sens.strategy || r.winner_high !== sens.strategy ? ' *' : '';
    o.push(`<text x="${L - 10}" y="${y + rowH / 2 + 4}" font-size="12" text-anchor="end" fill="#222">` +
      `${esc(labels[i] + flips)}</text>`);
    const bar = (v: number, yy: number, color: string): void => {
      const a = Math.min(px(v), px(sens.base_npv));
      const w = Math.max(1, Math.abs(px(v) - px(sens.base_npv)));
      o.push(`<rect x="${fmt(a)}" y="${fmt(yy)}" width="${fmt(w)}" height="${fmt(rowH / 2 - 3)}" fill="${color}"/>`);
      const right = v >= sens.base_npv;
      o.push(`<text x="${fmt(right ? a + w + 4 : a - 4)}" y="${fmt(yy + rowH / 2 - 6)}" font-size="10" ` +
        `text-anchor="${right ? 'start' : 'end'}" fill="#444">${esc(money(v))}</text>`);
    };
    bar(r.npv_low, y + 3, low);
    bar(r.npv_high, y + rowH / 2, high);
  });
  if (rows.length === 0) {
    o.push(`<text x="${P}" y="${T + 18}" font-size="13" fill="#555">No input moves the NPV.</text>`);
  }
  o.push(`<line x1="${fmt(px(sens.base_npv))}" y1="${T - 6}" x2="${fmt(px(sens.base_npv))}" y2="${Hgt - B}" ` +
    `stroke="#222" stroke-width="1.5"/>`);
  o.push(`<text x="${fmt(px(sens.base_npv))}" y="${T - 10}" font-size="11" text-anchor="middle" fill="#222">` +
    `base ${esc(money(sens.base_npv))}</text>`);
  o.push('</svg>');
  return o.join('\n') + '\n';
}

function table(head: string[], rows: string[][], align: ('l' | 'r')[]): string {
  const sep = align.map((a) => (a === 'r' ? '---:' : '---'));
  return [head, sep, ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
}

function optMoney(x: number | null): string {
  return x === null ? '-' : money(x);
}

export interface ReportOptions {
  /** The scenario path as the user gave it, for the "generated by" line. */
  scenarioPath?: string;
}

/** report.md's text; it links cash.svg and tornado.svg beside it. */
export function reportMarkdown(plan: Plan, opts: ReportOptions = {}): string {
  const s = plan.scenario;
  const H = s.horizon_months;
  const rec = plan.recommendation;
  const m = plan.metrics;
  const o: string[] = [];
  const strat = (k: Strategy): string => (k === rec.strategy ? `**${k}** (recommended)` : k);
  o.push(`# ajar plan: ${s.name}`, '');
  const caveat = assumptionNote(plan);
  o.push(`**Recommendation${caveat !== '' ? ` (${caveat})` : ''}:** ${rec.text}`, '');
  o.push(`Horizon ${H} months; discount rate ${pct(s.discount_rate_annual)}/year ` +
    `(${pct(monthlyRate(s.discount_rate_annual))}/month); hardware cost of serving: ` +
    `${money(plan.compute_cost_per_1m_usd)} per 1M generated tokens. Formulas and units: docs/plan.md.`, '');
  const defaults = inputsBySource(plan, 'default');
  const assumed = inputsBySource(plan, 'assumption');
  const measured = inputsBySource(plan, 'measured');
  o.push(`Inputs: ${measured.length} measured by ajar, ${assumed.length} marked ASSUMPTION in the scenario, ` +
    `${defaults.length} left at a code default, the rest given (see Inputs below).`, '');
  if (defaults.length > 0) {
    o.push(`> **Defaults used: assumptions to set in the scenario.** ` +
      `${defaults.map(([k, p]) => `\`${k}\`: ${p.note}`).join('; ')}.`, '');
  }

  o.push('## Money', '');
  o.push(table(['', ...STRATEGIES.map(strat)], [
    ['NPV', ...STRATEGIES.map((k) => money(m[k].npv_usd))],
    ['break-even month', ...STRATEGIES.map((k) => String(m[k].break_even_month ?? 'never'))],
    ['training (month 0)', ...STRATEGIES.map((k) => money(plan.projections[k].upfront_usd))],
    [`cash at month ${H}`, ...STRATEGIES.map((k) => money(m[k].final_cash_usd))],
    ['lowest cash (funding need)', ...STRATEGIES.map((k) => money(m[k].min_cash_usd))],
    [`revenue, ${H} months`, ...STRATEGIES.map((k) => money(m[k].total_revenue_usd))],
    [`costs, ${H} months`, ...STRATEGIES.map((k) => money(m[k].total_cost_usd))],
    ['of which committed (training, fixed, always-on machines)',
      ...STRATEGIES.map((k) => money(m[k].committed_cost_usd))],
    ['tokens served', ...STRATEGIES.map((k) => compact(m[k].served_tokens))],
    ['serving cost / 1M tokens', ...STRATEGIES.map((k) => optMoney(m[k].serving_cost_per_1m_usd))],
    ['all-in cost / 1M tokens', ...STRATEGIES.map((k) => optMoney(m[k].all_in_cost_per_1m_usd))],
  ], ['l', 'r', 'r', 'r']), '');
  o.push('![Cumulative cash by strategy](cash.svg)', '');

  o.push('## Scorecard', '');
  o.push('Each factor scored 0..10 by the rules in docs/plan.md; the total is the weighted mean.', '');
  o.push(table(['factor', 'weight', ...STRATEGIES.map(strat)], [
    ...FACTORS.map((f) => [FACTOR_LABELS[f], pct(plan.scorecard.weights[f]),
      ...STRATEGIES.map((k) => plan.scorecard.scores[k][f].toFixed(1))]),
    ['**scorecard total**', '100%', ...STRATEGIES.map((k) => plan.scorecard.totals[k].toFixed(2))],
    ['financial score (normalised NPV)', '', ...STRATEGIES.map((k) => plan.financial_scores[k].toFixed(3))],
    [`**combined** (${pct(s.weights.financial)} financial)`, '',
      ...STRATEGIES.map((k) => rec.combined[k].toFixed(3))],
  ], ['l', 'r', 'r', 'r', 'r']), '');

  o.push('## What flips the recommendation', '');
  if (rec.flips.length === 0) {
    o.push('No single input flips it within the searched ranges.', '');
  } else {
    o.push(`Each input moved alone (others fixed) until the recommendation changes; nearest first.`, '');
    o.push(table(['input', 'flips to', 'when', 'relative change'], rec.flips.slice(0, 12).map((f) =>
      [`\`${f.field}\``, f.to, flipText(f).slice(f.field.length + 1), pct(f.distance)]), ['l', 'l', 'l', 'r']), '');
  }
  const flipped = new Set(rec.flips.map((f) => f.field));
  const steady = variableParams(s).filter((p) => !flipped.has(p.path)).map((p) => `\`${p.path}\``);
  if (steady.length > 0) {
    o.push(`No value in the searched range (shares over [0, 1], growth rates over [-50%, 100%]/month, amounts ` +
      `from x0.1 to x10) flips it for: ${steady.join(', ')}.`, '');
  }

  const sens = plan.sensitivity;
  o.push('## Sensitivity', '');
  o.push(`NPV of ${sens.strategy} (base ${money(sens.base_npv)}) with each input moved ` +
    `\u00b1${pct(sens.delta)} alone, largest swing first; "lead" is ${sens.strategy}'s NPV minus ` +
    `${sens.runner_up}'s.`, '');
  o.push('![Tornado: NPV swing per input](tornado.svg)', '');
  const sensRows = sens.rows.filter((r) => r.swing > 0);
  o.push(table(['input', 'low / base / high', 'NPV low', 'NPV high', 'lead low', 'lead high', 'recommendation low / high'],
    sensRows.map((r) => [`\`${r.field}\``,
      `${fieldValue(r.field, r.low_value)} / ${fieldValue(r.field, r.base)} / ${fieldValue(r.field, r.high_value)}`,
      money(r.npv_low), money(r.npv_high), money(r.lead_low), money(r.lead_high), `${r.winner_low} / ${r.winner_high}`]),
  ['l', 'l', 'r', 'r', 'r', 'r', 'l']), '');
  const flat = sens.rows.filter((r) => r.swing === 0 && (r.winner_low !== sens.strategy || r.winner_high !== sens.strategy));
  if (flat.length > 0) {
    o.push(`Inputs that leave the NPV unchanged but flip the recommendation at \u00b1${pct(sens.delta)}: ` +
      `${flat.map((r) => `\`${r.field}\` (${r.winner_low} / ${r.winner_high})`).join(', ')}.`, '');
  }

  o.push('## Inputs', '');
  const inputRows: string[][] = [];
  for (const { path, field } of leafFields()) {
    const v = field.kind === 'number' ? getNumber(s, path) : undefined;
    if (v === undefined) continue;
    const p = plan.provenance[path];
    inputRows.push([`\`${path}\``, sig(v, 4), field.kind === 'number' ? field.unit : '', sourceText(p)]);
  }
  o.push(table(['field', 'value', 'unit', 'source'], inputRows, ['l', 'r', 'l', 'l']), '');

  o.push('## Monthly projection', '');
  for (const k of STRATEGIES) {
    const pr = plan.projections[k];
    o.push(`<details><summary>${k}: month by month (training ${money(pr.upfront_usd)} in month 0)</summary>`, '');
    o.push(table(['month', 'tokens in', 'tokens out', 'paying adopters', 'machine-hours', 'revenue', 'serving',
      'fixed', 'margin', 'cumulative'], pr.months.map((r) => [String(r.month), compact(r.input_tokens),
      compact(r.output_tokens), sig(r.paying_adopters), sig(r.machine_hours), money(r.revenue_usd),
      money(r.serving_usd), money(r.fixed_usd), money(r.margin_usd), money(r.cumulative_usd)]),
    ['r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r']), '', '</details>', '');
  }
  const cmd = opts.scenarioPath ? `ajar plan ${opts.scenarioPath} --report DIR` : 'ajar plan SCENARIO --report DIR';
  o.push(`---`, `Generated by \`${cmd}\`.`, '');
  return o.join('\n');
}

function sourceText(p: Provenance | undefined): string {
  if (p === undefined) return '';
  switch (p.source) {
    case 'default': return `**default (assumption: set this)**: ${p.note ?? ''}`;
    case 'assumption': return '*assumption (marked in the scenario): set this*';
    case 'measured': return `measured: ${p.note ?? ''}`;
    case 'given': return p.note ? `given; ${p.note}` : 'given';
  }
}

/** The report's files by name. */
export function renderReport(plan: Plan, opts: ReportOptions = {}): Record<string, string> {
  return { 'report.md': reportMarkdown(plan, opts), 'cash.svg': cashSvg(plan), 'tornado.svg': tornadoSvg(plan) };
}

/**
 * Write files into dir atomically: into a fresh temp directory beside it, then one rename. An existing
 * non-empty dir is refused unless replace is set (then it is swapped out and removed after the rename).
 */
export function writeReport(dir: string, files: Record<string, string>, replace = false): void {
  const target = resolve(dir);
  if (existsSync(target)) {
    if (!statSync(target).isDirectory()) {
      throw new AjarError('bad_flag', `--report: '${dir}' exists and is not a directory`);
    }
    if (readdirSync(target).length > 0 && !replace) {
      throw new AjarError('bad_flag', `--report: '${dir}' exists and is not empty; choose a new directory, ` +
        'or pass --force to replace it');
    }
  }
  mkdirSync(dirname(target), { recursive: true });
  const stamp = `${process.pid}-${Date.now()}`;
  const tmp = join(dirname(target), `.${basename(target)}.tmp-${stamp}`);
  try {
    mkdirSync(tmp);
    for (const [name, text] of Object.entries(files)) writeFileSync(join(tmp, name), text);
    replaceDir(tmp, target, join(dirname(target), `.${basename(target)}.old-${stamp}`));
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    if (e instanceof AjarError) throw e;
    throw new AjarError('bad_flag', `--report: cannot write '${dir}': ${(e as Error).message}`);
  }
}
