// The dashboard's data: training runs (--runs), model folders and releases (--models) and the plan, for the /ui
// routes of serve/dashboard. This layer sits above serve, release and plan (it reads all three) and below cli.
import { resolve } from 'node:path';
import type { DashboardOptions } from '../serve/dashboard/index.js';
import { AjarError } from '../tensor/errors.js';
import { statSync } from 'node:fs';
import { modelEntries } from './models.js';
import { planView } from './plan.js';
import { runSource } from './runs.js';

export { modelEntries, type ModelEntry, type Verification } from './models.js';
export { planView, type PlanInput, type PlanView } from './plan.js';
export { METRICS_FILE, runSource } from './runs.js';

function folder(flag: string, dir: string): string {
  const full = resolve(dir);
  let ok = false;
  try {
    ok = statSync(full).isDirectory();
  } catch {
    ok = false;
  }
  if (!ok) throw new AjarError('bad_flag', `--${flag} ${dir} is not a folder`);
  return full;
}

/** The dashboard's options for --runs and --models (either may be absent: its page then says so). */
export function dashboardOptions(opts: { runs?: string; models?: string }): DashboardOptions {
  const runs = opts.runs === undefined ? undefined : folder('runs', opts.runs);
  const models = opts.models === undefined ? undefined : folder('models', opts.models);
  return {
    sources: {
      runs: runs === undefined ? undefined : runSource(runs),
      models: models === undefined ? undefined : () => modelEntries(models),
      // Relative measurement paths in an opened scenario resolve against --runs, else the working folder.
      plan: (req) => planView(req, runs ?? process.cwd()),
    },
    labels: { runs, models },
  };
}
