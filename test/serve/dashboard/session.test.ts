// The dashboard's session and CSRF rules without a browser: the session store, cookies, the origin check, and the
// /ui routes in-process (app.inject): what is reachable signed out, sign-in and its audit trail, CSRF refusals.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  clearedCookie, CONTENT_SECURITY_POLICY, csrfMatches, parseCookies, sameOrigin, SESSION_COOKIE, sessionCookie, SessionStore,
} from '../../../src/serve/dashboard/index.js';
import { ADMIN_TOKEN, harness, type Harness } from '../helpers.js';

describe('dashboard sessions (no browser)', () => {
  it('gives each session a fresh random 128-bit id and its own CSRF token', () => {
    const s = new SessionStore(() => 0);
    const a = s.create();
    const b = s.create();
    assert.equal(Buffer.from(a.id, 'base64url').length, 16);
    assert.notEqual(a.id, b.id);
    assert.notEqual(a.session.csrf, b.session.csrf);
    assert.equal(s.get(a.id), a.session);
    assert.equal(s.get('x'.repeat(22)), undefined);
    assert.equal(s.get(undefined), undefined);
  });

  it('ends a session after its idle time, after its maximum age, and on destroy', () => {
    const now = { t: 0 };
    const s = new SessionStore(() => now.t, { idleMs: 1000, maxAgeMs: 2500, maxSessions: 10 });
    const { id } = s.create();
    now.t = 900;
    assert.ok(s.get(id)); // used: idle time restarts
    now.t = 1800;
    assert.ok(s.get(id));
    now.t = 2600; // past the maximum age although used 800 ms ago
    assert.equal(s.get(id), undefined);
    const second = s.create();
    now.t = 2600 + 1000; // idle for exactly idleMs
    assert.equal(s.get(second.id), undefined);
    const third = s.create();
    s.destroy(third.id);
    assert.equal(s.get(third.id), undefined);
  });

  it('keeps at most maxSessions, dropping the oldest', () => {
    const s = new SessionStore(() => 0, { idleMs: 1000, maxAgeMs: 1000, maxSessions: 2 });
    const a = s.create();
    s.create();
    s.create();
    assert.equal(s.size, 2);
    assert.equal(s.get(a.id), undefined);
  });

  it('matches the CSRF token exactly', () => {
    const { session } = new SessionStore(() => 0).create();
    assert.ok(csrfMatches(session, session.csrf));
    assert.ok(!csrfMatches(session, `${session.csrf}x`));
    assert.ok(!csrfMatches(session, ''));
    assert.ok(!csrfMatches(session, undefined));
    assert.ok(!csrfMatches(session, ['a']));
  });

  it('writes the cookie HttpOnly, SameSite=Strict, scoped to /ui, short-lived; Secure over HTTPS', () => {
    const c = sessionCookie('abc', 8 * 3600_000, false);
    assert.equal(c, `${SESSION_COOKIE}=abc; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=28800`);
    assert.match(sessionCookie('abc', 1000, true), /; Secure$/);
    assert.match(clearedCookie(false), /Max-Age=0/);
    assert.deepEqual(parseCookies('a=1; ajar_session=xyz; a=2'), { a: '1', ajar_session: 'xyz' });
    assert.deepEqual(parseCookies(undefined), {});
  });

  it('refuses state-changing requests from another site or origin', () => {
    const host = '127.0.0.1:8090';
    assert.ok(sameOrigin({ host, origin: 'http://127.0.0.1:8090', 'sec-fetch-site': 'same-origin' }, 'http'));
    assert.ok(sameOrigin({ host }, 'http')); // curl: no Origin, no Sec-Fetch-Site (the CSRF token still applies)
    assert.ok(!sameOrigin({ host, 'sec-fetch-site': 'cross-site' }, 'http'));
    // NOTE: another port of the same host is same-site (SameSite=Strict sends the cookie), and refused here.
    assert.ok(!sameOrigin({ host, origin: 'http://127.0.0.1:9999', 'sec-fetch-site': 'same-site' }, 'http'));
    assert.ok(!sameOrigin({ host, origin: 'http://127.0.0.1:9999' }, 'http'));
    assert.ok(!sameOrigin({ host, origin: 'https://127.0.0.1:8090' }, 'http'));
    assert.ok(!sameOrigin({ origin: 'http://127.0.0.1:8090' }, 'http'));
  });
});

describe('dashboard routes in-process', () => {
  let h: Harness;
  const ORIGIN = { host: 'localhost:80', origin: 'http://localhost:80' };

  before(async () => {
    h = await harness({ clock: Date.now, dashboard: { sources: {} } });
  });
  after(async () => h.close());

  async function signIn(token = ADMIN_TOKEN, cookie?: string): Promise<{ status: number; cookie?: string; setCookie?: string }> {
    const res = await h.app.inject({
      method: 'POST', url: '/ui/login', headers: { ...ORIGIN, 'content-type': 'application/x-www-form-urlencoded', ...(cookie ? { cookie } : {}) },
      payload: new URLSearchParams({ token }).toString(),
    });
    const set = res.headers['set-cookie'] as string | undefined;
    return { status: res.statusCode, setCookie: set, cookie: set?.split(';')[0] };
  }

  async function csrfOf(cookie: string): Promise<string> {
    const page = await h.app.inject({ method: 'GET', url: '/ui/keys', headers: { cookie } });
    assert.equal(page.statusCode, 200);
    return /name="csrf-token" content="([^"]+)"/.exec(page.body)![1];
  }

  it('shows only the sign-in page without a session', async () => {
    const login = await h.app.inject({ method: 'GET', url: '/ui/login' });
    assert.equal(login.statusCode, 200);
    assert.match(login.body, /name="token"/);
    assert.equal(login.headers['content-security-policy'], CONTENT_SECURITY_POLICY);
    assert.doesNotMatch(login.body, /<script(?![^>]*\bsrc=)/); // no inline script
    for (const url of ['/ui/runs', '/ui/keys', '/ui/plan', '/ui/']) {
      const r = await h.app.inject({ method: 'GET', url });
      assert.equal(r.statusCode, 303, url);
      assert.equal(r.headers.location, '/ui/login');
    }
    for (const url of ['/ui/api/keys', '/ui/api/usage', '/ui/api/runs', '/ui/static/js/keys.js']) {
      const r = await h.app.inject({ method: 'GET', url });
      assert.equal(r.statusCode, 401, url);
      assert.equal(r.json().error.code, 'not_signed_in');
    }
    const css = await h.app.inject({ method: 'GET', url: '/ui/static/style.css' });
    assert.equal(css.statusCode, 200);
    const post = await h.app.inject({ method: 'POST', url: '/ui/api/keys', headers: ORIGIN, payload: { name: 'x' } });
    assert.equal(post.statusCode, 401);
    assert.equal((await h.store.listKeys()).length, 0);
  });

  it('audits a failed sign-in and answers 401 with the form again', async () => {
    const r = await signIn('not-the-admin-token-at-all');
    assert.equal(r.status, 401);
    assert.equal(r.setCookie, undefined);
    await h.app.inject({ method: 'GET', url: '/health' });
    await new Promise((res) => setTimeout(res, 1200)); // the audit buffer writes once a second
    const failures = (await h.store.listAudit({})).filter((a) => a.action === 'auth.failure');
    assert.equal(failures.length, 1);
    assert.deepEqual(failures[0].detail, { reason: 'wrong_token', target: 'dashboard', path: '/ui/login' });
    assert.ok(!JSON.stringify(failures).includes('not-the-admin-token'));
  });

  it('signs in with the admin token: a new session id each time, the old one ended', async () => {
    const first = await signIn();
    assert.equal(first.status, 303);
    assert.match(first.setCookie!, /^ajar_session=[A-Za-z0-9_-]{22}; Path=\/ui; HttpOnly; SameSite=Strict; Max-Age=\d+$/);
    const second = await signIn(ADMIN_TOKEN, first.cookie);
    assert.notEqual(second.cookie, first.cookie);
    const old = await h.app.inject({ method: 'GET', url: '/ui/api/keys', headers: { cookie: first.cookie! } });
    assert.equal(old.statusCode, 401);
    const now = await h.app.inject({ method: 'GET', url: '/ui/api/keys', headers: { cookie: second.cookie! } });
    assert.equal(now.statusCode, 200);
  });

  it('needs the CSRF token and our own origin on every state-changing request', async () => {
    const { cookie } = await signIn();
    const csrf = await csrfOf(cookie!);
    const noToken = await h.app.inject({ method: 'POST', url: '/ui/api/keys', headers: { ...ORIGIN, cookie: cookie! }, payload: { name: 'a' } });
    assert.equal(noToken.statusCode, 403);
    assert.equal(noToken.json().error.code, 'csrf_rejected');
    const wrong = await h.app.inject({ method: 'POST', url: '/ui/api/keys', headers: { ...ORIGIN, cookie: cookie!, 'x-csrf-token': `${csrf}x` }, payload: { name: 'a' } });
    assert.equal(wrong.statusCode, 403);
    const crossSite = await h.app.inject({
      method: 'POST', url: '/ui/api/keys', payload: { name: 'a' },
      headers: { host: 'localhost:80', origin: 'http://evil.example', 'sec-fetch-site': 'cross-site', cookie: cookie!, 'x-csrf-token': csrf },
    });
    assert.equal(crossSite.statusCode, 403);
    assert.equal((await h.store.listKeys()).length, 0);
    const ok = await h.app.inject({ method: 'POST', url: '/ui/api/keys', headers: { ...ORIGIN, cookie: cookie!, 'x-csrf-token': csrf }, payload: { name: 'a' } });
    assert.equal(ok.statusCode, 201);
    assert.match(ok.json().key, /^ajar_sk_/);
    const audit = (await h.store.listAudit({})).filter((a) => a.action === 'key.create');
    assert.equal(audit.at(-1)!.actor, 'dashboard');
  });

  it('signs out: the session ends and the cookie is cleared', async () => {
    const { cookie } = await signIn();
    const csrf = await csrfOf(cookie!);
    const out = await h.app.inject({
      method: 'POST', url: '/ui/logout', headers: { ...ORIGIN, cookie: cookie!, 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ csrf }).toString(),
    });
    assert.equal(out.statusCode, 303);
    assert.match(out.headers['set-cookie'] as string, /Max-Age=0/);
    const after = await h.app.inject({ method: 'GET', url: '/ui/api/keys', headers: { cookie: cookie! } });
    assert.equal(after.statusCode, 401);
  });
});
