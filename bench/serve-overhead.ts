// npm run bench:serve: what authentication, limits and metering add to a request. Two set-ups: one server on
// SQLite, and three replicas on PostgreSQL + Redis (skipped, saying why, when either does not answer;
// $AJAR_TEST_POSTGRES and $AJAR_TEST_REDIS as in the tests). Each set-up runs twice: "full" (the real store and
// limiter) and "bare" (the same server over a store and a limiter that answer at once; bench/overhead/server.ts),
// each a process per replica, and a load generator in its own process (bench/overhead/load.ts) sends
// POST /v1/completions (max_tokens 1, a model stub whose forward pass takes tens of microseconds) on an open-loop
// schedule at --rate requests/s. Rounds alternate bare, full, full, bare, ... (so background load on a shared machine
// falls on both), and "added" = full minus bare at the same percentile over all rounds' samples, with the spread of
// the per-round-pair differences beside it. The CPU each component used is reported, to show when the machine's
// cores are oversubscribed (the figures then measure the queueing, not the work).
// --trace: the full servers also time every store and limiter call, their own time per request and their event
// loop's delay (bench/overhead/trace.ts), printed per set-up after its rounds: where the full path's time goes.
// Usage: node dist/bench/serve-overhead.js [--rate 200] [--seconds 5] [--rounds 6] [--json] [--trace]
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { selectBackend } from '../src/backends/select.js';
import { CharTokenizer } from '../src/io/tokenizer/index.js';
import { buildModel, saveModelFolder, type CausalLM } from '../src/models/index.js';
import { buildServer, createApiKey, modelSpecFromFolder, openStore, type Store } from '../src/serve/index.js';
import type { Limiter } from '../src/serve/limits.js';
import { nullLimiter, nullStore } from './overhead/null.js';
import { RedisLimiter } from '../src/serve/redis-limiter.js';
import { Rng } from '../src/tensor/index.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const PG_URL = process.env.AJAR_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/test';
const REDIS_URL = process.env.AJAR_TEST_REDIS ?? 'redis://127.0.0.1:6379';

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}
const RATE = flag('rate', 200);
const SECONDS = flag('seconds', 5);
const ROUNDS = flag('rounds', 6); // per arm
const JSON_OUT = process.argv.includes('--json');
const TRACE = process.argv.includes('--trace');
const ONLY = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : undefined;

function stubModel(dir: string): string {
  selectBackend('js');
  const tok = CharTokenizer.fromText('abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ.,;:!?\n');
  const model = buildModel({
    architectures: ['GPT2LMHeadModel'], model_type: 'gpt2', vocab_size: tok.vocabSize, n_positions: 64, n_embd: 8,
    n_layer: 1, n_head: 1, activation_function: 'gelu_new', resid_pdrop: 0, embd_pdrop: 0, attn_pdrop: 0,
  }) as CausalLM;
  model.initWeights(new Rng(1));
  mkdirSync(dir, { recursive: true });
  saveModelFolder(dir, model, tok);
  return dir;
}

interface Server { proc: ChildProcess; port: number }

async function serve(args: string[]): Promise<Server> {
  const proc = spawn(process.execPath, [join(here, 'overhead/server.js'), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    createInterface({ input: proc.stdout! }).once('line', (line) => resolve(Number(line.split(' ')[1])));
    proc.once('exit', (code) => reject(new Error(`bench server exited (${code})`)));
  });
  return { proc, port };
}

interface LoadResult { latencies_ms: number[]; errors: number; late_ms: number }

async function load(servers: Server[], key: string, seconds: number): Promise<LoadResult> {
  const proc = spawn(process.execPath, [join(here, 'overhead/load.js'), '--ports', servers.map((s) => s.port).join(','),
    '--key', key, '--rate', String(RATE), '--seconds', String(seconds)], { stdio: ['ignore', 'pipe', 'inherit'] });
  pids.load = proc.pid;
  let out = '';
  proc.stdout!.on('data', (b: Buffer) => {
    out += b.toString();
  });
  await new Promise((resolve) => proc.once('exit', resolve));
  pids.load = undefined;
  return JSON.parse(out) as LoadResult;
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

// CPU accounting from /proc (Linux; elsewhere the columns read 0).
const pids: { load?: number } = {};
function ticksOf(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return Number(f[11]) + Number(f[12]); // utime, stime
  } catch {
    return 0;
  }
}
function pidsNamed(names: string[]): number[] {
  const out: number[] = [];
  try {
    for (const d of readdirSync('/proc')) {
      if (!/^\d+$/.test(d)) continue;
      try {
        if (names.includes(readFileSync(`/proc/${d}/comm`, 'utf8').trim())) out.push(Number(d));
      } catch { /* gone */ }
    }
  } catch { /* no /proc */ }
  return out;
}
function machineTicks(): { busy: number; total: number } {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const idle = f[3] + f[4];
    const total = f.reduce((a, b) => a + b, 0);
    return { busy: total - idle, total };
  } catch {
    return { busy: 0, total: 1 };
  }
}

interface Cpu { servers: number; load: number; services: number; machine: number }

/** Cores used (1.0 = one core busy all the time) by the servers, the generator, PostgreSQL + Redis and everything. */
async function measuredCpu<T>(servers: Server[], f: () => Promise<T>): Promise<{ out: T; cpu: Cpu }> {
  const services = pidsNamed(['postgres', 'redis-server']);
  const s0 = servers.reduce((a, s) => a + ticksOf(s.proc.pid!), 0);
  const v0 = services.reduce((a, p) => a + ticksOf(p), 0);
  const m0 = machineTicks();
  const t0 = performance.now();
  let loadTicks = 0;
  const watch = setInterval(() => {
    if (pids.load !== undefined) loadTicks = ticksOf(pids.load);
  }, 100);
  const out = await f();
  clearInterval(watch);
  const secs = (performance.now() - t0) / 1000;
  const hz = 100; // USER_HZ
  const m1 = machineTicks();
  const ncpu = cpus().length;
  return {
    out,
    cpu: {
      servers: (servers.reduce((a, s) => a + ticksOf(s.proc.pid!), 0) - s0) / hz / secs,
      load: loadTicks / hz / secs,
      services: (services.reduce((a, p) => a + ticksOf(p), 0) - v0) / hz / secs,
      machine: ((m1.busy - m0.busy) / Math.max(1, m1.total - m0.total)) * ncpu,
    },
  };
}

interface Arm { latencies: number[]; errors: number; late: number; cpu: Cpu[]; roundP: Array<{ p50: number; p99: number }> }

interface Row {
  setup: string; rate: number; rounds: number; seconds_per_round: number; requests: { bare: number; full: number };
  errors: number; bare_p50_ms: number; bare_p99_ms: number; full_p50_ms: number; full_p99_ms: number;
  added_p50_ms: number; added_p99_ms: number; added_p99_pairs_ms: { min: number; median: number; max: number };
  generator_late_ms: number; cpu_cores: { full: Cpu; bare: Cpu }; cores: number;
  /** The servers' own CPU time per request (ms), full and bare: what the work costs, whatever the machine's load. */
  server_cpu_ms_per_request: { full: number; bare: number; added: number };
  load_average: number;
}

const avgCpu = (cs: Cpu[]): Cpu => ({
  servers: cs.reduce((a, c) => a + c.servers, 0) / cs.length, load: cs.reduce((a, c) => a + c.load, 0) / cs.length,
  services: cs.reduce((a, c) => a + c.services, 0) / cs.length, machine: cs.reduce((a, c) => a + c.machine, 0) / cs.length,
});

/** Warm both arms up, then ROUNDS rounds of each in the order bare, full, full, bare, bare, full, ... */
async function compare(setup: string, bare: Server[], full: Server[], key: string): Promise<Row> {
  await load(bare, key, 1);
  await load(full, key, 1);
  const arms: Record<'bare' | 'full', Arm> = {
    bare: { latencies: [], errors: 0, late: 0, cpu: [], roundP: [] },
    full: { latencies: [], errors: 0, late: 0, cpu: [], roundP: [] },
  };
  for (let i = 0; i < 2 * ROUNDS; i++) {
    const which = (i % 4 === 0 || i % 4 === 3) ? 'bare' : 'full';
    const servers = which === 'bare' ? bare : full;
    const { out, cpu } = await measuredCpu(servers, () => load(servers, key, SECONDS));
    const a = arms[which];
    a.latencies.push(...out.latencies_ms);
    a.errors += out.errors;
    a.late = Math.max(a.late, out.late_ms);
    a.cpu.push(cpu);
    const sorted = [...out.latencies_ms].sort((x, y) => x - y);
    a.roundP.push({ p50: pct(sorted, 50), p99: pct(sorted, 99) });
    if (!JSON_OUT) {
      console.error(`  ${setup} round ${i + 1}/${2 * ROUNDS} ${which}: p50 ${pct(sorted, 50).toFixed(2)} ms, `
        + `p99 ${pct(sorted, 99).toFixed(2)} ms, ${out.errors} errors; cores: servers ${cpu.servers.toFixed(2)}, `
        + `generator ${cpu.load.toFixed(2)}, postgres+redis ${cpu.services.toFixed(2)}, machine ${cpu.machine.toFixed(2)}`);
    }
  }
  const b = [...arms.bare.latencies].sort((x, y) => x - y);
  const f = [...arms.full.latencies].sort((x, y) => x - y);
  const pairs = arms.full.roundP.map((r, i) => r.p99 - arms.bare.roundP[i].p99).sort((x, y) => x - y);
  return {
    setup, rate: RATE, rounds: ROUNDS, seconds_per_round: SECONDS, requests: { bare: b.length, full: f.length },
    errors: arms.bare.errors + arms.full.errors,
    bare_p50_ms: pct(b, 50), bare_p99_ms: pct(b, 99), full_p50_ms: pct(f, 50), full_p99_ms: pct(f, 99),
    added_p50_ms: pct(f, 50) - pct(b, 50), added_p99_ms: pct(f, 99) - pct(b, 99),
    added_p99_pairs_ms: { min: pairs[0], median: pct(pairs, 50), max: pairs[pairs.length - 1] },
    generator_late_ms: Math.max(arms.bare.late, arms.full.late),
    cpu_cores: { full: avgCpu(arms.full.cpu), bare: avgCpu(arms.bare.cpu) }, cores: cpus().length,
    server_cpu_ms_per_request: {
      full: (avgCpu(arms.full.cpu).servers * 1000) / RATE, bare: (avgCpu(arms.bare.cpu).servers * 1000) / RATE,
      added: ((avgCpu(arms.full.cpu).servers - avgCpu(arms.bare.cpu).servers) * 1000) / RATE,
    },
    load_average: loadavg()[0],
  };
}

/** What --trace collected from a set-up's full servers: per operation, percentiles of its durations (ms). */
interface TraceRow { setup: string; ops: Record<string, { n: number; p50: number; p90: number; p99: number; max: number }>;
  loop_delay_ms: Array<{ p50: number; p99: number; max: number }> }

/** Stop the traced servers (SIGTERM: each writes its trace) and sum their traces. */
async function collectTrace(setup: string, servers: Server[], files: string[]): Promise<TraceRow> {
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => {
    const timer = setTimeout(() => s.proc.kill('SIGKILL'), 5_000);
    s.proc.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    s.proc.kill('SIGTERM');
  })));
  const ops: Record<string, number[]> = {};
  const loops: TraceRow['loop_delay_ms'] = [];
  for (const f of files) {
    const t = JSON.parse(readFileSync(f, 'utf8')) as { ops: Record<string, number[]>; loop_ms: { p50: number; p99: number; max: number } };
    for (const [op, v] of Object.entries(t.ops)) (ops[op] ??= []).push(...v);
    loops.push(t.loop_ms);
  }
  const row: TraceRow = { setup, ops: {}, loop_delay_ms: loops };
  for (const [op, v] of Object.entries(ops)) {
    const sorted = v.sort((x, y) => x - y);
    row.ops[op] = { n: v.length, p50: pct(sorted, 50), p90: pct(sorted, 90), p99: pct(sorted, 99), max: sorted[sorted.length - 1] };
  }
  return row;
}

/** Every server process started and not yet stopped: killed on the way out, however the bench ends. */
const running: Server[] = [];
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    running.forEach((s) => s.proc.kill('SIGKILL'));
    process.exit(130);
  });
}

/**
 * The same comparison in this process, one request at a time through app.inject (no sockets, no other process of
 * ours competing): this process's CPU time per request, and wall time (which includes the PostgreSQL and Redis round
 * trips), bare and full, in alternating rounds. CPU time is what the work costs, however loaded the machine is.
 */
interface InProcessRow { setup: string; requests: number; cpu_ms: { bare: number; full: number; added: number };
  wall_p50_ms: { bare: number; full: number; added: number }; wall_p99_ms: { bare: number; full: number; added: number } }

async function inProcess(setup: string, model: string, key: string, fullStore: Store, fullLimiter: Limiter | undefined): Promise<InProcessRow> {
  const limits = { defaultRpm: 1_000_000, defaultTpm: 100_000_000 };
  const apps = {
    bare: buildServer({ models: [modelSpecFromFolder(model, 'stub')], store: nullStore(key), limiter: nullLimiter, limits }),
    full: buildServer({ models: [modelSpecFromFolder(model, 'stub')], store: fullStore, limiter: fullLimiter, limits }),
  };
  const payload = { model: 'stub', prompt: 'Hello', max_tokens: 1, temperature: 0 };
  const one = async (app: typeof apps.bare): Promise<void> => {
    const r = await app.inject({ method: 'POST', url: '/v1/completions', headers: { authorization: `Bearer ${key}` }, payload });
    if (r.statusCode !== 200) throw new Error(`in-process request failed: ${r.statusCode} ${r.body}`);
  };
  const N = Math.round(RATE * SECONDS / 2);
  for (const app of Object.values(apps)) for (let i = 0; i < 200; i++) await one(app);
  const cpu = { bare: 0, full: 0 };
  const wall: Record<'bare' | 'full', number[]> = { bare: [], full: [] };
  for (let i = 0; i < 2 * ROUNDS; i++) {
    const which = (i % 4 === 0 || i % 4 === 3) ? 'bare' : 'full';
    const c0 = process.cpuUsage();
    for (let j = 0; j < N; j++) {
      const t0 = performance.now();
      await one(apps[which]);
      wall[which].push(performance.now() - t0);
    }
    const c = process.cpuUsage(c0);
    cpu[which] += (c.user + c.system) / 1000;
  }
  await Promise.all(Object.values(apps).map((a) => a.close()));
  const n = N * ROUNDS;
  const p = (which: 'bare' | 'full', q: number): number => pct([...wall[which]].sort((x, y) => x - y), q);
  const triple = (b: number, f: number): { bare: number; full: number; added: number } => ({ bare: b, full: f, added: f - b });
  return {
    setup, requests: n, cpu_ms: triple(cpu.bare / n, cpu.full / n), wall_p50_ms: triple(p('bare', 50), p('full', 50)),
    wall_p99_ms: triple(p('bare', 99), p('full', 99)),
  };
}

async function main(): Promise<void> {
  const tmp = mkdtempSync(join(tmpdir(), 'ajar-overhead-'));
  const rows: Row[] = [];
  const inRows: InProcessRow[] = [];
  const traces: TraceRow[] = [];
  /** The full servers' extra flags, and after the rounds, their trace (with --trace). */
  const traced = (name: string, n: number): string[][] => Array.from({ length: n },
    (_, i) => (TRACE ? ['--trace', join(tmp, `trace-${name}-${i}.json`)] : []));
  const finish = async (setup: string, name: string, full: Server[]): Promise<void> => {
    if (TRACE) traces.push(await collectTrace(setup, full, traced(name, full.length).map((a) => a[1])));
    running.splice(0).forEach((s) => s.proc.kill('SIGKILL'));
  };
  const start = async (n: number, args: string[]): Promise<Server[]> => {
    const out: Server[] = [];
    for (let i = 0; i < n; i++) out.push(await serve(args));
    running.push(...out);
    return out;
  };
  try {
    const model = stubModel(join(tmp, 'stub'));
    if (ONLY === undefined || ONLY === 'sqlite') {
      const db = `sqlite:${join(tmp, 'ajar.db')}`;
      const store = await openStore(db);
      const { key } = await createApiKey(store, { name: 'bench', rpm: 1_000_000, tpm: 100_000_000 }, { actor: 'bench' }, Date.now());
      await store.close();
      const bare = await start(1, ['--model', model, '--key', key, '--bare']);
      const full = [];
      for (const extra of traced('sqlite', 1)) full.push(...await start(1, ['--model', model, '--key', key, '--db', db, ...extra]));
      rows.push(await compare('sqlite, 1 process', bare, full, key));
      await finish('sqlite, 1 process', 'sqlite', full);
      const local = await openStore(db);
      try {
        inRows.push(await inProcess('sqlite', model, key, local, undefined));
      } finally {
        await local.close();
      }
    }
    const why = ONLY === 'sqlite' ? 'not asked for (--only sqlite)' : await services();
    if (typeof why === 'string') {
      console.error(`serve-overhead: skipping PostgreSQL + Redis: ${why}`);
    } else {
      try {
        const pstore = await openStore(why.url);
        const { key } = await createApiKey(pstore, { name: 'bench', rpm: 1_000_000, tpm: 100_000_000 }, { actor: 'bench' }, Date.now());
        await pstore.close();
        const bare = await start(3, ['--model', model, '--key', key, '--bare']);
        const full = [];
        for (const extra of traced('pg', 3)) {
          full.push(...await start(1, ['--model', model, '--key', key, '--db', why.url, '--redis', REDIS_URL, ...extra]));
        }
        rows.push(await compare('postgres + redis, 3 replicas', bare, full, key));
        await finish('postgres + redis, 3 replicas', 'pg', full);
        const local = await openStore(why.url);
        const limiter = new RedisLimiter(REDIS_URL, { prefix: 'ajar-bench' });
        try {
          await limiter.ready(3_000);
          inRows.push(await inProcess('postgres + redis', model, key, local, limiter));
        } finally {
          await local.close();
          await limiter.close();
        }
      } finally {
        running.splice(0).forEach((s) => s.proc.kill('SIGKILL'));
        await why.drop();
      }
    }
  } finally {
    running.forEach((s) => s.proc.kill('SIGKILL'));
    rmSync(tmp, { recursive: true, force: true });
  }
  if (JSON_OUT) {
    console.log(JSON.stringify({ open_loop: rows, in_process: inRows, ...(TRACE ? { trace: traces } : {}) }));
    return;
  }
  console.log(`${RATE} requests/s open loop, ${ROUNDS} rounds x ${SECONDS} s per arm, alternating; ms; `
    + 'added = full - bare at the same percentile');
  console.log('setup                          requests  bare p50/p99     full p50/p99     added p50/p99   (p99 per pair: min..max)  '
    + 'server CPU ms/request full-bare  cores used: servers/generator/pg+redis/machine of N, load average');
  for (const r of rows) {
    const c = r.cpu_cores.full;
    console.log(`${r.setup.padEnd(30)} ${String(r.requests.full).padStart(8)}  `
      + `${r.bare_p50_ms.toFixed(2).padStart(6)} / ${r.bare_p99_ms.toFixed(2).padEnd(6)}  `
      + `${r.full_p50_ms.toFixed(2).padStart(6)} / ${r.full_p99_ms.toFixed(2).padEnd(6)}  `
      + `${r.added_p50_ms.toFixed(2).padStart(5)} / ${r.added_p99_ms.toFixed(2).padEnd(6)} `
      + `(${r.added_p99_pairs_ms.min.toFixed(2)}..${r.added_p99_pairs_ms.max.toFixed(2)})  `
      + `${r.server_cpu_ms_per_request.full.toFixed(2)}-${r.server_cpu_ms_per_request.bare.toFixed(2)}`
      + `=${r.server_cpu_ms_per_request.added.toFixed(2)}  `
      + `${c.servers.toFixed(2)}/${c.load.toFixed(2)}/${c.services.toFixed(2)}/${c.machine.toFixed(2)} of ${r.cores}, ${r.load_average.toFixed(1)}`
      + `${r.errors > 0 ? `  ${r.errors} errors` : ''}`);
  }
  console.log(`\nin process, one request at a time (app.inject), ${ROUNDS} rounds per arm, alternating; ms per request; `
    + 'added = full - bare');
  console.log('setup               requests  CPU bare / full / added    wall p50 bare / full / added   wall p99 bare / full / added');
  const t = (x: { bare: number; full: number; added: number }): string => `${x.bare.toFixed(3)} / ${x.full.toFixed(3)} / ${x.added.toFixed(3)}`;
  for (const r of inRows) {
    console.log(`${r.setup.padEnd(18)} ${String(r.requests).padStart(9)}  ${t(r.cpu_ms).padEnd(26)} ${t(r.wall_p50_ms).padEnd(30)} ${t(r.wall_p99_ms)}`);
  }
  for (const tr of traces) {
    console.log(`\ntrace of the full servers, ${tr.setup} (warm-up and every full round); ms`);
    for (const [op, o] of Object.entries(tr.ops)) {
      console.log(`  ${op.padEnd(20)} n ${String(o.n).padStart(6)}  p50 ${o.p50.toFixed(2).padStart(7)}  p90 ${o.p90.toFixed(2).padStart(7)}  `
        + `p99 ${o.p99.toFixed(2).padStart(7)}  max ${o.max.toFixed(1)}`);
    }
    console.log(`  event loop delay per server: ${tr.loop_delay_ms.map((l) => `p50 ${l.p50.toFixed(1)} p99 ${l.p99.toFixed(1)} max ${l.max.toFixed(1)}`).join('; ')}`);
  }
}

async function services(): Promise<{ url: string; drop: () => Promise<void> } | string> {
  const redis = new RedisLimiter(REDIS_URL, { prefix: 'ajar-bench' });
  try {
    await redis.ready(2_000);
  } catch (e) {
    return `Redis at ${REDIS_URL}: ${(e as Error).message}`;
  } finally {
    await redis.close();
  }
  const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 3_000 });
  try {
    await client.connect();
  } catch (e) {
    return `PostgreSQL at ${PG_URL}: ${(e as Error).message}`;
  }
  const schema = `ajar_bench_${randomBytes(6).toString('hex')}`;
  await client.query(`CREATE SCHEMA ${schema}`);
  await client.end();
  return {
    url: `${PG_URL}?options=${encodeURIComponent(`-c search_path=${schema}`)}`,
    drop: async () => {
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      await c.query(`DROP SCHEMA ${schema} CASCADE`);
      await c.end();
    },
  };
}

await main();
