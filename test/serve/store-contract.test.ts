// One contract for every Store: the same tests against SQLite (a temporary file) and PostgreSQL (a fresh schema in
// $AJAR_TEST_POSTGRES, default postgres://postgres@127.0.0.1:5432/test; skipped, saying why, when it does not answer).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openStore, type Store, type UsageRecord } from '../../src/serve/index.js';
import { KeyCache } from '../../src/serve/key-cache.js';
import { pgSchema } from './services.js';

const pgTarget = await pgSchema();
const tmp = mkdtempSync(join(tmpdir(), 'ajar-contract-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const targets: Array<{ name: string; spec: string | null; skip: string | false; drop?: () => Promise<void> }> = [
  { name: 'sqlite', spec: `sqlite:${join(tmp, 'contract.db')}`, skip: false },
  typeof pgTarget === 'string'
    ? { name: 'postgres', spec: null, skip: pgTarget }
    : { name: 'postgres', spec: pgTarget.url, skip: false, drop: pgTarget.drop },
];

const T0 = Date.UTC(2026, 4, 1, 12);

function usage(over: Partial<UsageRecord> = {}): UsageRecord {
  return {
    ts: T0, keyId: 'k1', client: '127.0.0.1', model: 'm', endpoint: '/v1/completions', promptTokens: 10,
    completionTokens: 5, latencyMs: 12.4, status: 200, finishReason: 'length', user: 'u', requestId: `req_${randomBytes(6).toString('hex')}`,
    ...over,
  };
}

for (const t of targets) {
  describe(`Store contract [${t.name}]`, { skip: t.skip }, () => {
    let store: Store;
    before(async () => {
      store = await openStore(t.spec!);
    });
    after(async () => {
      await store?.close();
      await t.drop?.();
    });

    it('keys: create, get, list, revoke once, rotate', async () => {
      const hash = randomBytes(32);
      await store.createKey({
        id: 'k1', name: 'one', hash, createdAt: T0, rotatedAt: null, revokedAt: null, expiresAt: T0 + 1e9, rpm: 5,
        tpm: null, quotaTokens: 100, quotaPeriod: 'day', models: ['a', 'b/c'],
      });
      await store.createKey({
        id: 'k2', name: 'two', hash: randomBytes(32), createdAt: T0 + 1, rotatedAt: null, revokedAt: null,
        expiresAt: null, rpm: null, tpm: null, quotaTokens: null, quotaPeriod: null, models: null,
      });
      const k = await store.getKey('k1');
      assert.deepEqual(k, {
        id: 'k1', name: 'one', hash, createdAt: T0, rotatedAt: null, revokedAt: null, expiresAt: T0 + 1e9, rpm: 5,
        tpm: null, quotaTokens: 100, quotaPeriod: 'day', models: ['a', 'b/c'],
      });
      assert.equal(await store.getKey('nope'), undefined);
      assert.deepEqual((await store.listKeys()).map((x) => x.id), ['k1', 'k2']);
      assert.equal(await store.revokeKey('k2', T0 + 5), true);
      assert.equal(await store.revokeKey('k2', T0 + 9), true);
      assert.equal((await store.getKey('k2'))?.revokedAt, T0 + 5, 'the first revocation time stays');
      assert.equal(await store.revokeKey('nope', T0), false);
      const h2 = randomBytes(32);
      assert.equal(await store.replaceKeyHash('k1', h2, T0 + 7), true);
      assert.deepEqual([(await store.getKey('k1'))?.hash, (await store.getKey('k1'))?.rotatedAt], [h2, T0 + 7]);
    });

    it('usage: records once per request id, totals per key and UTC day, newest-first limits', async () => {
      const a = usage();
      await store.recordUsage(a);
      await store.recordUsage(a);
      await store.recordUsage(usage({ ts: T0 + 86_400_000, promptTokens: 1, completionTokens: 2 }));
      await store.recordUsage(usage({ keyId: null, client: '10.0.0.1', requestId: null }));
      assert.equal(await store.tokensUsedSince('k1', 0), 18, 'the repeated record counts once');
      assert.equal(await store.tokensUsedSince('k1', T0 + 1), 3);
      assert.deepEqual(await store.usageSummary({}), [
        { key_id: 'anon:10.0.0.1', day: '2026-05-01', requests: 1, prompt_tokens: 10, completion_tokens: 5 },
        { key_id: 'k1', day: '2026-05-01', requests: 1, prompt_tokens: 10, completion_tokens: 5 },
        { key_id: 'k1', day: '2026-05-02', requests: 1, prompt_tokens: 1, completion_tokens: 2 },
      ]);
      const last = await store.listUsage({ keyId: 'k1', limit: 1 });
      assert.equal(last.length, 1);
      assert.deepEqual({ ...last[0], id: 0 }, { ...usage({ ts: T0 + 86_400_000, promptTokens: 1, completionTokens: 2 }), requestId: last[0].requestId, latencyMs: 12, id: 0 });
    });

    it('journal: upserts an entry, lists it, and the usage record closes it', async () => {
      const u = usage({ keyId: 'k2', completionTokens: 3 });
      await store.journalUsage({ ...u, requestId: u.requestId!, owner: 'h:1:a', heartbeat: T0 + 1 });
      await store.journalUsage({ ...u, completionTokens: 9, requestId: u.requestId!, owner: 'h:1:a', heartbeat: T0 + 2 });
      const j = await store.listJournal();
      assert.equal(j.length, 1);
      assert.deepEqual([j[0].completionTokens, j[0].heartbeat, j[0].owner], [9, T0 + 2, 'h:1:a']);
      await store.closeJournal([{ ...u, completionTokens: 9, status: 500, finishReason: 'interrupted' }]);
      assert.equal((await store.listJournal()).length, 0);
      assert.equal(await store.tokensUsedSince('k2', 0), 19);
    });

    it('quota: holds count until the record replaces them; parallel reservations never overshoot', async () => {
      const q = { keyId: 'kq', quota: 100, since: 0, now: T0, expiresAt: T0 + 60_000 };
      assert.deepEqual(await store.reserveQuota({ ...q, requestId: 'r1', min: 5, want: 60 }), { granted: 60, left: 100 });
      assert.deepEqual(await store.reserveQuota({ ...q, requestId: 'r2', min: 5, want: 60 }), { granted: 40, left: 40 });
      assert.deepEqual(await store.reserveQuota({ ...q, requestId: 'r3', min: 5, want: 60 }), { granted: 0, left: 0 });
      await store.recordUsage(usage({ keyId: 'kq', requestId: 'r1', promptTokens: 5, completionTokens: 5 }));
      assert.deepEqual(await store.reserveQuota({ ...q, requestId: 'r3', min: 5, want: 60 }), { granted: 50, left: 50 });
      await store.releaseQuota('r2');
      await store.releaseQuota('r3');
      // A hold past its expiry (its process died) no longer counts.
      await store.reserveQuota({ ...q, requestId: 'dead', min: 1, want: 90, expiresAt: T0 + 10 });
      assert.equal((await store.reserveQuota({ ...q, requestId: 'r4', min: 1, want: 90, now: T0 + 11 })).granted, 90);
      await store.releaseQuota('r4');
      const grants = await Promise.all(Array.from({ length: 12 }, (_, i) => store.reserveQuota({ ...q, requestId: `p${i}`, min: 1, want: 25 })));
      assert.equal(grants.reduce((n, g) => n + g.granted, 0), 90, 'what is left (100 - 10 used) and no more');
    });

    it('audit: single and batched entries, oldest first, newest-first limit', async () => {
      const e = { ts: T0, actor: 'client', action: 'auth.failure' as const, keyId: null, keyPrefix: null, remote: '1.2.3.4', detail: { reason: 'missing' } };
      await store.appendAudit(e);
      await store.appendAudits([{ ...e, ts: T0 + 1, detail: { reason: 'invalid', count: 7 } }, { ...e, ts: T0 + 2, detail: null }]);
      const all = await store.listAudit({});
      assert.deepEqual(all.map((x) => [x.ts, x.detail]), [[T0, { reason: 'missing' }], [T0 + 1, { reason: 'invalid', count: 7 }], [T0 + 2, null]]);
      assert.deepEqual((await store.listAudit({ limit: 1 })).map((x) => x.ts), [T0 + 2]);
      assert.deepEqual((await store.listAudit({ since: T0 + 1 })).map((x) => x.ts), [T0 + 1, T0 + 2]);
    });

    it('rollups: daily totals per key equal the raw records, under concurrent writers on two connections', async () => {
      // A second connection to the same database: another process's writes, racing this one's on the same rollup rows.
      const other = await openStore(t.spec!);
      try {
        const DAY = 86_400_000;
        const written: UsageRecord[] = [];
        const writes: Array<Promise<void>> = [];
        for (let i = 0; i < 120; i++) {
          const u = usage({
            keyId: i % 7 === 0 ? null : `kr${i % 3}`, client: `10.0.0.${i % 2}`, ts: T0 + (i % 4) * DAY + i,
            promptTokens: i % 11, completionTokens: (i * 7) % 13, requestId: i % 10 === 9 ? null : `roll_${i}`,
          });
          written.push(u);
          writes.push((i % 2 === 0 ? store : other).recordUsage(u));
          // The same request id again, concurrently, through the other connection: billed once.
          if (i % 5 === 0 && u.requestId !== null) writes.push((i % 2 === 0 ? other : store).recordUsage(u));
        }
        await Promise.all(writes);
        // Expected: from the inputs, summed here (each request id once).
        const want = new Map<string, { key_id: string; day: string; requests: number; prompt_tokens: number; completion_tokens: number }>();
        for (const u of written) {
          const key = u.keyId ?? `anon:${u.client}`;
          const day = new Date(u.ts).toISOString().slice(0, 10);
          const row = want.get(`${day} ${key}`) ?? { key_id: key, day, requests: 0, prompt_tokens: 0, completion_tokens: 0 };
          row.requests++;
          row.prompt_tokens += u.promptTokens;
          row.completion_tokens += u.completionTokens;
          want.set(`${day} ${key}`, row);
        }
        // This test's keys (the anonymous callers' rows also hold earlier tests' records: compared below).
        const ours = (rows: Array<{ key_id: string }>) => rows.filter((r) => r.key_id.startsWith('kr'));
        const expected = [...want.values()].sort((a, b) => (a.day === b.day ? (a.key_id < b.key_id ? -1 : 1) : a.day < b.day ? -1 : 1));
        const daily = await store.dailyUsage({});
        assert.deepEqual(ours(daily), ours(expected));
        // The rollups equal the raw records' totals for every key and day, earlier tests' records included.
        assert.deepEqual(daily, await store.usageSummary({}));
        assert.deepEqual(await store.dailyUsage({ keyId: 'kr1' }), await store.usageSummary({ keyId: 'kr1' }));
        const day2 = Date.UTC(2026, 4, 2);
        assert.deepEqual(await other.dailyUsage({ since: day2 + 5 }), await store.usageSummary({ since: day2 }), 'since: from its UTC day on');
        // The journal's records (closeJournal) roll up too.
        const u = usage({ keyId: 'kr9', requestId: 'roll_journal' });
        await store.journalUsage({ ...u, requestId: 'roll_journal', owner: 'h:2:b', heartbeat: T0 });
        await other.closeJournal([u, u]);
        assert.deepEqual(await store.dailyUsage({ keyId: 'kr9' }), [
          { key_id: 'kr9', day: '2026-05-01', requests: 1, prompt_tokens: 10, completion_tokens: 5 }]);
      } finally {
        await other.close();
      }
    });

    it('a key change reaches a key cache on another connection within a second', async () => {
      const other = await openStore(t.spec!);
      const cache = new KeyCache(other);
      try {
        await cache.start();
        if (t.name === 'postgres') assert.equal(cache.caching, true, 'PostgreSQL announces key changes: the cache serves');
        else assert.equal(cache.caching, false, 'SQLite does not: every read goes to the store');
        assert.equal((await cache.get('k1'))?.revokedAt, null);
        const t0 = performance.now();
        await store.revokeKey('k1', T0 + 100);
        let rec = await cache.get('k1');
        while (rec?.revokedAt === null && performance.now() - t0 < 2_000) {
          await new Promise((r) => setTimeout(r, 5));
          rec = await cache.get('k1');
        }
        assert.equal(rec?.revokedAt, T0 + 100);
        assert.ok(performance.now() - t0 < 1_000, `seen after ${performance.now() - t0} ms`);
      } finally {
        await cache.close();
        await other.close();
      }
    });

    it('answers ping', async () => {
      await store.ping();
    });
  });
}
