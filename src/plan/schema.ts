// The scenario file's schema as data: every field with its unit, bounds and meaning. One source of truth
// for validation (scenario.ts), the sensitivity and flip searches (which inputs to vary, within which
// bounds) and the consistency test that checks docs/plan.md and the example scenario mention every field.

/** How a numeric input may be varied by the sensitivity analysis and the flip search. */
export type VaryKind =
  | 'fraction' // a share in [0, 1]: varied within [0, 1]
  | 'rate' // a growth rate per month, > -1: varied within [-0.5, 1]
  | 'scale' // a non-negative amount: varied multiplicatively
  | 'none'; // an integer or a setting: never varied

export interface NumberField {
  kind: 'number';
  unit: string;
  doc: string;
  /** Absent from the file is an error unless optional (then a resolver or `default` fills it). */
  optional?: boolean;
  /** A code default; when used it is reported as an assumption the user should set. */
  default?: number;
  int?: boolean;
  min?: number;
  /** Exclusive lower bound. */
  gt?: number;
  max?: number;
  /** A share in [0, 1]; also accepts '35%'. */
  fraction?: boolean;
  /** A growth rate per month (> -1; above 1 = 100%/month needs --allow-extreme); also accepts '8%'. */
  rate?: boolean;
  vary: VaryKind;
}

export interface TextField {
  kind: 'string' | 'path';
  doc: string;
  optional?: boolean;
}

export interface GroupField {
  kind: 'group';
  doc: string;
  optional?: boolean;
  fields: Record<string, Field>;
}

export type Field = NumberField | TextField | GroupField;

const usdPerMonth = (doc: string): NumberField =>
  ({ kind: 'number', unit: 'USD per month', doc, min: 0, vary: 'scale' });

const share = (doc: string, extra: Partial<NumberField> = {}): NumberField =>
  ({ kind: 'number', unit: 'fraction in [0, 1]', doc, fraction: true, vary: 'fraction', ...extra });

const fixedCosts = (who: string): GroupField => ({
  kind: 'group',
  doc: `monthly fixed costs of the ${who} strategy`,
  fields: {
    engineering_usd_per_month: usdPerMonth('engineering salaries and contractors attributable to this strategy'),
    support_usd_per_month: usdPerMonth('customer or community support'),
    hosting_usd_per_month: usdPerMonth('hosting that does not scale with tokens: weights/CDN, billing, monitoring'),
  },
});

export const FACTORS = ['ip_protection', 'cost', 'user_flexibility', 'team_capability', 'market_strategy',
  'data_privacy'] as const;
export type Factor = typeof FACTORS[number];

const factorWeight = (doc: string): NumberField =>
  ({ kind: 'number', unit: 'relative weight (>= 0)', doc, min: 0, vary: 'none' });

export const SCHEMA: GroupField = {
  kind: 'group',
  doc: 'a scenario for `ajar plan`',
  fields: {
    name: { kind: 'string', optional: true, doc: 'title of the report (default: the file name)' },
    horizon_months: { kind: 'number', unit: 'months', int: true, min: 1, max: 600, optional: true, default: 24,
      vary: 'none', doc: 'how many months to project' },
    discount_rate_annual: share('discount rate for NPV, per year (compounded monthly: see docs/plan.md)'),
    hardware: {
      kind: 'group', doc: 'the serving machine',
      fields: {
        usd_per_hour: { kind: 'number', unit: 'USD per machine-hour', min: 0, vary: 'scale',
          doc: 'rental price of one serving machine' },
        cores: { kind: 'number', unit: 'CPU cores per machine', int: true, min: 1, vary: 'none',
          doc: 'cores of one serving machine; throughput scales linearly from throughput.measured_cores' },
        utilisation: share('fraction of each paid machine-hour spent serving at the measured rate', { gt: 0 }),
        min_machines: { kind: 'number', unit: 'machines', int: true, min: 0, vary: 'none',
          doc: 'machines kept running 24/7 by any strategy that serves tokens, whatever the load' },
      },
    },
    throughput: {
      kind: 'group', doc: 'measured serving speed: exactly one of from_bench, from_metrics, tokens_per_s',
      fields: {
        from_bench: { kind: 'path', optional: true, doc: "output of 'ajar bench WORKLOAD --json' (its tokens_per_s)" },
        from_metrics: { kind: 'path', optional: true,
          doc: "a training run's metrics.jsonl (median tokens_per_s); a proxy, prefer from_bench" },
        tokens_per_s: { kind: 'number', unit: 'generated tokens per second', gt: 0, optional: true, vary: 'scale',
          doc: 'throughput on throughput.measured_cores cores' },
        measured_cores: { kind: 'number', unit: 'CPU cores', int: true, min: 1, optional: true, vary: 'none',
          doc: 'cores the throughput was measured on (default: hardware.cores)' },
        input_token_cost: { kind: 'number', unit: 'generated-token equivalents per prompt token', min: 0,
          vary: 'scale', doc: 'compute of one prompt token relative to one generated token' },
      },
    },
    training: {
      kind: 'group', doc: 'one-off training cost, paid in month 0: exactly one of from_metrics, compute_hours',
      fields: {
        from_metrics: { kind: 'path', optional: true, doc: "a training run's metrics.jsonl (last elapsed_s)" },
        compute_hours: { kind: 'number', unit: 'machine-hours', min: 0, optional: true, vary: 'scale',
          doc: 'compute of training the model' },
        machines: { kind: 'number', unit: 'machines', int: true, min: 1, optional: true, default: 1, vary: 'none',
          doc: 'machines the from_metrics run used (multiplies its wall time)' },
        usd_per_hour: { kind: 'number', unit: 'USD per machine-hour', min: 0, optional: true, vary: 'scale',
          doc: 'price of a training machine-hour (default: hardware.usd_per_hour)' },
        adapter_from_metrics: { kind: 'path', optional: true,
          doc: "metrics.jsonl of the hybrid's private fine-tune (last elapsed_s)" },
        adapter_compute_hours: { kind: 'number', unit: 'machine-hours', min: 0, optional: true, vary: 'scale',
          doc: "compute of the hybrid's private fine-tune; exactly one of this and adapter_from_metrics" },
      },
    },
    demand: {
      kind: 'group', doc: 'API demand for the closed model: from_usage, or both token counts',
      fields: {
        from_usage: { kind: 'path', optional: true, doc: "output of 'ajar usage --format json' (last 30 days)" },
        input_tokens_per_month: { kind: 'number', unit: 'prompt tokens per month', min: 0, optional: true,
          vary: 'scale', doc: 'prompt tokens in month 1' },
        output_tokens_per_month: { kind: 'number', unit: 'generated tokens per month', min: 0, optional: true,
          vary: 'scale', doc: 'generated tokens in month 1' },
        growth_per_month: { kind: 'number', unit: 'fraction per month', rate: true, optional: true, vary: 'rate',
          doc: 'compound growth of demand (measured month over month by from_usage when it holds two months)' },
      },
    },
    pricing: {
      kind: 'group', doc: 'API prices of the closed model',
      fields: {
        input_per_1m_usd: { kind: 'number', unit: 'USD per 1M prompt tokens', min: 0, vary: 'scale',
          doc: 'price of prompt tokens' },
        output_per_1m_usd: { kind: 'number', unit: 'USD per 1M generated tokens', min: 0, vary: 'scale',
          doc: 'price of generated tokens' },
      },
    },
    fixed_costs: {
      kind: 'group', doc: 'monthly fixed costs per strategy',
      fields: { open: fixedCosts('open'), closed: fixedCosts('closed'), hybrid: fixedCosts('hybrid') },
    },
    open: {
      kind: 'group', doc: 'how the open weights earn money',
      fields: {
        adopters_month1: { kind: 'number', unit: 'organisations', min: 0, vary: 'scale',
          doc: 'organisations using the open weights in month 1' },
        adopter_growth_per_month: { kind: 'number', unit: 'fraction per month', rate: true, vary: 'rate',
          doc: 'compound growth of adopters' },
        paid_conversion: share('share of adopters paying for support or hosting'),
        paid_price_usd_per_month: { kind: 'number', unit: 'USD per paying adopter per month', min: 0,
          vary: 'scale', doc: 'price of the support or hosting contract' },
        hosted_tokens_per_paid_month: { kind: 'number', unit: 'tokens per paying adopter per month', min: 0,
          vary: 'scale', doc: 'tokens ajar serves for each paying adopter (0 = support only, no hosting)' },
      },
    },
    hybrid: {
      kind: 'group', doc: 'open base + private adapter served closed',
      fields: {
        base_share: share("share of the model's capability (and of its IP) that sits in the open base"),
        api_demand_share: share('share of the closed API demand that the adapter API keeps'),
        price_multiplier: { kind: 'number', unit: 'ratio', min: 0, vary: 'scale',
          doc: 'adapter API price relative to pricing.*' },
      },
    },
    risk: {
      kind: 'group', doc: 'risk and need parameters of the scorecard, each in [0, 1]',
      fields: {
        ip_sensitivity: share('how much harm a copy of the weights does (0 = none, 1 = the business)'),
        privacy_requirement: share("how strongly users need their data to stay on their premises"),
        competitive_pressure: share('how strongly open competitors pull users away from a closed offer'),
        user_flexibility_need: share('how much users need to fine-tune, inspect or self-host'),
        team_ops_capability: share('how able the team is to run a 24/7 metered API (on-call, billing, security)'),
      },
    },
    weights: {
      kind: 'group', doc: 'how the recommendation weighs money against the scorecard',
      fields: {
        financial: share('share of the decision taken from NPV; the rest from the factor scorecard', { vary: 'none' }),
        factors: {
          kind: 'group', doc: 'relative weights of the six factors (normalised by their sum)',
          fields: {
            ip_protection: factorWeight('protection of intellectual property'),
            cost: factorWeight('money committed whatever the demand (training, fixed costs, always-on machines)'),
            user_flexibility: factorWeight('the flexibility users need'),
            team_capability: factorWeight("the team's capability to run what the strategy needs"),
            market_strategy: factorWeight('fit with the market (competitive pressure)'),
            data_privacy: factorWeight("users' data privacy"),
          },
        },
      },
    },
    sensitivity: {
      kind: 'group', optional: true, doc: 'the one-at-a-time sensitivity analysis',
      fields: {
        delta: { kind: 'number', unit: 'fraction', gt: 0, max: 0.9, optional: true, default: 0.2, vary: 'none',
          doc: 'each input is varied by +-delta (relative) one at a time' },
      },
    },
  },
};

/** Every leaf field with its dotted path, in schema order. */
export function leafFields(group: GroupField = SCHEMA, prefix = ''): { path: string; field: NumberField | TextField }[] {
  const out: { path: string; field: NumberField | TextField }[] = [];
  for (const [key, field] of Object.entries(group.fields)) {
    const path = prefix === '' ? key : `${prefix}.${key}`;
    if (field.kind === 'group') out.push(...leafFields(field, path));
    else out.push({ path, field });
  }
  return out;
}

/** The field at a dotted path, or undefined. */
export function fieldAt(path: string): Field | undefined {
  let field: Field = SCHEMA;
  for (const key of path.split('.')) {
    if (field.kind !== 'group') return undefined;
    const next: Field | undefined = field.fields[key];
    if (next === undefined) return undefined;
    field = next;
  }
  return field;
}
