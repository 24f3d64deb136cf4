// The closed server against hostile clients, in process: prompts the tokenizer cannot encode, keys in URLs, probes
// of /admin and /metrics, scopes naming unknown models, authentication floods, a key revoked mid-stream, and
// connections that are slow, idle or too many (on a real loopback socket where the socket matters).
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { ModelSpec } from '../../src/serve/index.js';
import { SqliteStore } from '../../src/serve/sqlite-store.js';
import { ADMIN_TOKEN, bearer, harness, type Harness } from './helpers.js';
import { openStream, SLOW_ID, slowModel, until } from './live.js';

const code = (r: { json: () => unknown }): string => (r.json() as { error: { code: string } }).error.code;

async function listen(h: Harness): Promise<number> {
  await h.app.listen({ host: '127.0.0.1', port: 0 });
  return (h.app.server.address() as { port: number }).port;
}

function open(port: number, localAddress = '127.0.0.1'): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1', localAddress });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** Everything the peer sends until it closes, and when it closed (ms after the call). */
function readAll(s: Socket): Promise<{ text: string; ms: number }> {
  const t0 = performance.now();
  let text = '';
  s.on('data', (b) => {
    text += b.toString();
  });
  return new Promise((resolve) => s.once('close', () => resolve({ text, ms: performance.now() - t0 })));
}

describe('serve: hostile requests', () => {
  let h: Harness;
  let key: string;
  let keyId: string;
  const spec: ModelSpec = { id: SLOW_ID, ...slowModel() };

  before(async () => {
    h = await harness({ models: [spec] }, true);
    ({ key, id: keyId } = await h.key());
  });
  after(async () => h.close());

  it('a prompt with a character outside the vocabulary is a 400 naming it, not a 500', async () => {
    for (const [url, body, param] of [
      ['/v1/completions', { model: SLOW_ID, prompt: 'hello wörld', max_tokens: 2 }, 'prompt'],
      ['/v1/chat/completions', { model: SLOW_ID, messages: [{ role: 'user', content: 'tab\there' }], max_tokens: 2 }, 'messages'],
    ] as const) {
      const r = await h.app.inject({ method: 'POST', url, headers: bearer(key), payload: body });
      assert.equal(r.statusCode, 400, r.body);
      const e = r.json<{ error: { code: string; param: string; message: string } }>().error;
      assert.deepEqual([e.code, e.param], ['invalid_value', param]);
      assert.match(e.message, param === 'prompt' ? /"ö" \(U\+00F6\)/ : /U\+0009/);
    }
    assert.ok(!h.logs.some((l) => l.includes('"level":50')), 'no error-level log line');
  });

  it('refuses a key in the query string without writing it (or the query) to the log', async () => {
    for (const q of [`api_key=${key}`, `key=${key}`, `token=${key}`, 'access_token=secret-value-1234']) {
      const r = await h.app.inject({ method: 'GET', url: `/v1/models?${q}` });
      assert.deepEqual([r.statusCode, code(r)], [400, 'api_key_in_url'], q);
    }
    const logs = h.logs.join('');
    assert.ok(!logs.includes(key) && !logs.includes('secret-value-1234'), 'no credential in the log');
    assert.match(logs, /\/v1\/models\?\[redacted\]/);
  });

  it('answers 401 for any /admin path without the token, and 404 for unknown ones with it', async () => {
    for (const url of ['/admin/keys', '/admin/nope', '/admin/keys/x/y/z', '/admin/', '/admin/adapters/a/b']) {
      const r = await h.app.inject({ method: 'GET', url });
      assert.deepEqual([r.statusCode, code(r)], [401, 'invalid_admin_token'], url);
    }
    const r = await h.app.inject({ method: 'GET', url: '/admin/nope', headers: bearer(ADMIN_TOKEN) });
    assert.deepEqual([r.statusCode, code(r)], [404, 'not_found']);
  });

  it('refuses key scopes naming models it does not serve, unless told they come later', async () => {
    const bad = await h.app.inject({ method: 'POST', url: '/admin/keys', headers: bearer(ADMIN_TOKEN), payload: { name: 'x', models: [SLOW_ID, 'gtp-4'] } });
    assert.equal(bad.statusCode, 400);
    assert.deepEqual([code(bad), bad.json<{ error: { param: string } }>().error.param], ['unknown_model_in_scope', 'models']);
    assert.match(bad.body, /'gtp-4'/);
    const later = await h.app.inject({
      method: 'POST', url: '/admin/keys', headers: bearer(ADMIN_TOKEN),
      payload: { name: 'x', models: ['support-lora'], allow_unknown_models: true },
    });
    assert.equal(later.statusCode, 201, later.body);
  });

  it('serves /metrics to loopback only, and labels an unknown key id like a wrong secret', async () => {
    const far = await h.app.inject({ method: 'GET', url: '/metrics', remoteAddress: '203.0.113.9' });
    assert.deepEqual([far.statusCode, code(far)], [404, 'not_found']);
    const unknownId = 'ajar_sk_0123456789abcdef_' + 'x'.repeat(43);
    const wrongSecret = `${key.slice(0, -4)}AAAA`;
    for (const k of [unknownId, wrongSecret]) {
      const r = await h.app.inject({ method: 'GET', url: '/v1/models', headers: bearer(k), remoteAddress: '198.51.100.1' });
      assert.deepEqual([r.statusCode, code(r)], [401, 'invalid_api_key']);
    }
    const m = await h.app.inject({ method: 'GET', url: '/metrics' });
    assert.equal(m.statusCode, 200);
    const reasons = [...m.body.matchAll(/ajar_auth_failures_total\{target="api",reason="([^"]+)"\}/g)].map((x) => x[1]);
    assert.ok(reasons.includes('invalid'));
    for (const leak of ['unknown_key', 'wrong_secret', 'malformed']) assert.ok(!reasons.includes(leak), leak);
  });

  it('limits authentication failures per address (429 after a burst) and batches their audit entries', async () => {
    const addr = '192.0.2.77';
    const bad = bearer('ajar_sk_0123456789abcdef_' + 'y'.repeat(43));
    const statuses: number[] = [];
    let retry: string | undefined;
    for (let i = 0; i < 60; i++) {
      const r = await h.app.inject({ method: 'GET', url: '/v1/models', headers: bad, remoteAddress: addr });
      statuses.push(r.statusCode);
      if (r.statusCode === 429) {
        assert.equal(code(r), 'too_many_auth_failures');
        retry = r.headers['retry-after'] as string;
      }
    }
    assert.equal(statuses.filter((s) => s === 401).length, 30, 'a burst of 30 failures is answered 401');
    assert.equal(statuses.filter((s) => s === 429).length, 30);
    assert.ok(Number(retry) >= 1);
    // Another address is not affected, nor is a valid key from it.
    const other = await h.app.inject({ method: 'GET', url: '/v1/models', headers: bearer(key), remoteAddress: '192.0.2.78' });
    assert.equal(other.statusCode, 200);
    await h.app.ajarControl.flushAudit();
    const entries = (await h.store.listAudit({})).filter((e) => e.remote === addr);
    assert.ok(entries.length <= 12, `60 failures in ${entries.length} audit entries`);
    const total = entries.reduce((n, e) => n + ((e.detail?.count as number | undefined) ?? 1), 0);
    assert.equal(total, 60, 'every failure is counted');
  });

  it('cuts a stream within a second of its key being revoked by another process, and records what it delivered', async () => {
    const port = await listen(h);
    const s = await openStream(`http://127.0.0.1:${port}`, key, 'Hello', 1000);
    await until(() => s.tokens() >= 5, 20_000, 'five tokens');
    // As `ajar keys revoke` would: another connection to the same database file.
    const other = SqliteStore.open(h.dbPath);
    await other.revokeKey(keyId, Date.now());
    await other.close();
    const t0 = performance.now();
    const body = await s.done;
    const seconds = (performance.now() - t0) / 1000;
    assert.ok(seconds < 1, `the stream ended ${seconds.toFixed(2)} s after the revocation`);
    assert.match(body, /"code":"key_revoked"/);
    const rec = (await h.store.listUsage({})).find((u) => u.requestId === s.requestId);
    assert.deepEqual([rec?.completionTokens, rec?.finishReason, rec?.status], [s.tokens(), 'revoked', 401]);
  });
});

describe('serve: connections', () => {
  let h: Harness;
  let port: number;
  let key: string;

  before(async () => {
    h = await harness({
      limits: {
        headersTimeoutMs: 1_000, receiveTimeoutMs: 1_500, keepAliveTimeoutMs: 500, maxConnections: 20,
        maxConnectionsPerAddress: 8,
      },
    });
    port = await listen(h);
    ({ key } = await h.key());
  });
  after(async () => h.close());

  it('a body sent a byte at a time is cut at the receive timeout with an OpenAI error body', async () => {
    const s = await open(port);
    const got = readAll(s);
    s.write(`POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key}\r\n`
      + 'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n');
    const drip = setInterval(() => s.writable && s.write(' '), 200);
    const { text, ms } = await got;
    clearInterval(drip);
    assert.match(text, /^HTTP\/1\.1 408 /);
    const body = JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) as { error: { code: string; type: string } };
    assert.deepEqual(body.error, { ...body.error, code: 'client_timeout', type: 'invalid_request_error' });
    assert.ok(ms >= 1_400 && ms < 1_500 + 1_300, `cut after ${ms.toFixed(0)} ms (receive timeout 1500 ms)`);
  });

  it('closes a connection that sends nothing after the headers timeout, and an idle keep-alive one', async () => {
    const silent = await open(port);
    const { ms } = await readAll(silent);
    assert.ok(ms >= 900 && ms < 1_000 + 1_300, `silent connection closed after ${ms.toFixed(0)} ms (headers timeout 1000 ms)`);
    const kept = await open(port);
    const got = readAll(kept);
    kept.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
    const r = await got;
    assert.match(r.text, /^HTTP\/1\.1 200 /);
    // NOTE: Node closes an idle keep-alive connection at the keep-alive timeout or, at the latest, when the next
    // request's headers are overdue (both checked each second).
    assert.ok(r.ms < 1_000 + 1_300, `idle keep-alive closed after ${r.ms.toFixed(0)} ms (keep-alive 500 ms)`);
  });

  it('refuses connections past the per-address cap with 429, and sheds the oldest idle one at the server cap', async () => {
    const mine = await Promise.all(Array.from({ length: 8 }, () => open(port, '127.0.0.1')));
    const extra = await open(port, '127.0.0.1');
    const refused = await readAll(extra);
    assert.match(refused.text, /^HTTP\/1\.1 429 /);
    assert.match(refused.text, /"code":"too_many_connections"/);
    // Other addresses fill the server (20); the next connection closes the oldest idle one instead of waiting.
    const others = await Promise.all(Array.from({ length: 12 }, (_, i) => open(port, `127.0.0.${2 + (i % 6)}`)));
    const firstClosed = readAll(mine[0]);
    const late = await open(port, '127.0.0.9');
    const got = readAll(late);
    late.write('GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.match((await got).text, /^HTTP\/1\.1 200 /);
    assert.ok((await firstClosed).ms < 1_000, 'the oldest idle connection made room');
    for (const s of [...mine, ...others]) s.destroy();
  });
});

describe('serve: readiness', () => {
  it('/ready is 200 while the store answers, 503 when it does not or the server is closing', async () => {
    const h = await harness();
    try {
      const ok = await h.app.inject({ method: 'GET', url: '/ready' });
      assert.deepEqual([ok.statusCode, ok.json<{ status: string }>().status], [200, 'ready']);
      await h.store.close();
      const down = await h.app.inject({ method: 'GET', url: '/ready' });
      assert.equal(down.statusCode, 503);
      assert.match(down.json<{ checks: { store: string } }>().checks.store, /^unreachable/);
      assert.equal((await h.app.inject({ method: 'GET', url: '/health' })).statusCode, 200, 'still alive');
    } finally {
      await h.close();
    }
  });
});
