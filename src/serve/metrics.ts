// A tiny Prometheus exporter (text format 0.0.4): counters, gauges read at scrape time, and histograms.
// Labels are low-cardinality on purpose (route, status, model): never a key id or an address.

type Labels = Record<string, string>;

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function labelText(labels: Labels): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
  return parts.length > 0 ? `{${parts.join(',')}}` : '';
}

function num(v: number): string {
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  if (Number.isNaN(v)) return 'NaN';
  return String(v);
}

interface Metric {
  render(): string[];
}

function header(name: string, help: string, type: string): string[] {
  return [`# HELP ${name} ${help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`, `# TYPE ${name} ${type}`];
}

export class Counter implements Metric {
  private readonly values = new Map<string, { labels: Labels; value: number }>();
  constructor(readonly name: string, private readonly help: string) {}

  inc(labels: Labels = {}, by = 1): void {
    const key = labelText(labels);
    const cur = this.values.get(key);
    if (cur) cur.value += by;
    else this.values.set(key, { labels, value: by });
  }

  render(): string[] {
    const out = header(this.name, this.help, 'counter');
    for (const { labels, value } of this.values.values()) out.push(`${this.name}${labelText(labels)} ${num(value)}`);
    return out;
  }
}

/** A gauge whose samples are read when scraped (queue depth is a property of the queue, not an event). */
export class Gauge implements Metric {
  constructor(readonly name: string, private readonly help: string,
    private readonly read: () => Array<{ labels: Labels; value: number }>) {}

  render(): string[] {
    const out = header(this.name, this.help, 'gauge');
    for (const { labels, value } of this.read()) out.push(`${this.name}${labelText(labels)} ${num(value)}`);
    return out;
  }
}

export class Histogram implements Metric {
  private readonly series = new Map<string, { labels: Labels; counts: number[]; sum: number; count: number }>();
  constructor(readonly name: string, private readonly help: string, private readonly buckets: readonly number[]) {}

  observe(labels: Labels, v: number): void {
    const key = labelText(labels);
    let s = this.series.get(key);
    if (!s) {
      s = { labels, counts: this.buckets.map(() => 0), sum: 0, count: 0 };
      this.series.set(key, s);
    }
    for (let i = 0; i < this.buckets.length; i++) if (v <= this.buckets[i]) s.counts[i]++;
    s.sum += v;
    s.count++;
  }

  render(): string[] {
    const out = header(this.name, this.help, 'histogram');
    for (const s of this.series.values()) {
      for (let i = 0; i < this.buckets.length; i++) {
        out.push(`${this.name}_bucket${labelText({ ...s.labels, le: num(this.buckets[i]) })} ${s.counts[i]}`);
      }
      out.push(`${this.name}_bucket${labelText({ ...s.labels, le: '+Inf' })} ${s.count}`);
      out.push(`${this.name}_sum${labelText(s.labels)} ${num(s.sum)}`);
      out.push(`${this.name}_count${labelText(s.labels)} ${s.count}`);
    }
    return out;
  }
}

export class Registry {
  private readonly metrics: Metric[] = [];

  add<M extends Metric>(m: M): M {
    this.metrics.push(m);
    return m;
  }

  render(): string {
    return `${this.metrics.flatMap((m) => m.render()).join('\n')}\n`;
  }
}

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Request latencies, in seconds: from a fast 401 to a long generation on a CPU. */
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

/** Store and limiter calls, in seconds: from a cached microsecond to a database under load. */
const CALL_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/** The server's metrics, all prefixed ajar_. */
export class ServerMetrics {
  readonly registry = new Registry();
  readonly requests = this.registry.add(new Counter('ajar_requests_total', 'HTTP requests answered, by route and status.'));
  readonly latency = this.registry.add(new Histogram('ajar_request_duration_seconds',
    'Time from request to the end of the response, by route.', LATENCY_BUCKETS));
  readonly tokens = this.registry.add(new Counter('ajar_tokens_total', 'Tokens processed, by model and type (prompt, completion).'));
  readonly authFailures = this.registry.add(new Counter('ajar_auth_failures_total', 'Rejected API keys and admin tokens, by reason.'));
  readonly rateLimited = this.registry.add(new Counter('ajar_rate_limited_total', 'Requests refused by a limit, by code.'));
  readonly storeLatency = this.registry.add(new Histogram('ajar_store_duration_seconds',
    'Time a call to the store (keys, usage, quotas, audit) took, by operation.', CALL_BUCKETS));
  readonly limiterLatency = this.registry.add(new Histogram('ajar_limiter_duration_seconds',
    'Time a call to the rate limiter took (take: check and reserve; settle: give back unused tokens), by operation.',
    CALL_BUCKETS));

  constructor(queues: () => Array<{ model: string; waiting: number; running: number }>,
    connections?: () => { open: number; refused: number; shed: number }) {
    if (connections) {
      this.registry.add(new Gauge('ajar_connections_open', 'Open client connections.',
        () => [{ labels: {}, value: connections().open }]));
      this.registry.add(new Gauge('ajar_connections_refused_total',
        'Connections refused at a connection limit (per address or server) since start.',
        () => [{ labels: {}, value: connections().refused }]));
      this.registry.add(new Gauge('ajar_connections_shed_total',
        'Idle connections closed to make room at the server\'s connection limit since start.',
        () => [{ labels: {}, value: connections().shed }]));
    }
    this.registry.add(new Gauge('ajar_queue_depth', 'Requests waiting for a model, not counting the running one.',
      () => queues().map((q) => ({ labels: { model: q.model }, value: q.waiting }))));
    this.registry.add(new Gauge('ajar_generations_running', 'Generations running now, by model.',
      () => queues().map((q) => ({ labels: { model: q.model }, value: q.running }))));
  }
}
