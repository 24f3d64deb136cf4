// The dashboard's /ui routes on the server's fastify app: sign-in and sessions, the pages (HTML shells whose ES
// modules from web/ fetch JSON from /ui/api), and the JSON API behind them. Without a session only the sign-in page
// answers; every state-changing request must come from our own origin and carry the session's CSRF token.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AjarError } from '../../tensor/errors.js';
import { guardedAuth } from '../abuse.js';
import { keyActions } from '../admin.js';
import { authenticateAdminToken } from '../auth.js';
import type { ServerContext } from '../context.js';
import { ServeError } from '../errors.js';
import { handleGeneration } from '../generation.js';
import type { Actor } from '../keys.js';
import { formatUsage } from '../report.js';
import { parseDate } from '../time.js';
import { StaticFiles } from './assets.js';
import { loginPage, PAGES, shellPage, type PageName } from './pages.js';
import {
  clearedCookie, CSRF_FIELD, CSRF_HEADER, csrfMatches, DEFAULT_SESSION_LIMITS, parseCookies, sameOrigin,
  SESSION_COOKIE, sessionCookie, SessionStore, type Session,
} from './session.js';
import type { DashboardOptions } from './types.js';

/**
 * NOTE: no inline script or style anywhere (the pages load their modules and stylesheets as files); images may be
 * data: URLs (the plan's SVG charts); fetch goes only to this origin; no page may frame the dashboard.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:", "connect-src 'self'",
  "form-action 'self'", "frame-ancestors 'none'", "base-uri 'none'",
].join('; ');

const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'same-origin',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

/** Paths answered without a session: the sign-in page and the one stylesheet it needs. */
const PUBLIC_PATHS = new Set(['/ui/login', '/ui/static/style.css']);

interface UiState {
  sid: string | undefined;
  session: Session | undefined;
}

type Query = { Querystring: Record<string, string | undefined> };

function isSafeMethod(method: string): boolean {
  return method === 'GET' || method === 'HEAD';
}

function sourceError(e: unknown): never {
  if (e instanceof AjarError && !(e instanceof ServeError)) {
    if (e.code === 'not_found') throw new ServeError('not_found', e.message);
    throw new ServeError('invalid_value', e.message);
  }
  throw e;
}

function dateParam(value: string | undefined, what: string, edge: 'start' | 'end'): number | undefined {
  if (value === undefined || value === '') return undefined;
  try {
    return parseDate(value, what, edge);
  } catch (e) {
    throw new ServeError('invalid_value', (e as Error).message, { param: what });
  }
}

export function dashboardRoutes(ctx: ServerContext, opts: DashboardOptions) {
  const sessions = new SessionStore(ctx.clock, { ...DEFAULT_SESSION_LIMITS, ...opts.sessions });
  const files = new StaticFiles();
  const state = new WeakMap<FastifyRequest, UiState>();
  const ui = (req: FastifyRequest): UiState => state.get(req) ?? { sid: undefined, session: undefined };
  const secure = (req: FastifyRequest): boolean => req.protocol === 'https';
  const actor = (req: FastifyRequest): Actor => ({ actor: 'dashboard', remote: req.ip });

  return async function register(app: FastifyInstance): Promise<void> {
    // The sign-in and sign-out forms post url-encoded fields; everything else posts JSON.
    app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 16 * 1024 },
      (_req, body, done) => done(null, Object.fromEntries(new URLSearchParams(body as string))));

    app.addHook('onRequest', async (req, reply) => {
      reply.headers(SECURITY_HEADERS);
      const path = req.url.split('?')[0];
      const sid = parseCookies(req.headers.cookie)[SESSION_COOKIE];
      const session = sessions.get(sid);
      state.set(req, { sid, session });
      if (!isSafeMethod(req.method) && !sameOrigin(req.headers as Record<string, string>, req.protocol)) {
        throw new ServeError('csrf_rejected', 'refused: this request came from another site or origin');
      }
      if (session !== undefined || PUBLIC_PATHS.has(path)) return;
      if (isSafeMethod(req.method) && !path.startsWith('/ui/api/') && !path.startsWith('/ui/static/')) {
        return reply.redirect('/ui/login', 303);
      }
      throw new ServeError('not_signed_in');
    });

    // The CSRF token, once the body is read (a form sends it as a field, fetch as a header).
    app.addHook('preHandler', async (req) => {
      if (isSafeMethod(req.method) || req.url.split('?')[0] === '/ui/login') return;
      const body = req.body as Record<string, unknown> | undefined;
      const presented = req.headers[CSRF_HEADER] ?? (body !== null && typeof body === 'object' ? body[CSRF_FIELD] : undefined);
      if (!csrfMatches(ui(req).session!, presented)) {
        throw new ServeError('csrf_rejected', 'refused: the CSRF token is missing or wrong; reload the page');
      }
    });

    app.get('/', async (_req, reply) => reply.redirect('/ui/runs', 303));

    app.get<Query>('/login', async (req, reply) => {
      if (ui(req).session !== undefined) return reply.redirect('/ui/runs', 303);
      return html(reply, 200, loginPage(req.query.signed_out === '1' ? 'You are signed out.' : undefined));
    });

    app.post('/login', async (req, reply) => {
      const body = req.body as Record<string, unknown> | undefined;
      const token = body !== null && typeof body === 'object' && typeof body.token === 'string' ? body.token.trim() : undefined;
      try {
        await authenticateAdminToken(guardedAuth(ctx, req, 'dashboard'), ctx.adminTokenHash, token, 'dashboard');
      } catch (e) {
        if (!(e instanceof ServeError)) throw e;
        const message = e.code === 'invalid_admin_token' ? 'That is not the admin token.'
          : e.code === 'admin_disabled' ? 'This server has no admin token: start it with --admin-token-file.' : e.message;
        if (e.retryAfter !== null) reply.header('retry-after', String(e.retryAfter));
        return html(reply, e.status, loginPage(undefined, message));
      }
      // NOTE: a new id at every sign-in (and the old session ended), so an id planted before sign-in is worthless.
      sessions.destroy(ui(req).sid);
      const { id } = sessions.create();
      reply.header('set-cookie', sessionCookie(id, sessions.limits.maxAgeMs, secure(req)));
      return reply.redirect('/ui/runs', 303);
    });

    app.post('/logout', async (req, reply) => {
      sessions.destroy(ui(req).sid);
      reply.header('set-cookie', clearedCookie(secure(req)));
      return reply.redirect('/ui/login?signed_out=1', 303);
    });

    for (const name of Object.keys(PAGES) as PageName[]) {
      app.get(`/${name}`, async (req, reply) => html(reply, 200, shellPage(name, ui(req).session!.csrf)));
    }

    app.get<{ Params: { '*': string } }>('/static/*', async (req, reply) => {
      const file = files.get(req.params['*']);
      if (file === undefined) throw new ServeError('not_found', `no file ${req.url.split('?')[0]}`);
      reply.header('cache-control', 'no-cache');
      return reply.type(file.type).send(file.bytes);
    });

    // --- JSON API --------------------------------------------------------------------------------------------

    app.get('/api/info', async () => ({
      runs: opts.labels?.runs ?? null, models: opts.labels?.models ?? null, plan: opts.sources.plan !== undefined,
      served: [...ctx.models.values()].map((m) => ({ id: m.id, parent: m.parent })),
      store: ctx.store.kind,
    }));

    app.get('/api/runs', async () => ({ object: 'list', data: opts.sources.runs?.list() ?? [] }));

    app.get<Query>('/api/runs/metrics', async (req) => {
      const runs = opts.sources.runs;
      if (runs === undefined) throw new ServeError('not_found', 'no runs folder: start the dashboard with --runs DIR');
      const offset = req.query.offset === undefined ? 0 : Number(req.query.offset);
      if (!Number.isSafeInteger(offset) || offset < 0) {
        throw new ServeError('invalid_value', "'offset' must be a whole number >= 0", { param: 'offset' });
      }
      try {
        return runs.read(req.query.run ?? '', offset);
      } catch (e) {
        return sourceError(e);
      }
    });

    app.get('/api/models', async () => {
      try {
        return { object: 'list', data: opts.sources.models?.() ?? [] };
      } catch (e) {
        return sourceError(e);
      }
    });

    app.get('/api/keys', async () => ({ object: 'list', data: await keyActions.list(ctx) }));
    app.post('/api/keys', async (req, reply) => {
      const created = await keyActions.create(ctx, withoutCsrf(req.body), actor(req));
      reply.code(201);
      return created;
    });
    app.post<{ Params: { id: string } }>('/api/keys/:id/rotate', async (req) => keyActions.rotate(ctx, req.params.id, actor(req)));
    app.post<{ Params: { id: string } }>('/api/keys/:id/revoke', async (req) => keyActions.revoke(ctx, req.params.id, actor(req)));

    app.get<Query>('/api/audit', async (req) => {
      const limit = Math.min(500, Math.max(1, Number(req.query.limit ?? 50) || 50));
      const entries = await ctx.store.listAudit({ since: ctx.clock() - 30 * 86_400_000 });
      return { object: 'list', data: entries.slice(-limit).reverse() };
    });

    const usageRows = async (req: FastifyRequest<Query>) => {
      const since = dateParam(req.query.from, 'from', 'start');
      const until = dateParam(req.query.to, 'to', 'end');
      const key = req.query.key === undefined || req.query.key === '' ? undefined : req.query.key;
      const rows = await ctx.store.usageSummary({ keyId: key, since });
      return until === undefined ? rows : rows.filter((r) => Date.parse(`${r.day}T00:00:00Z`) <= until);
    };
    app.get<Query>('/api/usage', async (req) => ({ object: 'list', data: await usageRows(req) }));
    app.get<Query>('/api/usage.csv', async (req, reply) => {
      reply.header('content-disposition', 'attachment; filename="ajar-usage.csv"');
      return reply.type('text/csv; charset=utf-8').send(`${formatUsage(await usageRows(req), 'csv')}\r\n`);
    });

    app.post('/api/plan', async (req) => {
      const plan = opts.sources.plan;
      if (plan === undefined) throw new ServeError('not_found', 'the plan is not available on this server');
      const b = (req.body ?? {}) as Record<string, unknown>;
      if (typeof b.scenario !== 'string') throw new ServeError('missing_parameter', "'scenario' (the YAML text) is required", { param: 'scenario' });
      const overrides: Record<string, number> = {};
      if (b.overrides !== undefined && b.overrides !== null) {
        if (typeof b.overrides !== 'object' || Array.isArray(b.overrides)) {
          throw new ServeError('invalid_type', "'overrides' must map input paths to numbers", { param: 'overrides' });
        }
        for (const [k, v] of Object.entries(b.overrides)) {
          if (typeof v !== 'number' || !Number.isFinite(v)) throw new ServeError('invalid_value', `'${k}' must be a number`, { param: `overrides.${k}` });
          overrides[k] = v;
        }
      }
      const fileName = typeof b.file_name === 'string' && b.file_name !== '' ? b.file_name.slice(0, 200) : 'scenario.yaml';
      try {
        return plan({ scenario: b.scenario, fileName, overrides });
      } catch (e) {
        return sourceError(e);
      }
    });

    // The playground: the OpenAI-compatible chat route's own handler, called by the signed-in admin; its usage is
    // recorded under the client 'dashboard' (no key), so the usage page shows what the playground cost.
    app.post('/api/chat', async (req, reply) => {
      if (ctx.models.size === 0) {
        throw new ServeError('model_not_found', 'this dashboard serves no model: run ajar serve --model DIR --dashboard to use the playground');
      }
      req.ajar.caller = {
        id: 'dashboard', keyId: null, key: null, client: 'dashboard',
        limits: { rpm: ctx.limits.defaultRpm, tpm: ctx.limits.defaultTpm },
      };
      req.body = withoutCsrf(req.body);
      return handleGeneration(ctx, 'chat', req, reply);
    });
  };
}

function withoutCsrf(body: unknown): unknown {
  if (body === null || typeof body !== 'object' || Array.isArray(body) || !(CSRF_FIELD in body)) return body;
  const { [CSRF_FIELD]: _csrf, ...rest } = body as Record<string, unknown>;
  return rest;
}

function html(reply: FastifyReply, status: number, body: string): FastifyReply {
  reply.header('cache-control', 'no-store');
  return reply.code(status).type('text/html; charset=utf-8').send(body);
}
