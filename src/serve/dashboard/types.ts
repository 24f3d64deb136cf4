// What the dashboard's /ui routes read besides the store: training runs, model folders and releases, and the plan.
// serve/ may not import release/ or plan/ (STYLE.md's arrows), so src/dashboard builds these and the caller passes them.
import type { SessionLimits } from './session.js';

/** One training run: a folder holding metrics.jsonl. */
export interface RunSummary {
  /** Its folder relative to --runs ('.' for --runs itself). */
  id: string;
  /** What kind of run wrote it (a full run, a LoRA adapter run). */
  kind: string;
  /** metrics.jsonl's size in bytes and last change (ISO 8601). */
  bytes: number;
  updated: string;
  /** The run folder's config.json, training_args.json and privacy.json, when present. */
  config: Record<string, unknown> | null;
  training_args: Record<string, unknown> | null;
  privacy: Record<string, unknown> | null;
}

/** Lines of a run's metrics.jsonl from a byte offset: what a page already showing the run has not seen yet. */
export interface RunChunk {
  /** Where the next read starts (after the last whole line). */
  offset: number;
  rows: Array<Record<string, unknown>>;
  /** The file shrank (a run restarted without --resume): rows start again from its beginning. */
  reset: boolean;
}

export interface RunSource {
  list(): RunSummary[];
  /** Throws AjarError('not_found') for an id list() does not give. */
  read(id: string, offset: number): RunChunk;
}

export interface PlanRequest {
  /** The scenario file's YAML text. */
  scenario: string;
  fileName: string;
  /** Dotted input paths -> the values to use instead of the scenario's (the page's edited numbers). */
  overrides: Record<string, number>;
}

export interface DashboardSources {
  runs?: RunSource;
  /** Model folders, releases and adapters under --models, as JSON-able objects. */
  models?: () => unknown[];
  /** The plan of a scenario; AjarError('bad_scenario') for a scenario that does not parse. */
  plan?: (req: PlanRequest) => unknown;
}

export interface DashboardOptions {
  sources: DashboardSources;
  /** What the pages say each source is (the folders given), for "nothing here" messages. */
  labels?: { runs?: string; models?: string };
  sessions?: Partial<SessionLimits>;
}
