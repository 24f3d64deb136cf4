// The keys, usage and audit commands through the CLI dispatcher (in-process, output captured) on a temp database:
// create/list/revoke/rotate, usage as table, CSV and JSON (the planning tool's contract), and the audit listing.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { UsageRecord } from '../../src/serve/index.js';
import { SqliteStore } from '../../src/serve/sqlite-store.js';
import { runCli, storeBytes } from './helpers.js';

const ajar = runCli;

describe('cli: keys, usage, audit', () => {
  let dir: string;
  let db: string;
  const secrets: string[] = [];

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'ajar-cli-'));
    db = `sqlite:${join(dir, 'ajar.db')}`;
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('keys create prints the key once; --json gives {id, key}', async () => {
    const r = await ajar('keys', 'create', '--name', 'alice', '--rpm', '10', '--tpm', '5000', '--quota-tokens', '1000',
      '--quota-period', 'day', '--expires', '2099-12-31', '--models', 'a,b', '--db', db, '--json');
    assert.equal(r.code, 0, r.err);
    const created = JSON.parse(r.out) as { id: string; key: string };
    assert.deepEqual(Object.keys(created), ['id', 'key']);
    assert.match(created.key, new RegExp(`^ajar_sk_${created.id}_`));
    secrets.push(created.key);
    const text = await ajar('keys', 'create', '--name', 'bob', '--db', db);
    assert.equal(text.code, 0);
    assert.match(text.out, /ajar_sk_[0-9a-f]{16}_\S{43}/);
    assert.match(text.out, /only time the key is shown/);
    secrets.push(/ajar_sk_\S+/.exec(text.out)![0]);
  });

  it('keys create refuses an empty or spaced model id in --models, in one line with the command named once', async () => {
    for (const models of ['a,,b', ',a', 'a b']) {
      const r = await ajar('keys', 'create', '--name', 'carol', '--models', models, '--db', db);
      assert.equal(r.code, 2, models);
      assert.equal(r.err.trim(), `ajar keys create: --models takes model ids separated by commas, got '${models}'`);
    }
  });

  it('keys list shows status and limits, never keys or hashes', async () => {
    const r = await ajar('keys', 'list', '--db', db, '--json');
    const keys = JSON.parse(r.out) as Array<Record<string, unknown>>;
    assert.deepEqual(keys.map((k) => k.name), ['alice', 'bob']);
    assert.deepEqual([keys[0].rpm, keys[0].tpm, keys[0].quota_tokens, keys[0].quota_period, keys[0].models, keys[0].status],
      [10, 5000, 1000, 'day', ['a', 'b'], 'active']);
    assert.equal(keys[0].expires_at, '2100-01-01T00:00:00Z', 'a key expiring on a day works through that UTC day');
    assert.ok(keys.every((k) => !('hash' in k) && !('key' in k)));
    const table = await ajar('keys', 'list', '--db', db);
    assert.match(table.out, /^ID\s+NAME\s+STATUS/);
    assert.match(table.out, /alice\s+active\s+10\s+5000\s+1000\/day/);
    for (const s of secrets) assert.ok(!table.out.includes(s));
  });

  it('keys rotate gives a new key for the same id; keys revoke marks it revoked', async () => {
    const [alice] = JSON.parse((await ajar('keys', 'list', '--db', db, '--json')).out) as Array<{ id: string }>;
    const rot = await ajar('keys', 'rotate', alice.id, '--db', db, '--json');
    assert.equal(rot.code, 0, rot.err);
    const rotated = JSON.parse(rot.out) as { id: string; key: string };
    assert.equal(rotated.id, alice.id);
    assert.ok(!secrets.includes(rotated.key));
    secrets.push(rotated.key);
    const rev = await ajar('keys', 'revoke', alice.id, '--db', db);
    assert.equal(rev.code, 0);
    assert.match(rev.out, /Revoked API key/);
    const keys = JSON.parse((await ajar('keys', 'list', '--db', db, '--json')).out) as Array<{ status: string; revoked_at: string | null }>;
    assert.equal(keys[0].status, 'revoked');
    assert.ok(keys[0].revoked_at !== null);
    const again = await ajar('keys', 'rotate', alice.id, '--db', db);
    assert.equal(again.code, 2, 'rotating a revoked key is refused');
    assert.match(again.err, /revoked/);
  });

  it('bad input is one stderr line and exit 2', async () => {
    const cases = [
      ['keys', 'revoke', 'nosuchkey', '--db', db],
      ['keys', 'create', '--db', db],
      ['keys', 'create', '--name', 'x', '--expires', '2001-01-01', '--db', db],
      ['keys', 'create', '--name', 'x', '--quota-period', 'day', '--db', db],
      ['keys', 'create', '--name', 'x', '--expires', 'tomorrow', '--db', db],
      ['usage', '--format', 'xml', '--db', db],
      ['usage', '--db', 'postgres://localhost/ajar'],
      ['keys', 'frobnicate'],
    ];
    for (const args of cases) {
      const r = await ajar(...args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`);
      assert.equal(r.err.trim().split('\n').length, 1, r.err);
      assert.doesNotMatch(r.err, /\n\s+at /);
    }
  });

  it('usage totals per key and UTC day as table, CSV and JSON', async () => {
    const store = SqliteStore.open(join(dir, 'ajar.db'));
    const base: UsageRecord = {
      ts: Date.UTC(2026, 2, 1, 10), keyId: 'k1', client: '127.0.0.1', model: 'm', endpoint: '/v1/completions',
      promptTokens: 10, completionTokens: 5, latencyMs: 12, status: 200, finishReason: 'length', user: null, requestId: null,
    };
    await store.recordUsage(base);
    await store.recordUsage({ ...base, ts: Date.UTC(2026, 2, 1, 23, 59), promptTokens: 1, completionTokens: 2 });
    await store.recordUsage({ ...base, ts: Date.UTC(2026, 2, 2, 0, 1) });
    await store.recordUsage({ ...base, keyId: 'k2', promptTokens: 7, completionTokens: 0, status: 429 });
    await store.recordUsage({ ...base, keyId: null, client: '10.1.2.3' });
    await store.close();

    const json = await ajar('usage', '--format', 'json', '--db', db);
    assert.equal(json.code, 0, json.err);
    assert.deepEqual(JSON.parse(json.out), [
      { key_id: 'anon:10.1.2.3', day: '2026-03-01', requests: 1, prompt_tokens: 10, completion_tokens: 5 },
      { key_id: 'k1', day: '2026-03-01', requests: 2, prompt_tokens: 11, completion_tokens: 7 },
      { key_id: 'k2', day: '2026-03-01', requests: 1, prompt_tokens: 7, completion_tokens: 0 },
      { key_id: 'k1', day: '2026-03-02', requests: 1, prompt_tokens: 10, completion_tokens: 5 },
    ]);
    const one = JSON.parse((await ajar('usage', '--key', 'k1', '--since', '2026-03-02', '--format', 'json', '--db', db)).out) as unknown[];
    assert.deepEqual(one, [{ key_id: 'k1', day: '2026-03-02', requests: 1, prompt_tokens: 10, completion_tokens: 5 }]);
    const csvOut = (await ajar('usage', '--key', 'k1', '--format', 'csv', '--db', db)).out;
    assert.equal(csvOut, 'key_id,day,requests,prompt_tokens,completion_tokens\r\nk1,2026-03-01,2,11,7\r\nk1,2026-03-02,1,10,5\n');
    const table = (await ajar('usage', '--db', db)).out;
    assert.match(table, /^KEY\s+DAY \(UTC\)\s+REQUESTS\s+PROMPT\s+COMPLETION\s+TOTAL/);
    assert.match(table, /total\s+5\s+38\s+17\s+55/);
  });

  it('audit lists key changes by the CLI user, with no secrets', async () => {
    const r = await ajar('audit', '--db', db, '--json');
    assert.equal(r.code, 0);
    const entries = JSON.parse(r.out) as Array<{ action: string; actor: string; key_prefix: string | null }>;
    assert.deepEqual(entries.map((e) => e.action), ['key.create', 'key.create', 'key.rotate', 'key.revoke']);
    assert.ok(entries.every((e) => e.actor.startsWith('cli')));
    const table = await ajar('audit', '--db', db, '--limit', '1');
    assert.match(table.out, /key\.revoke/);
    assert.doesNotMatch(table.out, /key\.create/);
    const bytes = storeBytes(dir);
    for (const s of secrets) {
      assert.ok(!r.out.includes(s) && !table.out.includes(s));
      assert.ok(!bytes.includes(s) && !bytes.includes(s.slice(-43)), 'no secret in the database files');
    }
  });
});
