// ajar db migrate: applies what a database lacks and says which, idempotently, on SQLite and PostgreSQL (a fresh
// schema in $AJAR_TEST_POSTGRES; skipped, saying why, when it does not answer), including an upgrade of a database
// that holds records from before the daily rollups (the rollups are filled from them).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import pg from 'pg';
import { openMigrated, openStore, type UsageRecord } from '../../src/serve/index.js';
import { runCli } from './helpers.js';
import { pgSchema } from './services.js';

const ajar = runCli;

/** The daily rollups of the store at `spec` hold `requests` records and equal the raw records' totals. */
async function rollupsMatch(spec: string, requests: number): Promise<void> {
  const store = await openStore(spec);
  try {
    const daily = await store.dailyUsage({});
    assert.equal(daily.reduce((n, d) => n + d.requests, 0), requests);
    assert.deepEqual(daily, await store.usageSummary({}));
  } finally {
    await store.close();
  }
}

const T0 = Date.UTC(2026, 2, 1, 23, 59);
const rec = (i: number): UsageRecord => ({
  ts: T0 + i * 60_000, keyId: i % 3 === 0 ? null : `k${i % 2}`, client: '10.9.9.9', model: 'm', endpoint: '/v1/completions',
  promptTokens: i, completionTokens: 2 * i, latencyMs: 1, status: 200, finishReason: 'stop', user: null, requestId: `m${i}`,
});

const tmp = mkdtempSync(join(tmpdir(), 'ajar-migrate-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const pgTarget = await pgSchema();

describe('ajar db migrate', () => {
  it('refuses a missing or unknown subcommand and a bad --db with exit 2 and one line', async () => {
    for (const args of [['db'], ['db', 'upgrade'], ['db', 'migrate', '--db', 'mysql://x']]) {
      const r = await ajar(...args);
      assert.equal(r.code, 2, args.join(' '));
      assert.equal(r.err.trim().split('\n').length, 1);
      assert.match(r.err, /migrate|sqlite:PATH/);
    }
  });

  it('SQLite: a fresh file gets every migration, a second run none', async () => {
    const db = `sqlite:${join(tmp, 'fresh.db')}`;
    const first = JSON.parse((await ajar('db', 'migrate', '--db', db, '--json')).out) as { version: number; applied: Array<{ version: number }> };
    assert.deepEqual(first.applied.map((m) => m.version), [1, 2, 3]);
    const again = await ajar('db', 'migrate', '--db', db);
    assert.equal(again.code, 0);
    assert.match(again.out, /is up to date \(schema version 3\)/);
  });

  it('SQLite: a schema-2 database with records gets its rollups, equal to the records', async () => {
    const path = join(tmp, 'old.db');
    const store = await openStore(`sqlite:${path}`);
    for (let i = 0; i < 10; i++) await store.recordUsage(rec(i));
    await store.close();
    // Back to schema 2 as an older ajar left it: no rollup table.
    const raw = new Database(path);
    raw.exec('DROP TABLE usage_daily');
    raw.pragma('user_version = 2');
    raw.close();
    const r = await ajar('db', 'migrate', '--db', `sqlite:${path}`);
    assert.equal(r.code, 0);
    assert.equal(r.out, `applied 3: daily usage rollups per key\najar db migrate: sqlite:${path} is at schema version 3\n`);
    await rollupsMatch(`sqlite:${path}`, 10);
  });

  it('PostgreSQL: replicas migrating at once apply each migration once; an upgrade fills the rollups',
    { skip: typeof pgTarget === 'string' ? pgTarget : false }, async () => {
      if (typeof pgTarget === 'string') return;
      try {
        // Three replicas starting together (in-process: the CLI's output capture is one at a time).
        const runs = await Promise.all([0, 1, 2].map(() => openMigrated(pgTarget.url)));
        await Promise.all(runs.map((r) => r.store.close()));
        const applied = runs.flatMap((r) => r.migrated.applied.map((m) => m.version));
        assert.deepEqual(applied.sort(), [1, 2, 3], 'each once, whichever run applied it');
        const json = JSON.parse((await ajar('db', 'migrate', '--db', pgTarget.url, '--json')).out) as unknown;
        assert.deepEqual(json, { version: 3, applied: [] });
        const store = await openStore(pgTarget.url);
        for (let i = 0; i < 10; i++) await store.recordUsage(rec(i));
        await store.close();
        // Back to version 1 as an older ajar left it.
        const c = new pg.Client({ connectionString: pgTarget.url });
        await c.connect();
        await c.query(`DROP TABLE usage_daily; DROP TRIGGER api_keys_changed ON api_keys; DROP FUNCTION ajar_key_changed();
          DROP FUNCTION ajar_reserve_quota; DELETE FROM ajar_migrations WHERE version >= 2`);
        await c.end();
        const r = await ajar('db', 'migrate', '--db', pgTarget.url);
        assert.equal(r.code, 0);
        assert.match(r.out, /^applied 2: daily usage rollups per key; key change notifications\napplied 3: quota reservation in one call\n/);
        const again = await ajar('db', 'migrate', '--db', pgTarget.url);
        assert.match(again.out, /is up to date \(schema version 3\)/);
        await rollupsMatch(pgTarget.url, 10);
      } finally {
        await pgTarget.drop();
      }
    });
});
