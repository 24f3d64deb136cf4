// Two mechanisms behind the full path's tail on PostgreSQL, each timed in this process (so a loaded machine blurs
// them less than the open-loop bench): the key cache as one replica at ~67 requests/s sees it (how long get()
// holds a request, and how many store reads it makes), and the first usage writes after 11 s idle (pg closes idle
// connections after 10 s unless the pool keeps them).
// Usage: node dist/bench/overhead/mechanisms.js   ($AJAR_TEST_POSTGRES as in the tests)
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { createApiKey, openStore } from '../../src/serve/index.js';
import { KeyCache } from '../../src/serve/key-cache.js';
import type { UsageRecord } from '../../src/serve/store.js';

const PG_URL = process.env.AJAR_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/test';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const admin = new pg.Client({ connectionString: PG_URL });
await admin.connect();
const schema = `ajar_mech_${randomBytes(4).toString('hex')}`;
await admin.query(`CREATE SCHEMA ${schema}`);
const url = `${PG_URL}?options=${encodeURIComponent(`-c search_path=${schema}`)}`;
try {
  const store = await openStore(url);
  const { record } = await createApiKey(store, { name: 'bench' }, { actor: 'bench' }, Date.now());
  let reads = 0;
  const getKey = store.getKey.bind(store);
  store.getKey = (id) => {
    reads++;
    return getKey(id);
  };
  const cache = new KeyCache(store);
  await cache.start();
  const held: number[] = [];
  const end = performance.now() + 6_000;
  while (performance.now() < end) {
    const t0 = performance.now();
    await cache.get(record.id);
    held.push(performance.now() - t0);
    await sleep(15);
  }
  await cache.close();
  held.sort((a, b) => a - b);
  const p = (q: number): string => held[Math.floor((q / 100) * held.length)].toFixed(3);
  console.log(`key cache, get() every 15 ms for 6 s: ${held.length} requests, ${reads} store reads; `
    + `held p50 ${p(50)} p98 ${p(98)} p99 ${p(99)} max ${held[held.length - 1].toFixed(1)} ms`);

  let n = 0;
  const rec = (): UsageRecord => ({
    ts: Date.now(), keyId: record.id, client: 'bench', model: 'stub', endpoint: '/v1/completions', promptTokens: 1,
    completionTokens: 1, latencyMs: 1, status: 200, finishReason: 'length', user: null, requestId: `mech_${n++}`,
  });
  for (let i = 0; i < 5; i++) await store.recordUsage(rec());
  for (let trial = 0; trial < 2; trial++) {
    await sleep(11_000);
    const t0 = performance.now();
    await Promise.all([store.recordUsage(rec()), store.recordUsage(rec())]);
    const t1 = performance.now();
    await store.recordUsage(rec());
    console.log(`usage writes after 11 s idle: the first two ${(t1 - t0).toFixed(1)} ms, the next ${(performance.now() - t1).toFixed(1)} ms`);
  }
  await store.close();
} finally {
  await admin.query(`DROP SCHEMA ${schema} CASCADE`);
  await admin.end();
}
