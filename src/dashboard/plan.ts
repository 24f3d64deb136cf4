// The plan page's computation: a scenario's YAML text (the file the page opened) and the numbers edited on the
// page -> src/plan's whole plan, its two SVG charts and the inputs the page may edit. Recomputed on every change.
import {
  buildPlan, cashSvg, fieldAt, getNumber, parseScenario, tornadoSvg, variableParams, withNumber, type NumberField, type Plan,
} from '../plan/index.js';
import type { PlanRequest } from '../serve/dashboard/index.js';
import { AjarError } from '../tensor/errors.js';

export interface PlanInput {
  path: string;
  value: number;
  unit: string;
  doc: string;
  source: string;
}

export interface PlanView {
  plan: Plan;
  cash_svg: string;
  tornado_svg: string;
  inputs: PlanInput[];
}

/** `baseDir` resolves the scenario's relative measurement paths (from_metrics, from_bench, from_usage). */
export function planView(req: PlanRequest, baseDir: string): PlanView {
  const loaded = parseScenario(req.scenario, { fileName: req.fileName, baseDir });
  let scenario = loaded.scenario;
  const editable = new Set(variableParams(scenario).map((p) => p.path));
  for (const [path, value] of Object.entries(req.overrides)) {
    if (!editable.has(path)) throw new AjarError('bad_scenario', `'${path}' is not an input the plan can vary`);
    const f = fieldAt(path);
    if (f?.kind === 'number') {
      const problem = outOfBounds(f, value);
      if (problem !== null) throw new AjarError('bad_scenario', `${path} must be ${problem}, got ${value}`);
    }
    scenario = withNumber(scenario, path, value);
  }
  const provenance = { ...loaded.provenance };
  for (const path of Object.keys(req.overrides)) provenance[path] = { source: 'given', note: 'edited on the dashboard' };
  const plan = buildPlan({ scenario, provenance });
  const inputs = variableParams(scenario).map(({ path, field }) => ({
    path, value: getNumber(scenario, path)!, unit: field.unit ?? '', doc: field.doc ?? '', source: provenance[path]?.source ?? 'default',
  }));
  return { plan, cash_svg: cashSvg(plan), tornado_svg: tornadoSvg(plan), inputs };
}

/** What an edited number breaks of its field's bounds (schema.ts), or null. */
function outOfBounds(f: NumberField, v: number): string | null {
  if (f.int === true && !Number.isInteger(v)) return 'a whole number';
  if (f.min !== undefined && v < f.min) return `>= ${f.min}`;
  if (f.gt !== undefined && v <= f.gt) return `> ${f.gt}`;
  if (f.max !== undefined && v > f.max) return `<= ${f.max}`;
  if (f.fraction === true && (v < 0 || v > 1)) return 'a share between 0 and 1';
  if (f.rate === true && (v <= -1 || v > 1)) return 'a monthly rate above -1 and at most 1 (100%)';
  return null;
}
