// Number formatting shared by the terminal table, the Markdown report, the SVG charts and the
// recommendation text: money as $1.23M, counts as 2.5B, fractions as 35%, a field's value in its unit.
import { fieldAt } from './schema.js';

/** 3 significant digits, trailing zeros trimmed: 1234 -> '1230', 0.012345 -> '0.0123'. */
export function sig(x: number, digits = 3): string {
  if (x === 0 || !Number.isFinite(x)) return String(x);
  const s = Number(x.toPrecision(digits));
  return Math.abs(s) >= 1e21 ? s.toExponential(2) : String(s);
}

/** A compact number: 2500000 -> '2.5M', 1.2e9 -> '1.2B', 950 -> '950'. */
export function compact(x: number, digits = 3): string {
  const a = Math.abs(x);
  const units: [number, string][] = [[1e12, 'T'], [1e9, 'B'], [1e6, 'M'], [1e3, 'k']];
  for (const [size, suffix] of units) {
    // NOTE: compare after rounding so 999_950 prints as '1M', not '1000k'.
    if (Number(a.toPrecision(digits)) >= size) return `${sig(x / size, digits)}${suffix}`;
  }
  return sig(x, digits);
}

/** Money in USD: 1234567 -> '$1.23M', -2500 -> '-$2.5k', 0.4567 -> '$0.457'. */
export function money(x: number): string {
  const body = compact(Math.abs(x));
  return x < 0 ? `-$${body}` : `$${body}`;
}

/** A fraction as a percentage: 0.0825 -> '8.25%'. */
export function pct(x: number): string {
  return `${sig(x * 100)}%`;
}

/** A scenario field's value written in its unit: money for USD fields, % for shares and rates. */
export function fieldValue(path: string, x: number): string {
  const f = fieldAt(path);
  if (f === undefined || f.kind !== 'number') return sig(x);
  if (f.unit.startsWith('USD')) return money(x);
  if (f.rate) return `${pct(x)}/month`;
  if (f.fraction && path.startsWith('risk.')) return sig(x, 2);
  if (f.fraction) return pct(x);
  return compact(x);
}
