// `ajar plan SCENARIO.yaml [--json] [--report DIR]`: flags -> src/plan calls -> stdout. No logic lives here.
import { buildPlan, loadScenario, renderReport, renderTable, writeReport } from '../plan/index.js';
import { AjarError } from '../tensor/errors.js';
import { bool, parseFlags, str } from './args.js';

const HELP = `usage: ajar plan SCENARIO.yaml [--json] [--report DIR [--force]] [--allow-extreme]

Compare releasing a model open, closed (a metered API) or hybrid (open base + private adapter served
closed) on cost, revenue and risk, from a scenario file and ajar's own measurements.

  --json            print one JSON object (projections, metrics, sensitivity, scorecard, recommendation)
  --report DIR      also write DIR/report.md, DIR/cash.svg and DIR/tornado.svg (DIR must be new or empty)
  --force           with --report, replace an existing report directory
  --allow-extreme   accept growth rates above 100%/month

Fields, units and formulas: docs/plan.md. Example: examples/plan/scenario.yaml.`;

/** Where the command writes; the real one is the process's streams, tests pass their own. */
export interface PlanIo {
  out: (text: string) => void;
  err: (text: string) => void;
  /** Colour only on a terminal (and never when NO_COLOR is set). */
  color: boolean;
  columns: number;
}

export async function runPlan(argv: string[], io: PlanIo): Promise<number> {
  const p = parseFlags('plan', argv, {
    json: { type: 'boolean' },
    report: { type: 'string' },
    force: { type: 'boolean' },
    'allow-extreme': { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  }, true);
  if (bool(p, 'help')) {
    io.out(HELP);
    return 0;
  }
  if (p.positionals.length !== 1) {
    throw new AjarError('bad_flag', `ajar plan: expected one scenario file, got ${p.positionals.length} ` +
      "(usage: ajar plan SCENARIO.yaml [--json] [--report DIR]; see examples/plan/scenario.yaml)");
  }
  const scenarioPath = p.positionals[0];
  const reportDir = str(p, 'report');
  if (bool(p, 'force') && reportDir === undefined) {
    throw new AjarError('bad_flag', 'ajar plan: --force only applies with --report DIR');
  }
  const plan = buildPlan(loadScenario(scenarioPath, { allowExtreme: bool(p, 'allow-extreme') }));
  if (bool(p, 'json')) io.out(JSON.stringify(plan, null, 2));
  else io.out(renderTable(plan, { color: io.color, width: Math.max(60, Math.min(io.columns, 110)) }));
  if (reportDir !== undefined) {
    const files = renderReport(plan, { scenarioPath });
    writeReport(reportDir, files, bool(p, 'force'));
    const note = `wrote ${Object.keys(files).map((f) => `${reportDir.replace(/\/+$/, '')}/${f}`).join(', ')}`;
    if (bool(p, 'json')) io.err(note);
    else io.out(`\n${note}`);
  }
  return 0;
}

export async function planCommand(argv: string[]): Promise<number> {
  return runPlan(argv, {
    out: (text) => console.log(text),
    err: (text) => console.error(text),
    color: process.stdout.isTTY === true && !process.env.NO_COLOR,
    columns: process.stdout.columns ?? 100,
  });
}
