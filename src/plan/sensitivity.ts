// Which inputs matter: a one-at-a-time sensitivity analysis (each input x (1 +- delta), the recommended
// strategy's NPV recorded: the tornado) and a flip search (how far each input must move, alone, before the
// recommendation changes). Pure functions over a resolved Scenario; the inputs and their bounds come from schema.ts.
import { evaluate } from './model.js';
import { leafFields, type NumberField } from './schema.js';
import type { Scenario, Strategy } from './types.js';

/** A numeric input that can be varied: its dotted path and schema field. */
export interface Param {
  path: string;
  field: NumberField;
}

/** The value at a dotted path of the scenario. */
export function getNumber(s: Scenario, path: string): number | undefined {
  let node: unknown = s;
  for (const key of path.split('.')) {
    if (typeof node !== 'object' || node === null) return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  return typeof node === 'number' ? node : undefined;
}

/** A copy of the scenario with one number replaced. */
export function withNumber(s: Scenario, path: string, value: number): Scenario {
  const copy = structuredClone(s);
  const keys = path.split('.');
  // NOTE: the path comes from the schema, whose leaves match Scenario's numeric fields one for one
  // (checked by getNumber in variableParams), so walking it as plain records is safe.
  let node = copy as unknown as Record<string, unknown>;
  for (const key of keys.slice(0, -1)) node = node[key] as Record<string, unknown>;
  node[keys[keys.length - 1]] = value;
  return copy;
}

/** The inputs the analyses vary: schema numbers not marked vary 'none' that the resolved scenario holds. */
export function variableParams(s: Scenario): Param[] {
  const out: Param[] = [];
  for (const { path, field } of leafFields()) {
    if (field.kind !== 'number' || field.vary === 'none') continue;
    if (getNumber(s, path) === undefined) continue;
    out.push({ path, field });
  }
  return out;
}

function clampTo(field: NumberField, x: number): number {
  let lo = field.min ?? -Infinity;
  let hi = field.max ?? Infinity;
  if (field.fraction) {
    lo = Math.max(lo, 0);
    hi = Math.min(hi, 1);
  }
  if (field.rate) lo = Math.max(lo, -0.99);
  return Math.min(hi, Math.max(lo, x));
}

export interface TornadoRow {
  field: string;
  unit: string;
  base: number;
  low_value: number;
  high_value: number;
  /** NPV of the recommended strategy with the input at low_value / high_value (USD). */
  npv_low: number;
  npv_high: number;
  /** |npv_high - npv_low| (USD): the bar's length. */
  swing: number;
  /** NPV of the recommended strategy minus the runner-up's, at low_value / high_value (USD). */
  lead_low: number;
  lead_high: number;
  /** The recommendation with the input at low_value / high_value. */
  winner_low: Strategy;
  winner_high: Strategy;
}

export interface Sensitivity {
  delta: number;
  /** The recommended strategy whose NPV is tracked, and the runner-up it is compared with. */
  strategy: Strategy;
  runner_up: Strategy;
  base_npv: number;
  /** Every variable input, largest swing first. */
  rows: TornadoRow[];
}

/** Vary each input by +-delta (relative, clamped to its bounds) one at a time. */
export function sensitivity(s: Scenario, delta = s.sensitivity.delta): Sensitivity {
  const base = evaluate(s);
  const strategy = base.decision.winner;
  const runnerUp = base.decision.ranking[1];
  const rows: TornadoRow[] = [];
  for (const { path, field } of variableParams(s)) {
    const v = getNumber(s, path)!;
    const lowValue = clampTo(field, v * (1 - delta));
    const highValue = clampTo(field, v * (1 + delta));
    const lo = evaluate(withNumber(s, path, lowValue));
    const hi = evaluate(withNumber(s, path, highValue));
    rows.push({
      field: path, unit: field.unit, base: v, low_value: lowValue, high_value: highValue,
      npv_low: lo.metrics[strategy].npv_usd, npv_high: hi.metrics[strategy].npv_usd,
      swing: Math.abs(hi.metrics[strategy].npv_usd - lo.metrics[strategy].npv_usd),
      lead_low: lo.metrics[strategy].npv_usd - lo.metrics[runnerUp].npv_usd,
      lead_high: hi.metrics[strategy].npv_usd - hi.metrics[runnerUp].npv_usd,
      winner_low: lo.decision.winner, winner_high: hi.decision.winner,
    });
  }
  rows.sort((a, b) => (b.swing - a.swing) || a.field.localeCompare(b.field));
  return { delta, strategy, runner_up: runnerUp, base_npv: base.metrics[strategy].npv_usd, rows };
}

export interface Flip {
  field: string;
  from: number;
  /** The input's value where the recommendation changes (to within 1e-6 relative). */
  at: number;
  direction: 'falls below' | 'rises above';
  /** The recommendation just past the threshold. */
  to: Strategy;
  /** |at - from| / |from|: how far the input must move, relative. */
  distance: number;
}

/** Points to try, ordered outward from v, on the side given by sign (-1 below, +1 above). */
function searchGrid(field: NumberField, v: number, sign: -1 | 1): number[] {
  const pts: number[] = [];
  if (field.vary === 'scale') {
    // ×10^(k/40) for k = 1..40: from ~6% away out to ×10 or ×0.1.
    if (v <= 0) return pts;
    for (let k = 1; k <= 40; k++) pts.push(v * Math.pow(10, (sign * k) / 40));
    return pts;
  }
  const [lo, hi] = field.vary === 'fraction' ? [field.gt !== undefined ? field.gt + 0.005 : 0, 1] : [-0.5, 1];
  const step = 0.01;
  for (let x = v + sign * step; sign < 0 ? x > lo - 1e-12 : x < hi + 1e-12; x += sign * step) pts.push(x);
  const edge = sign < 0 ? lo : hi;
  if ((sign < 0 ? v > edge : v < edge) && pts[pts.length - 1] !== edge) pts.push(edge);
  return pts.filter((x) => (sign < 0 ? x < v : x > v) && x >= lo - 1e-12 && x <= hi + 1e-12);
}

/**
 * For each variable input, walk outward from its value on both sides (shares over [0, 1], growth rates over
 * [-0.5, 1], amounts from x0.1 to x10) until the recommendation changes, then bisect to the threshold.
 * Returns every flip found, nearest (relative distance) first.
 */
export function findFlips(s: Scenario): Flip[] {
  const baseWinner = evaluate(s).decision.winner;
  const winnerAt = (path: string, x: number): Strategy => evaluate(withNumber(s, path, x)).decision.winner;
  const flips: Flip[] = [];
  for (const { path, field } of variableParams(s)) {
    const v = getNumber(s, path)!;
    for (const sign of [-1, 1] as const) {
      let same = v;
      for (const x of searchGrid(field, v, sign)) {
        if (winnerAt(path, x) === baseWinner) {
          same = x;
          continue;
        }
        let other = x;
        for (let i = 0; i < 60 && Math.abs(other - same) > 1e-6 * Math.max(1e-9, Math.abs(v)); i++) {
          const mid = (same + other) / 2;
          if (winnerAt(path, mid) === baseWinner) same = mid;
          else other = mid;
        }
        flips.push({ field: path, from: v, at: other, direction: sign < 0 ? 'falls below' : 'rises above',
          to: winnerAt(path, other), distance: v !== 0 ? Math.abs(other - v) / Math.abs(v) : Math.abs(other - v) });
        break;
      }
    }
  }
  flips.sort((a, b) => (a.distance - b.distance) || a.field.localeCompare(b.field));
  return flips;
}
