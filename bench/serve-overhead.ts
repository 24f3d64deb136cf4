// npm run bench:serve: what authentication, limits and metering add to a request, at a fixed request rate, with a
// model stub that answers at once (a one-layer, 8-wide GPT-2 over 60 characters: its forward pass takes tens of
// microseconds). Two set-ups: one `ajar serve` on SQLite, and three replicas on PostgreSQL + Redis (skipped, saying
// why, when either does not answer; $AJAR_TEST_POSTGRES and $AJAR_TEST_REDIS as in the tests).
// Each request is POST /v1/completions with a key, max_tokens 1 (key lookup, quota-free limits, one usage record);
// GET /health on the same servers at the same rate is the baseline of HTTP, JSON and the event loop. The row shows
// p50 and p99 of each and "added" = completions minus health at the same percentile.
// Usage: node dist/bench/serve-overhead.js [--rate 200] [--seconds 10] [--json]
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { selectBackend } from '../src/backends/select.js';
import { CharTokenizer } from '../src/io/tokenizer/index.js';
import { buildModel, saveModelFolder, type CausalLM } from '../src/models/index.js';
import { createApiKey, openStore } from '../src/serve/index.js';
import { RedisLimiter } from '../src/serve/redis-limiter.js';
import { Rng } from '../src/tensor/index.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const PG_URL = process.env.AJAR_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/test';
const REDIS_URL = process.env.AJAR_TEST_REDIS ?? 'redis://127.0.0.1:6379';

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}
const RATE = flag('rate', 200);
const SECONDS = flag('seconds', 10);
const JSON_OUT = process.argv.includes('--json');

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
  const proc = spawn(process.execPath, [join(root, 'bin/ajar.js'), 'serve', '--port', '0', '--log-level', 'silent',
    '--backend', 'js', '--queue-depth', '1000', ...args], { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  const port = await new Promise<number>((resolve, reject) => {
    proc.stderr!.on('data', (b: Buffer) => {
      err += b.toString();
      const m = /listening on http:\/\/[^:\s]+:(\d+)/.exec(err);
      if (m) resolve(Number(m[1]));
    });
    proc.once('exit', (code) => reject(new Error(`ajar serve exited (${code}): ${err}`)));
  });
  return { proc, port };
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

/** RATE requests a second of each kind for SECONDS, round robin over the servers; latencies in ms. */
async function drive(servers: Server[], key: string): Promise<{ completions: number[]; health: number[]; errors: number }> {
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const completions: number[] = [];
  const health: number[] = [];
  let errors = 0;
  const body = JSON.stringify({ model: 'stub', prompt: 'Hello', max_tokens: 1, temperature: 0 });
  const one = (i: number, kind: 'c' | 'h'): Promise<void> => new Promise((resolve) => {
    const s = servers[i % servers.length];
    const t0 = performance.now();
    const req = request({
      host: '127.0.0.1', port: s.port, agent, method: kind === 'c' ? 'POST' : 'GET',
      path: kind === 'c' ? '/v1/completions' : '/health',
      headers: kind === 'c' ? { 'content-type': 'application/json', authorization: `Bearer ${key}` } : {},
    }, (res) => {
      res.resume();
      res.once('end', () => {
        if (res.statusCode !== 200) errors++;
        else (kind === 'c' ? completions : health).push(performance.now() - t0);
        resolve();
      });
    });
    req.once('error', () => {
      errors++;
      resolve();
    });
    req.end(kind === 'c' ? body : undefined);
  });
  const pending: Array<Promise<void>> = [];
  const start = performance.now();
  let sent = 0;
  // Warm-up: a second at the rate, not measured.
  for (let phase = 0; phase < 2; phase++) {
    const until = performance.now() + (phase === 0 ? 1_000 : SECONDS * 1000);
    const t0 = performance.now();
    let n = 0;
    while (performance.now() < until) {
      const due = Math.floor(((performance.now() - t0) / 1000) * RATE);
      while (n < due) {
        n++;
        sent++;
        const p = Promise.all([one(sent, 'c'), one(sent, 'h')]).then(() => undefined);
        if (phase === 1) pending.push(p);
      }
      await new Promise((r) => setTimeout(r, 2));
    }
    if (phase === 0) {
      await new Promise((r) => setTimeout(r, 200));
      completions.length = 0;
      health.length = 0;
      errors = 0;
    }
  }
  await Promise.all(pending);
  agent.destroy();
  void start;
  return { completions, health, errors };
}

interface Row { setup: string; rate: number; requests: number; errors: number; completions_p50_ms: number; completions_p99_ms: number; health_p50_ms: number; health_p99_ms: number; added_p50_ms: number; added_p99_ms: number }

function row(setup: string, r: { completions: number[]; health: number[]; errors: number }): Row {
  const c50 = pct(r.completions, 50);
  const c99 = pct(r.completions, 99);
  const h50 = pct(r.health, 50);
  const h99 = pct(r.health, 99);
  return {
    setup, rate: RATE, requests: r.completions.length, errors: r.errors, completions_p50_ms: c50, completions_p99_ms: c99,
    health_p50_ms: h50, health_p99_ms: h99, added_p50_ms: c50 - h50, added_p99_ms: c99 - h99,
  };
}

async function main(): Promise<void> {
  const tmp = mkdtempSync(join(tmpdir(), 'ajar-overhead-'));
  const rows: Row[] = [];
  const servers: Server[] = [];
  try {
    const model = stubModel(join(tmp, 'stub'));
    // SQLite, one process.
    const db = `sqlite:${join(tmp, 'ajar.db')}`;
    const store = await openStore(db);
    const { key } = await createApiKey(store, { name: 'bench', rpm: 1_000_000, tpm: 100_000_000 }, { actor: 'bench' }, Date.now());
    await store.close();
    servers.push(await serve(['--model', `stub=${model}`, '--db', db]));
    rows.push(row('sqlite, 1 process', await drive(servers, key)));
    servers.splice(0).forEach((s) => s.proc.kill('SIGKILL'));

    // PostgreSQL + Redis, three replicas.
    const why = await services();
    if (typeof why === 'string') {
      console.error(`serve-overhead: skipping PostgreSQL + Redis: ${why}`);
    } else {
      try {
        const pstore = await openStore(why.url);
        const k = await createApiKey(pstore, { name: 'bench', rpm: 1_000_000, tpm: 100_000_000 }, { actor: 'bench' }, Date.now());
        await pstore.close();
        for (let i = 0; i < 3; i++) servers.push(await serve(['--model', `stub=${model}`, '--db', why.url, '--redis', REDIS_URL]));
        rows.push(row('postgres + redis, 3 replicas', await drive(servers, k.key)));
      } finally {
        servers.splice(0).forEach((s) => s.proc.kill('SIGKILL'));
        await why.drop();
      }
    }
  } finally {
    servers.forEach((s) => s.proc.kill('SIGKILL'));
    rmSync(tmp, { recursive: true, force: true });
  }
  if (JSON_OUT) {
    console.log(JSON.stringify(rows));
    return;
  }
  console.log(`${RATE} requests/s of each kind for ${SECONDS} s (ms; added = completions - health at the same percentile)`);
  console.log('setup                          requests errors  completions p50/p99   health p50/p99   added p50/p99');
  for (const r of rows) {
    console.log(`${r.setup.padEnd(30)} ${String(r.requests).padStart(8)} ${String(r.errors).padStart(6)}  `
      + `${r.completions_p50_ms.toFixed(2).padStart(8)} / ${r.completions_p99_ms.toFixed(2).padEnd(8)} `
      + `${r.health_p50_ms.toFixed(2).padStart(6)} / ${r.health_p99_ms.toFixed(2).padEnd(6)} `
      + `${r.added_p50_ms.toFixed(2).padStart(6)} / ${r.added_p99_ms.toFixed(2)}`);
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
