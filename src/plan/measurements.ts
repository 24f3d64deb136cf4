// Readers for the measurements other ajar commands write: `ajar bench --json`, a training run's
// metrics.jsonl (and, beside it, whether the run trained a LoRA adapter) and `ajar usage --format json`. The parsers are pure (text in, numbers out); every error is
// an AjarError('bad_scenario') naming the scenario field that pointed at the file, and the file.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { readRegularJson } from '../io/safe-read.js';
import { AjarError } from '../tensor/errors.js';

/** Days in the model's month: a year is 12 equal months of 365/12 days (= 730 hours). */
export const DAYS_PER_MONTH = 365 / 12;

/** Which scenario field named the file, and the file as written there (for error messages). */
export interface Source {
  field: string;
  file: string;
}

function fail(src: Source, what: string): never {
  throw new AjarError('bad_scenario', `${src.field}: '${src.file}' ${what}`);
}

/** The file a scenario field names, resolved: relative paths are relative to baseDir (the scenario's folder). */
export function measurementPath(src: Source, baseDir: string): string {
  return isAbsolute(src.file) ? src.file : resolve(baseDir, src.file);
}

/** Read a measurement file named by a scenario field; relative paths are relative to baseDir. */
export function readMeasurement(src: Source, baseDir: string): string {
  const full = measurementPath(src, baseDir);
  try {
    return readFileSync(full, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'does not exist' : code === 'EISDIR' ? 'is a directory'
      : `cannot be read (${code ?? String(e)})`;
    return fail(src, `${why} (paths are relative to the scenario file: ${full})`);
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function finite(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

export interface BenchResult {
  workload: string | null;
  tokens_per_s: number;
}

/** `ajar bench WORKLOAD --json`: {"workload", "step_ms_median", "tokens_per_s", "peak_rss_mib"}. */
export function parseBench(text: string, src: Source): BenchResult {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    return fail(src, `is not JSON (${(e as Error).message}); expected the output of 'ajar bench WORKLOAD --json'`);
  }
  if (!isRecord(v)) return fail(src, "is not a JSON object; expected the output of 'ajar bench WORKLOAD --json'");
  if (!finite(v.tokens_per_s) || v.tokens_per_s <= 0) {
    return fail(src, `has no tokens_per_s > 0 (got ${JSON.stringify(v.tokens_per_s)}); ` +
      "expected the output of 'ajar bench WORKLOAD --json'");
  }
  return { workload: typeof v.workload === 'string' ? v.workload : null, tokens_per_s: v.tokens_per_s };
}

export interface RunMetrics {
  /** Wall time of the run: the last line that carries elapsed_s. */
  elapsed_s: number;
  /** Median of the lines' tokens_per_s, or null when no line has one. */
  tokens_per_s_median: number | null;
  lines: number;
}

/** A training run's metrics.jsonl: one JSON object per line, e.g. {"step", "train_loss", "tokens_per_s", "elapsed_s"}. */
export function parseMetrics(text: string, src: Source): RunMetrics {
  let elapsed: number | null = null;
  const rates: number[] = [];
  let count = 0;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === '') continue;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      return fail(src, `line ${i + 1} is not JSON; expected one JSON object per line (metrics.jsonl)`);
    }
    if (!isRecord(v)) return fail(src, `line ${i + 1} is not a JSON object`);
    count++;
    // NOTE: the last line may be a validation record ({"step", "val_loss"}) without elapsed_s,
    // so the wall time is the last elapsed_s seen, not strictly the last line's.
    if (finite(v.elapsed_s) && v.elapsed_s >= 0) elapsed = v.elapsed_s;
    if (finite(v.tokens_per_s) && v.tokens_per_s > 0) rates.push(v.tokens_per_s);
  }
  if (count === 0) return fail(src, 'is empty; expected one JSON object per line (metrics.jsonl)');
  if (elapsed === null) return fail(src, 'has no line with elapsed_s; cannot tell the run\'s wall time');
  return { elapsed_s: elapsed, tokens_per_s_median: rates.length === 0 ? null : median(rates), lines: count };
}

/**
 * What kind of run wrote a metrics.jsonl, from the run folder around it: `ajar train --lora` leaves the adapter's
 * adapter_config.json beside it (PEFT's format), a full run config.json. One phrase for provenance notes.
 */
export function describeRun(metricsPath: string): string {
  const dir = dirname(metricsPath);
  const adapterConfig = join(dir, 'adapter_config.json');
  if (existsSync(adapterConfig)) {
    try {
      const c = readRegularJson(adapterConfig, { code: 'bad_adapter', kind: 'config', root: dir }) as Record<string, unknown>;
      const targets = Array.isArray(c.target_modules) ? c.target_modules.join(', ') : String(c.target_modules);
      return `a LoRA adapter run (r ${String(c.r)} on ${targets})`;
    } catch {
      return 'a LoRA adapter run (its adapter_config.json is unreadable)';
    }
  }
  if (existsSync(join(dir, 'config.json'))) return 'a full training run (no adapter_config.json beside it)';
  return 'a run of unknown kind (neither adapter_config.json nor config.json beside it)';
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

export interface UsageSummary {
  /** Prompt and generated tokens in the last 30 days (or fewer if the data is shorter), scaled to one month. */
  input_tokens_per_month: number;
  output_tokens_per_month: number;
  /** Days the current window covers (30, or the data's span when shorter). */
  window_days: number;
  /** (this window / the 30 days before) - 1, or null when the data does not hold two full windows. */
  growth_per_month: number | null;
  first_day: string;
  last_day: string;
}

const DAY_MS = 86_400_000;

function parseDay(day: unknown): number | null {
  if (typeof day !== 'string' || !/^\d{4}-\d{2}-\d{2}$/.test(day)) return null;
  const t = Date.parse(`${day}T00:00:00Z`);
  if (Number.isNaN(t) || new Date(t).toISOString().slice(0, 10) !== day) return null;
  return t;
}

/**
 * `ajar usage --format json`: [{"key_id", "day": "YYYY-MM-DD", "requests", "prompt_tokens", "completion_tokens"}].
 * The current month is the 30 days ending on the last day present (all keys summed); growth compares it with
 * the 30 days before, when the data reaches back that far.
 */
export function parseUsage(text: string, src: Source): UsageSummary {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    return fail(src, `is not JSON (${(e as Error).message}); expected the output of 'ajar usage --format json'`);
  }
  if (!Array.isArray(v)) return fail(src, "is not a JSON array; expected the output of 'ajar usage --format json'");
  if (v.length === 0) return fail(src, 'holds no usage rows; give demand.input_tokens_per_month instead');
  const rows: { t: number; prompt: number; completion: number }[] = [];
  v.forEach((row: unknown, i: number) => {
    if (!isRecord(row)) fail(src, `row ${i} is not an object`);
    const t = parseDay(row.day);
    if (t === null) fail(src, `row ${i}: day must be 'YYYY-MM-DD', got ${JSON.stringify(row.day)}`);
    for (const k of ['prompt_tokens', 'completion_tokens']) {
      const n = row[k];
      if (!finite(n) || n < 0) fail(src, `row ${i}: ${k} must be a number >= 0, got ${JSON.stringify(n)}`);
    }
    rows.push({ t: t!, prompt: row.prompt_tokens as number, completion: row.completion_tokens as number });
  });
  const first = Math.min(...rows.map((r) => r.t));
  const last = Math.max(...rows.map((r) => r.t));
  const span = Math.round((last - first) / DAY_MS) + 1; // days, inclusive
  const windowDays = Math.min(30, span);
  const curStart = last - (windowDays - 1) * DAY_MS;
  const prevStart = last - 59 * DAY_MS;
  let curIn = 0, curOut = 0, prev = 0;
  for (const r of rows) {
    if (r.t >= curStart) {
      curIn += r.prompt;
      curOut += r.completion;
    } else if (r.t >= prevStart) {
      prev += r.prompt + r.completion;
    }
  }
  const scale = DAYS_PER_MONTH / windowDays;
  const twoMonths = span >= 60 && prev > 0;
  return {
    input_tokens_per_month: curIn * scale,
    output_tokens_per_month: curOut * scale,
    window_days: windowDays,
    growth_per_month: twoMonths ? (curIn + curOut) / prev - 1 : null,
    first_day: new Date(first).toISOString().slice(0, 10),
    last_day: new Date(last).toISOString().slice(0, 10),
  };
}
