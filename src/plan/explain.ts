// The recommendation in words: which strategy wins, the components of the combined score that make it win
// (and the one that argues against it), and the nearest single-input change that would flip it.
import { fieldValue, money } from './format.js';
import type { Evaluation } from './model.js';
import { FACTORS, type Factor } from './schema.js';
import type { Flip } from './sensitivity.js';
import type { Scenario, Strategy } from './types.js';

export const FACTOR_LABELS: Record<Factor, string> = {
  ip_protection: 'IP protection',
  cost: 'cost',
  user_flexibility: 'user flexibility',
  team_capability: 'team capability',
  market_strategy: 'market strategy',
  data_privacy: 'data privacy',
};

/** One component of (winner's combined score - runner-up's): NPV or a weighted factor. */
export interface Contribution {
  component: 'npv' | Factor;
  /** Points of combined score (0..1 scale) this component gives the winner over the runner-up. */
  value: number;
  winner_value: number;
  runner_up_value: number;
}

export interface Recommendation {
  strategy: Strategy;
  runner_up: Strategy;
  combined: Record<Strategy, number>;
  /** Components, largest in the winner's favour first. */
  contributions: Contribution[];
  /** Nearest flips, at most one per input, nearest first. */
  flips: Flip[];
  text: string;
}

/** Split the winner's lead over the runner-up into its NPV part and one part per factor. */
export function contributions(s: Scenario, e: Evaluation): Contribution[] {
  const [w, r] = e.decision.ranking;
  const a = s.weights.financial;
  const out: Contribution[] = [{
    component: 'npv', value: a * (e.decision.financial[w] - e.decision.financial[r]),
    winner_value: e.metrics[w].npv_usd, runner_up_value: e.metrics[r].npv_usd,
  }];
  for (const f of FACTORS) {
    const sw = e.scorecard.scores[w][f];
    const sr = e.scorecard.scores[r][f];
    out.push({ component: f, value: ((1 - a) * e.scorecard.weights[f] * (sw - sr)) / 10, winner_value: sw,
      runner_up_value: sr });
  }
  return out.sort((x, y) => y.value - x.value);
}

function reasonFor(c: Contribution, runnerUp: Strategy): string {
  if (c.component === 'npv') {
    return `it has the higher NPV (${money(c.winner_value)} vs ${money(c.runner_up_value)} for ${runnerUp})`;
  }
  return `it scores higher on ${FACTOR_LABELS[c.component]} (${c.winner_value.toFixed(1)} vs ` +
    `${c.runner_up_value.toFixed(1)} of 10)`;
}

function againstFor(c: Contribution, runnerUp: Strategy): string {
  if (c.component === 'npv') {
    return `${runnerUp} has the higher NPV (${money(c.runner_up_value)} vs ${money(c.winner_value)})`;
  }
  return `${runnerUp} does better on ${FACTOR_LABELS[c.component]} (${c.runner_up_value.toFixed(1)} vs ` +
    `${c.winner_value.toFixed(1)})`;
}

export function flipText(f: Flip): string {
  return `${f.field} ${f.direction} ${fieldValue(f.field, f.at)} (now ${fieldValue(f.field, f.from)})`;
}

/** The recommendation and its explanation; flips come from findFlips (nearest first). */
export function recommend(s: Scenario, e: Evaluation, allFlips: Flip[]): Recommendation {
  const [w, r, third] = e.decision.ranking;
  const c = e.decision.combined;
  const parts = contributions(s, e);
  const pros = parts.filter((p) => p.value > 1e-9).slice(0, 2);
  const con = parts.filter((p) => p.value < -1e-9).at(-1);
  const seen = new Set<string>();
  const flips = allFlips.filter((f) => !seen.has(f.field) && seen.add(f.field));

  const lead = c[w] - c[r];
  let text = `${w} (combined score ${c[w].toFixed(2)}, against ${c[r].toFixed(2)} for ${r} ` +
    `and ${c[third].toFixed(2)} for ${third}${lead < 0.02 ? '; a close call' : ''}). `;
  if (pros.length > 0) {
    text += `${cap(w)} wins because ${pros.map((p) => reasonFor(p, r)).join(' and ')}`;
    text += con ? `, although ${againstFor(con, r)}. ` : '. ';
  } else {
    text += `${cap(w)} and ${r} tie; ${w} wins the tie-break (higher NPV, then closed, hybrid, open). `;
  }
  if (flips.length > 0) {
    text += `It flips to ${flips[0].to} if ${flipText(flips[0])}`;
    const next = flips.slice(1, 3).map((f) => `to ${f.to} if ${flipText(f)}`);
    text += next.length > 0 ? `; next nearest: ${next.join('; ')}.` : '.';
  } else {
    text += 'No single input flips it within the searched ranges (see docs/plan.md, flip search).';
  }
  return { strategy: w, runner_up: r, combined: c, contributions: parts, flips, text };
}

function cap(x: string): string {
  return x.charAt(0).toUpperCase() + x.slice(1);
}
