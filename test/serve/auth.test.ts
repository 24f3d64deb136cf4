// Keys and admin in-process: missing, malformed, unknown, wrong, revoked, expired and rotated keys; per-key model
// lists; the admin API; the audit log; and no secret anywhere in the database files or the logs.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { hashKey, parseKey, revokeApiKey, rotateApiKey } from '../../src/serve/index.js';
import { ADMIN_TOKEN, bearer, harness, MODEL_ID, storeBytes, type Harness } from './helpers.js';

interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string };
}

describe('serve: API keys', () => {
  let h: Harness;
  /** Every secret this suite handles; none may reach the database files or the logs. */
  const secrets: string[] = [ADMIN_TOKEN];

  before(async () => {
    h = await harness({}, true);
  });
  after(async () => h.close());

  const models = (headers: Record<string, string> = {}) => h.app.inject({ method: 'GET', url: '/v1/models', headers });
  const code = (r: { json: <T>() => T }) => r.json<ErrorBody>().error.code;

  it('makes keys of the documented shape with 256 random bits', async () => {
    const { key, id } = await h.key();
    secrets.push(key);
    assert.match(key, /^ajar_sk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    assert.deepEqual(parseKey(key), { id, prefix: `ajar_sk_${id}` });
    assert.equal((await h.store.getKey(id))!.hash.toString('hex'), hashKey(key).toString('hex'));
    const other = await h.key();
    secrets.push(other.key);
    assert.notEqual(other.key.slice(-43), key.slice(-43));
  });

  it('refuses a missing, malformed, unknown or wrong key with 401', async () => {
    const { key, id } = await h.key();
    secrets.push(key);
    const missing = await models();
    assert.equal(missing.statusCode, 401);
    assert.equal(missing.json<ErrorBody>().error.type, 'authentication_error');
    assert.equal(code(missing), 'missing_api_key');
    const malformed = 'sk-not-ours-0123456789';
    secrets.push(malformed);
    assert.equal(code(await models(bearer(malformed))), 'invalid_api_key');
    const unknown = `ajar_sk_0123456789abcdef_${'B'.repeat(43)}`;
    secrets.push(unknown);
    assert.equal(code(await models(bearer(unknown))), 'invalid_api_key');
    const wrong = `ajar_sk_${id}_${'C'.repeat(43)}`;
    secrets.push(wrong);
    const w = await models(bearer(wrong));
    assert.equal(w.statusCode, 401);
    assert.equal(code(w), 'invalid_api_key');
    assert.equal((await models(bearer(key))).statusCode, 200);
  });

  it('refuses a revoked key from the next request', async () => {
    const { key, id } = await h.key();
    secrets.push(key);
    assert.equal((await models(bearer(key))).statusCode, 200);
    await revokeApiKey(h.store, id, { actor: 'test' }, h.now.t);
    const r = await models(bearer(key));
    assert.equal(r.statusCode, 401);
    assert.equal(code(r), 'key_revoked');
  });

  it('refuses an expired key', async () => {
    const { key } = await h.key({ expiresAt: h.now.t + 60_000 });
    secrets.push(key);
    assert.equal((await models(bearer(key))).statusCode, 200);
    h.now.t += 120_000;
    const r = await models(bearer(key));
    assert.equal(r.statusCode, 401);
    assert.equal(code(r), 'key_expired');
  });

  it('rotation keeps the id and refuses the old key at once', async () => {
    const { key, id } = await h.key();
    secrets.push(key);
    const rotated = await rotateApiKey(h.store, id, { actor: 'test' }, h.now.t);
    secrets.push(rotated.key);
    assert.equal(rotated.record.id, id);
    assert.notEqual(rotated.key, key);
    assert.equal(code(await models(bearer(key))), 'invalid_api_key');
    assert.equal((await models(bearer(rotated.key))).statusCode, 200);
  });

  it('a key limited to some models gets the 404 of a nonexistent model for others and sees only its own', async () => {
    const { key } = await h.key({ models: ['another-model'] });
    secrets.push(key);
    const r = await h.app.inject({
      method: 'POST', url: '/v1/completions', headers: bearer(key), payload: { model: MODEL_ID, prompt: 'Hi', max_tokens: 1 },
    });
    assert.equal(r.statusCode, 404);
    assert.deepEqual([code(r), r.json<ErrorBody>().error.type, r.json<ErrorBody>().error.param],
      ['model_not_found', 'invalid_request_error', 'model']);
    assert.deepEqual((await models(bearer(key))).json<{ data: unknown[] }>().data, []);
    const allowed = await h.key({ models: [MODEL_ID] });
    secrets.push(allowed.key);
    assert.equal((await h.app.inject({
      method: 'POST', url: '/v1/completions', headers: bearer(allowed.key), payload: { model: MODEL_ID, prompt: 'Hi', max_tokens: 1 },
    })).statusCode, 200);
  });

  it('admin endpoints need the admin token and manage keys', async () => {
    const wrongAdmin = 'not-the-admin-token-at-all';
    secrets.push(wrongAdmin);
    const denied = await h.app.inject({ method: 'GET', url: '/admin/keys', headers: bearer(wrongAdmin) });
    assert.equal(denied.statusCode, 401);
    assert.equal(code(denied), 'invalid_admin_token');
    // An API key is not an admin token.
    const { key: apiKey } = await h.key();
    secrets.push(apiKey);
    assert.equal((await h.app.inject({ method: 'GET', url: '/admin/keys', headers: bearer(apiKey) })).statusCode, 401);

    const admin = bearer(ADMIN_TOKEN);
    const created = await h.app.inject({
      method: 'POST', url: '/admin/keys', headers: admin, payload: { name: 'via-admin', rpm: 5, quota_tokens: 1000, quota_period: 'day' },
    });
    assert.equal(created.statusCode, 201, created.body);
    const c = created.json<{ id: string; key: string; rpm: number; status: string }>();
    secrets.push(c.key);
    assert.deepEqual([c.rpm, c.status], [5, 'active']);
    assert.equal((await models(bearer(c.key))).statusCode, 200);
    const bad = await h.app.inject({ method: 'POST', url: '/admin/keys', headers: admin, payload: { name: 'x', rpm: 0 } });
    assert.deepEqual([bad.statusCode, bad.json<ErrorBody>().error.param], [400, 'rpm']);

    const rotated = await h.app.inject({ method: 'POST', url: `/admin/keys/${c.id}/rotate`, headers: admin });
    const newKey = rotated.json<{ key: string }>().key;
    secrets.push(newKey);
    assert.equal((await models(bearer(c.key))).statusCode, 401);
    assert.equal((await models(bearer(newKey))).statusCode, 200);
    const revoked = await h.app.inject({ method: 'DELETE', url: `/admin/keys/${c.id}`, headers: admin });
    assert.equal(revoked.json<{ status: string }>().status, 'revoked');
    assert.equal(code(await models(bearer(newKey))), 'key_revoked');
    const missing = await h.app.inject({ method: 'POST', url: '/admin/keys/0000000000000000/rotate', headers: admin });
    assert.deepEqual([missing.statusCode, code(missing)], [404, 'key_not_found']);

    const list = await h.app.inject({ method: 'GET', url: '/admin/keys', headers: admin });
    const views = list.json<{ data: Array<Record<string, unknown>> }>().data;
    assert.ok(views.length >= 8);
    assert.ok(views.every((v) => !('hash' in v) && !('key' in v)), 'listing shows no hash and no key');
    const usage = await h.app.inject({ method: 'GET', url: `/admin/usage?key=${c.id}`, headers: admin });
    const rows = usage.json<{ data: Array<{ key_id: string; requests: number }> }>().data;
    assert.deepEqual(rows.map((r) => [r.key_id, r.requests]), [[c.id, 2]]);
  });

  it('admin endpoints are off without an admin token', async () => {
    const h2 = await harness({ adminToken: undefined });
    try {
      const r = await h2.app.inject({ method: 'GET', url: '/admin/keys', headers: bearer(ADMIN_TOKEN) });
      assert.deepEqual([r.statusCode, code(r)], [403, 'admin_disabled']);
    } finally {
      await h2.close();
    }
  });

  it('audits key changes, admin calls and auth failures, append-only', async () => {
    await h.app.ajarControl.flushAudit();
    const entries = await h.store.listAudit({});
    const actions = new Set(entries.map((e) => e.action));
    for (const a of ['key.create', 'key.rotate', 'key.revoke', 'admin.request', 'auth.failure']) assert.ok(actions.has(a as never), a);
    const failures = entries.filter((e) => e.action === 'auth.failure');
    const reasons = new Set(failures.map((e) => (e.detail as { reason: string }).reason));
    for (const r of ['missing', 'malformed', 'unknown_key', 'wrong_secret', 'revoked', 'expired', 'wrong_token']) assert.ok(reasons.has(r), r);
    for (const f of failures) {
      assert.ok(f.keyPrefix === null || /^ajar_sk_[0-9a-f]{16}$/.test(f.keyPrefix), `prefix only: ${f.keyPrefix}`);
    }
    const adminCalls = entries.filter((e) => e.action === 'admin.request');
    assert.ok(adminCalls.some((e) => (e.detail as { path: string }).path === '/admin/keys'));
    const db = new Database(h.dbPath);
    try {
      assert.throws(() => db.prepare('UPDATE audit SET actor = ?').run('x'), /append-only/);
      assert.throws(() => db.prepare('DELETE FROM audit').run(), /append-only/);
      assert.throws(() => db.prepare('DELETE FROM usage').run(), /append-only/);
    } finally {
      db.close();
    }
  });

  it('keeps every secret out of the database files and the logs', () => {
    const bytes = storeBytes(h.dir);
    const logs = h.logs.join('');
    assert.ok(bytes.length > 0 && logs.length > 0);
    for (const s of secrets) {
      const secretPart = s.startsWith('ajar_sk_') ? s.slice(-43) : s;
      for (const needle of [s, secretPart]) {
        assert.ok(!bytes.includes(needle), `database files hold ${needle.slice(0, 12)}...`);
        assert.ok(!logs.includes(needle), `logs hold ${needle.slice(0, 12)}...`);
      }
    }
  });
});
