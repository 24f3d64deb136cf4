// Scenario files: YAML text -> a validated, fully numeric Scenario plus where each number came from
// (given, measured from a file, or a default to be set). Every mistake is an AjarError('bad_scenario')
// naming the field path, e.g. "pricing.output_per_1m_usd must be >= 0, got -3 (scenario.yaml:31)".
import { readFileSync } from 'node:fs';
import { basename, dirname, extname } from 'node:path';
import { isMap, isScalar, LineCounter, parseDocument, type Document } from 'yaml';
import { AjarError } from '../tensor/errors.js';
import { describeRun, measurementPath, parseBench, parseMetrics, parseUsage, readMeasurement, type Source } from './measurements.js';
import { fieldAt, SCHEMA, type Field, type GroupField, type NumberField } from './schema.js';
import type { LoadedScenario, Provenance, Scenario } from './types.js';

export { STRATEGIES, type FixedCosts, type LoadedScenario, type Provenance, type Scenario, type Strategy } from './types.js';

export interface ScenarioOptions {
  /** Allow growth rates above 100%/month. */
  allowExtreme?: boolean;
  /** Directory that relative measurement paths are resolved against. */
  baseDir?: string;
  /** Name used in error messages and as the default title. */
  fileName?: string;
}

type Raw = Record<string, unknown>;

/** Locates a field path in the YAML source so errors can say "file:line". */
class Locator {
  private readonly source: string[];

  constructor(private readonly doc: Document, private readonly lines: LineCounter, private readonly file: string,
    text: string) {
    this.source = text.split('\n');
  }

  /** Whether the line of this field's key, or of a group key above it, carries a '# ... ASSUMPTION' comment. */
  assumed(path: string): boolean {
    let node: unknown = this.doc.contents;
    for (const key of path.split('.')) {
      if (!isMap(node)) return false;
      const pair = node.items.find((p) => isScalar(p.key) && p.key.value === key);
      if (pair === undefined || !isScalar(pair.key) || pair.key.range == null) return false;
      const line = this.source[this.lines.linePos(pair.key.range[0]).line - 1] ?? '';
      if (/#.*\bASSUMPTION\b/.test(line)) return true;
      node = pair.value;
    }
    return false;
  }

  where(path: string): string {
    const keys = path.split('.');
    for (let n = keys.length; n > 0; n--) {
      const node = this.doc.getIn(keys.slice(0, n), true) as { range?: [number, number, number] } | undefined;
      if (node?.range) return ` (${this.file}:${this.lines.linePos(node.range[0]).line})`;
    }
    return ` (${this.file})`;
  }
}

class Validator {
  constructor(readonly loc: Locator, readonly allowExtreme: boolean) {}

  fail(path: string, message: string): never {
    throw new AjarError('bad_scenario', `${path} ${message}${this.loc.where(path)}`);
  }

  /** A problem with the measurement file a field names: "field: 'file' what (scenario:line)". */
  failFile(src: Source, what: string): never {
    throw new AjarError('bad_scenario', `${src.field}: '${src.file}' ${what}${this.loc.where(src.field)}`);
  }

  group(value: unknown, spec: GroupField, path: string): Raw {
    const label = path === '' ? 'the scenario' : path;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      if (path === '') throw new AjarError('bad_scenario', `the scenario must be a YAML mapping of fields${this.loc.where('')}`);
      this.fail(label, `must be a mapping of fields (${Object.keys(spec.fields).join(', ')}), got ${show(value)}`);
    }
    const raw = value as Raw;
    for (const key of Object.keys(raw)) {
      if (!(key in spec.fields)) {
        const full = path === '' ? key : `${path}.${key}`;
        const hint = nearest(key, Object.keys(spec.fields));
        this.fail(full, `is not a known field${hint ? `; did you mean '${hint}'?` : ''} ` +
          `(${label} holds: ${Object.keys(spec.fields).join(', ')})`);
      }
    }
    const out: Raw = {};
    for (const [key, field] of Object.entries(spec.fields)) {
      const full = path === '' ? key : `${path}.${key}`;
      const v = raw[key];
      if (v === undefined || v === null) {
        if (field.kind === 'group' && field.optional) out[key] = this.group({}, field, full);
        else if (field.kind === 'number' && field.default !== undefined) out[key] = undefined;
        else if (!field.optional) this.fail(full, `is missing: ${describe(field)} (see docs/plan.md)`);
        continue;
      }
      out[key] = this.value(v, field, full);
    }
    return out;
  }

  value(v: unknown, field: Field, path: string): unknown {
    if (field.kind === 'group') return this.group(v, field, path);
    if (field.kind !== 'number') {
      if (typeof v !== 'string' || v.trim() === '') {
        this.fail(path, `must be a ${field.kind === 'path' ? 'file path' : 'string'}, got ${show(v)}`);
      }
      return v;
    }
    return this.number(v, field, path);
  }

  number(v: unknown, f: NumberField, path: string): number {
    let x: number;
    if (typeof v === 'number') {
      x = v;
    } else if (typeof v === 'string' && (f.fraction || f.rate) && /^\s*-?[0-9.]+(e[-+]?[0-9]+)?\s*%\s*$/i.test(v)) {
      x = Number(v.trim().replace(/\s*%$/, '')) / 100;
    } else if (typeof v === 'string') {
      return this.fail(path, `must be a bare number in ${f.unit}, got '${v}'` +
        (f.fraction || f.rate ? " (a percentage like '35%' also works)" : ' (write the number without units)'));
    } else {
      return this.fail(path, `must be a number in ${f.unit}, got ${show(v)}`);
    }
    if (!Number.isFinite(x)) this.fail(path, `must be a finite number in ${f.unit}, got ${show(v)}`);
    if (f.int && !Number.isInteger(x)) this.fail(path, `must be a whole number of ${f.unit}, got ${x}`);
    if (f.fraction && (x < 0 || x > 1)) {
      const hint = x > 1 && x <= 100 ? `; did you mean ${x / 100} (${x}%)?` : '';
      this.fail(path, `must be a fraction in [0, 1], got ${x}${hint}`);
    }
    if (f.rate) {
      if (x <= -1) this.fail(path, `must be > -1 (a ${f.unit}; -1 would mean everything vanishes), got ${x}`);
      if (x > 1 && !this.allowExtreme) {
        this.fail(path, `is ${x} (${pct(x)}/month); growth above 100%/month is almost surely a mistake ` +
          `(a percentage written as a fraction?): write e.g. 0.08 for 8%/month, or pass --allow-extreme`);
      }
    }
    if (f.min !== undefined && x < f.min) this.fail(path, `must be >= ${f.min}, got ${x}`);
    if (f.gt !== undefined && x <= f.gt) this.fail(path, `must be > ${f.gt}, got ${x}`);
    if (f.max !== undefined && x > f.max) this.fail(path, `must be <= ${f.max}, got ${x}`);
    return x;
  }
}

function pct(x: number): string {
  return `${Math.round(x * 1000) / 10}%`;
}

function show(v: unknown): string {
  if (typeof v === 'string') return `'${v}'`;
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object' && v !== null) return 'a mapping';
  return String(v);
}

function describe(field: Field): string {
  if (field.kind === 'number') return `${field.doc}, in ${field.unit}`;
  return field.doc;
}

/** The candidate closest to key by edit distance, if it is close enough to be a typo. */
function nearest(key: string, candidates: string[]): string | null {
  let best: string | null = null;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(key, c);
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return bestD <= Math.max(2, Math.floor(key.length / 3)) ? best : null;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return row[b.length];
}

/** Parse and validate scenario text; read the measurement files it names (relative to opts.baseDir). */
export function parseScenario(text: string, opts: ScenarioOptions = {}): LoadedScenario {
  const file = opts.fileName ?? 'scenario';
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    const line = e.linePos?.[0].line ?? lines.linePos(e.pos[0]).line;
    throw new AjarError('bad_scenario', `${file}:${line} is not valid YAML: ${e.message.split('\n')[0]}`);
  }
  if (!isMap(doc.contents)) {
    throw new AjarError('bad_scenario', `${file} must be a YAML mapping of fields (see examples/plan/scenario.yaml)`);
  }
  const loc = new Locator(doc, lines, file, text);
  const v = new Validator(loc, opts.allowExtreme === true);
  const raw = v.group(doc.toJS(), SCHEMA, '');
  return resolve(raw, v, opts.baseDir ?? '.', defaultName(file));
}

function defaultName(file: string): string {
  return basename(file, extname(file));
}

/** Read a scenario file; measurement paths in it are relative to the file's directory. */
export function loadScenario(path: string, opts: Omit<ScenarioOptions, 'baseDir' | 'fileName'> = {}): LoadedScenario {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new AjarError('bad_scenario', `cannot read scenario '${path}' (${code === 'ENOENT' ? 'no such file' : code})`);
  }
  return parseScenario(text, { ...opts, baseDir: dirname(path), fileName: path });
}

function sub(raw: Raw, key: string): Raw {
  return raw[key] as Raw;
}

function numAt(raw: Raw, key: string): number | undefined {
  return raw[key] as number | undefined;
}

/** Turn validated raw fields into numbers: read measurements, apply defaults, check either/or fields. */
function resolve(raw: Raw, v: Validator, baseDir: string, fallbackName: string): LoadedScenario {
  const prov: Record<string, Provenance> = {};
  const given = (path: string): void => {
    prov[path] = v.loc.assumed(path) ? { source: 'assumption', note: 'marked ASSUMPTION in the scenario' }
      : { source: 'given' };
  };
  const oneOf = (group: string, keys: string[], r: Raw): string => {
    const present = keys.filter((k) => r[k] !== undefined);
    if (present.length !== 1) {
      const list = keys.map((k) => `${group}.${k}`).join(', ');
      v.fail(group, present.length === 0 ? `needs one of ${list}`
        : `has both ${present.map((k) => `${group}.${k}`).join(' and ')}; keep exactly one of ${list}`);
    }
    return present[0];
  };
  const defaulted = (path: string, value: number, note: string): number => {
    prov[path] = { source: 'default', note };
    return value;
  };
  const numberOrDefault = (r: Raw, group: string, key: string): number => {
    const x = numAt(r, key);
    const path = group === '' ? key : `${group}.${key}`;
    if (x !== undefined) {
      given(path);
      return x;
    }
    const f = fieldAt(path) as NumberField;
    return defaulted(path, f.default!, `default ${f.default} ${f.unit}; set ${path} to your own value`);
  };

  // Plain numeric groups: copy them and mark them given.
  const plain = (group: string): Raw => {
    const r = sub(raw, group);
    const out: Raw = {};
    for (const [k, x] of Object.entries(r)) {
      if (typeof x === 'object' && x !== null) {
        out[k] = Object.fromEntries(Object.entries(x as Raw).map(([k2, y]) => {
          given(`${group}.${k}.${k2}`);
          return [k2, y];
        }));
      } else {
        given(`${group}.${k}`);
        out[k] = x;
      }
    }
    return out;
  };

  const hw = plain('hardware') as Scenario['hardware'];

  // Throughput: exactly one of from_bench, from_metrics, tokens_per_s.
  const tr = sub(raw, 'throughput');
  let tokensPerS: number;
  const which = oneOf('throughput', ['from_bench', 'from_metrics', 'tokens_per_s'], tr);
  if (which === 'from_bench') {
    const src: Source = { field: 'throughput.from_bench', file: tr.from_bench as string };
    const b = parseBench(readMeasurement(src, baseDir), src);
    tokensPerS = b.tokens_per_s;
    prov['throughput.tokens_per_s'] = { source: 'measured',
      note: `tokens_per_s from ${src.file}${b.workload ? ` (workload ${b.workload})` : ''}` };
  } else if (which === 'from_metrics') {
    const src: Source = { field: 'throughput.from_metrics', file: tr.from_metrics as string };
    const m = parseMetrics(readMeasurement(src, baseDir), src);
    if (m.tokens_per_s_median === null) v.failFile(src, 'has no line with tokens_per_s');
    tokensPerS = m.tokens_per_s_median;
    prov['throughput.tokens_per_s'] = { source: 'measured',
      note: `median training tokens_per_s over ${m.lines} lines of ${src.file} (a proxy for serving speed)` };
  } else {
    tokensPerS = tr.tokens_per_s as number;
    given('throughput.tokens_per_s');
  }
  const measuredCores = numAt(tr, 'measured_cores');
  if (measuredCores !== undefined) given('throughput.measured_cores');
  else prov['throughput.measured_cores'] = { source: 'default',
    note: `assumed measured on this hardware (${hw.cores} cores); set throughput.measured_cores if not` };
  given('throughput.input_token_cost');
  const throughput: Scenario['throughput'] = {
    tokens_per_s: tokensPerS,
    measured_cores: measuredCores ?? hw.cores,
    input_token_cost: tr.input_token_cost as number,
  };

  // Training: compute hours from a run's metrics or given.
  const tg = sub(raw, 'training');
  const machines = numberOrDefault(tg, 'training', 'machines');
  const hoursFrom = (metricsKey: string, hoursKey: string): number => {
    const k = oneOf('training', [metricsKey, hoursKey], tg);
    if (k === hoursKey) {
      if (tg.machines !== undefined && hoursKey === 'compute_hours') {
        v.fail('training.machines', 'only applies to training.from_metrics; training.compute_hours is already ' +
          'machine-hours (remove one of them)');
      }
      given(`training.${hoursKey}`);
      return tg[hoursKey] as number;
    }
    const src: Source = { field: `training.${metricsKey}`, file: tg[metricsKey] as string };
    const m = parseMetrics(readMeasurement(src, baseDir), src);
    const hours = (m.elapsed_s / 3600) * machines;
    prov[`training.${hoursKey}`] = { source: 'measured',
      note: `elapsed_s ${m.elapsed_s} from ${src.file} (${describeRun(measurementPath(src, baseDir))}) / 3600 x ${machines} machine(s)` };
    return hours;
  };
  const computeHours = hoursFrom('from_metrics', 'compute_hours');
  const adapterHours = hoursFrom('adapter_from_metrics', 'adapter_compute_hours');
  let trainUsd = numAt(tg, 'usd_per_hour');
  if (trainUsd !== undefined) given('training.usd_per_hour');
  else trainUsd = defaulted('training.usd_per_hour', hw.usd_per_hour,
    'assumed the serving machine\'s price (hardware.usd_per_hour); set training.usd_per_hour if training ran elsewhere');
  // training.machines only means something when a run's metrics were read; then its default is an assumption.
  if (tg.from_metrics === undefined && tg.adapter_from_metrics === undefined) delete prov['training.machines'];

  // Demand: from a closed server's usage, or given.
  const dm = sub(raw, 'demand');
  let demand: Scenario['demand'];
  if (dm.from_usage !== undefined) {
    for (const k of ['input_tokens_per_month', 'output_tokens_per_month']) {
      if (dm[k] !== undefined) v.fail(`demand.${k}`, 'conflicts with demand.from_usage; keep one of them');
    }
    const src: Source = { field: 'demand.from_usage', file: dm.from_usage as string };
    const u = parseUsage(readMeasurement(src, baseDir), src);
    const window = `${u.window_days} days to ${u.last_day} in ${src.file}, scaled to ${(365 / 12).toFixed(2)} days`;
    prov['demand.input_tokens_per_month'] = { source: 'measured', note: `prompt_tokens over ${window}` };
    prov['demand.output_tokens_per_month'] = { source: 'measured', note: `completion_tokens over ${window}` };
    let growth = numAt(dm, 'growth_per_month');
    if (growth !== undefined) {
      given('demand.growth_per_month');
      if (u.growth_per_month !== null) {
        prov['demand.growth_per_month'].note = `overrides the measured ${pct(u.growth_per_month)}/month from ${src.file}`;
      }
    } else if (u.growth_per_month !== null) {
      growth = u.growth_per_month;
      if (growth > 1 && !v.allowExtreme) {
        v.failFile(src, `shows ${pct(growth)}/month growth; above 100%/month needs --allow-extreme, ` +
          'or set demand.growth_per_month');
      }
      prov['demand.growth_per_month'] = { source: 'measured',
        note: `last 30 days vs the 30 before, to ${u.last_day}, in ${src.file}` };
    } else {
      v.fail('demand.growth_per_month', `is missing: ${src.file} covers ${u.first_day}..${u.last_day}, less than ` +
        'the two 30-day windows needed to measure growth; set it (fraction per month)');
    }
    demand = { input_tokens_per_month: u.input_tokens_per_month, output_tokens_per_month: u.output_tokens_per_month,
      growth_per_month: growth };
  } else {
    for (const k of ['input_tokens_per_month', 'output_tokens_per_month', 'growth_per_month']) {
      if (dm[k] === undefined) {
        v.fail(`demand.${k}`, `is missing: ${(fieldAt(`demand.${k}`) as NumberField).doc}, in ` +
          `${(fieldAt(`demand.${k}`) as NumberField).unit} (or set demand.from_usage)`);
      }
      given(`demand.${k}`);
    }
    demand = dm as Scenario['demand'];
  }

  const weights = plain('weights') as Scenario['weights'];
  const factorSum = Object.values(weights.factors).reduce((a, b) => a + b, 0);
  if (factorSum <= 0) v.fail('weights.factors', 'must not all be 0 (they are normalised by their sum)');

  const name = raw.name as string | undefined;
  given('discount_rate_annual');
  const scenario: Scenario = {
    name: name ?? fallbackName,
    horizon_months: numberOrDefault(raw, '', 'horizon_months'),
    discount_rate_annual: raw.discount_rate_annual as number,
    hardware: hw,
    throughput,
    training: { compute_hours: computeHours, usd_per_hour: trainUsd, adapter_compute_hours: adapterHours },
    demand,
    pricing: plain('pricing') as Scenario['pricing'],
    fixed_costs: plain('fixed_costs') as Scenario['fixed_costs'],
    open: plain('open') as Scenario['open'],
    hybrid: plain('hybrid') as Scenario['hybrid'],
    risk: plain('risk') as Scenario['risk'],
    weights,
    sensitivity: { delta: numberOrDefault(sub(raw, 'sensitivity'), 'sensitivity', 'delta') },
  };
  return { scenario, provenance: prov };
}
