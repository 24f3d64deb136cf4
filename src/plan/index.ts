// ajar's plan layer: open vs closed vs hybrid economics from a scenario file and ajar's own measurements.
// loadScenario -> buildPlan -> renderTable / renderReport + writeReport; model.ts holds the pure formulas.
export { buildPlan, inputsBySource, type Plan } from './build.js';
export { contributions, FACTOR_LABELS, recommend, type Contribution, type Recommendation } from './explain.js';
export { compact, fieldValue, money, pct, sig } from './format.js';
export {
  DAYS_PER_MONTH, describeRun, measurementPath, parseBench, parseMetrics, parseUsage, type BenchResult, type RunMetrics, type UsageSummary,
} from './measurements.js';
export {
  breakEvenMonth, computeCostPer1M, decide, evaluate, HOURS_PER_MONTH, machineTokensPerS, metrics, monthlyRate, npv,
  project, scorecard, strategyShape, type Decision, type Evaluation, type Metrics, type MonthRow, type Projection,
  type Scorecard, type StrategyShape,
} from './model.js';
export { cashSvg, niceTicks, renderReport, reportMarkdown, tornadoSvg, writeReport } from './report.js';
export { loadScenario, parseScenario, type ScenarioOptions } from './scenario.js';
export { FACTORS, fieldAt, leafFields, SCHEMA, type Factor, type Field, type NumberField } from './schema.js';
export { findFlips, getNumber, sensitivity, variableParams, withNumber, type Flip, type Sensitivity, type TornadoRow } from './sensitivity.js';
export { renderTable, wrap } from './table.js';
export { STRATEGIES, type FixedCosts, type LoadedScenario, type Provenance, type Scenario, type Strategy } from './types.js';
