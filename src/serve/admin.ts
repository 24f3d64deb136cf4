// Admin endpoints behind the admin token: keys (list, create, rotate, revoke), LoRA adapters (list, load, unload),
// usage totals and the audit log.
// Every authenticated admin call leaves an audit entry; a created or rotated key appears once, in the response.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AjarError } from '../tensor/errors.js';
import { addAdapter, removeAdapter } from './adapters.js';
import { guardedAuth } from './abuse.js';
import { authenticateAdmin } from './auth.js';
import type { ServedModel, ServerContext } from './context.js';
import { ServeError } from './errors.js';
import { createApiKey, keyView, revokeApiKey, rotateApiKey, type Actor, type KeyView, type NewKeySpec } from './keys.js';
import { cutRevokedKeys } from './lifecycle.js';
import { parseDate, type QuotaPeriod } from './time.js';

/** Library errors of key operations -> catalog errors. */
function translate(e: unknown, param?: string): never {
  if (e instanceof AjarError && !(e instanceof ServeError)) {
    if (e.code === 'key_not_found') throw new ServeError('key_not_found', e.message);
    if (e.code === 'bad_key_spec' || e.code === 'bad_date') throw new ServeError('invalid_value', e.message, { param });
    if (e.code === 'key_revoked') throw new ServeError('invalid_request', e.message);
  }
  throw e;
}

function optInt(b: Record<string, unknown>, key: string): number | null {
  const v = b[key];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) {
    throw new ServeError('invalid_value', `'${key}' must be a whole number >= 1`, { param: key });
  }
  return v;
}

function parseKeySpec(body: unknown): NewKeySpec {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new ServeError('invalid_request', 'the request body must be a JSON object');
  }
  const b = body as Record<string, unknown>;
  if (typeof b.name !== 'string') throw new ServeError('missing_parameter', "'name' is required", { param: 'name' });
  let quotaPeriod: QuotaPeriod | null = null;
  if (b.quota_period !== undefined && b.quota_period !== null) {
    if (b.quota_period !== 'day' && b.quota_period !== 'month') {
      throw new ServeError('invalid_value', "'quota_period' must be 'day' or 'month'", { param: 'quota_period' });
    }
    quotaPeriod = b.quota_period;
  }
  let expiresAt: number | null = null;
  if (b.expires_at !== undefined && b.expires_at !== null) {
    if (typeof b.expires_at !== 'string') {
      throw new ServeError('invalid_type', "'expires_at' must be a date string", { param: 'expires_at' });
    }
    try {
      expiresAt = parseDate(b.expires_at, 'expires_at', 'end');
    } catch (e) {
      translate(e, 'expires_at');
    }
  }
  let models: string[] | null = null;
  if (b.models !== undefined && b.models !== null) {
    if (!Array.isArray(b.models) || !b.models.every((m) => typeof m === 'string')) {
      throw new ServeError('invalid_type', "'models' must be an array of model ids", { param: 'models' });
    }
    models = b.models as string[];
  }
  return {
    name: b.name, rpm: optInt(b, 'rpm'), tpm: optInt(b, 'tpm'), quotaTokens: optInt(b, 'quota_tokens'),
    quotaPeriod, expiresAt, models,
  };
}

/**
 * A scope may name only models and adapters this server serves, unless the body says "allow_unknown_models": true
 * (an adapter loaded later, another replica's model).
 */
function checkScope(ctx: ServerContext, spec: NewKeySpec, body: Record<string, unknown>): void {
  const allow = body.allow_unknown_models;
  if (allow !== undefined && allow !== null && typeof allow !== 'boolean') {
    throw new ServeError('invalid_type', "'allow_unknown_models' must be true or false", { param: 'allow_unknown_models' });
  }
  if (allow === true || spec.models === null || spec.models === undefined) return;
  const unknown = spec.models.filter((m) => !ctx.models.has(m));
  if (unknown.length > 0) {
    throw new ServeError('unknown_model_in_scope',
      `'models' names ${unknown.map((m) => `'${m}'`).join(', ')}, which this server does not serve (it serves `
      + `${[...ctx.models.keys()].map((m) => `'${m}'`).join(', ')}); fix the name, or send "allow_unknown_models": true `
      + 'for a model or adapter loaded later', { param: 'models' });
  }
}

/** An adapter as /admin/adapters shows it. */
function adapterView(m: ServedModel): Record<string, unknown> {
  return { id: m.id, object: 'model', created: m.created, owned_by: 'ajar', parent: m.parent, path: m.adapter!.dir, bytes: m.adapter!.bytes };
}

function parseAdapterBody(body: unknown): { name: string; path: string; base: string | undefined } {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new ServeError('invalid_request', 'the request body must be a JSON object');
  }
  const b = body as Record<string, unknown>;
  for (const k of ['name', 'path']) {
    if (b[k] === undefined || b[k] === null) throw new ServeError('missing_parameter', `'${k}' is required`, { param: k });
    if (typeof b[k] !== 'string') throw new ServeError('invalid_type', `'${k}' must be a string`, { param: k });
  }
  if (b.base !== undefined && b.base !== null && typeof b.base !== 'string') {
    throw new ServeError('invalid_type', "'base' must be a model id", { param: 'base' });
  }
  return { name: b.name as string, path: b.path as string, base: (b.base as string | null | undefined) ?? undefined };
}

function sinceParam(req: FastifyRequest<{ Querystring: Record<string, string | undefined> }>): number | undefined {
  const s = req.query.since;
  if (s === undefined) return undefined;
  try {
    return parseDate(s, 'since');
  } catch (e) {
    return translate(e, 'since');
  }
}

/** Key changes as /admin/keys and the dashboard make them: the same checks, the same audit trail as `ajar keys`. */
export const keyActions = {
  /** Body as POST /admin/keys takes it (name, rpm, tpm, quota_tokens, quota_period, expires_at, models). */
  async create(ctx: ServerContext, body: unknown, who: Actor): Promise<KeyView & { key: string }> {
    const spec = parseKeySpec(body);
    checkScope(ctx, spec, body as Record<string, unknown>);
    try {
      const { record, key } = await createApiKey(ctx.store, spec, who, ctx.clock());
      return { ...keyView(record, ctx.clock()), key };
    } catch (e) {
      return translate(e);
    }
  },

  async rotate(ctx: ServerContext, id: string, who: Actor): Promise<KeyView & { key: string }> {
    try {
      const { record, key } = await rotateApiKey(ctx.store, id, who, ctx.clock());
      return { ...keyView(record, ctx.clock()), key };
    } catch (e) {
      return translate(e);
    }
  },

  /** Revokes, then ends the key's open streams now rather than at the next revocation check. */
  async revoke(ctx: ServerContext, id: string, who: Actor): Promise<KeyView> {
    let view;
    try {
      view = keyView(await revokeApiKey(ctx.store, id, who, ctx.clock()), ctx.clock());
    } catch (e) {
      return translate(e);
    }
    await cutRevokedKeys(ctx);
    return view;
  },

  async list(ctx: ServerContext): Promise<KeyView[]> {
    const now = ctx.clock();
    return (await ctx.store.listKeys()).map((k) => keyView(k, now));
  },
};

export function adminRoutes(ctx: ServerContext) {
  return async function register(app: FastifyInstance): Promise<void> {
    app.addHook('onRequest', async (req) => {
      await authenticateAdmin(guardedAuth(ctx, req, 'admin'), ctx.adminTokenHash, req.headers.authorization);
      req.ajar.admin = true;
    });

    app.addHook('onResponse', async (req, reply) => {
      if (!req.ajar.admin) return;
      try {
        await ctx.store.appendAudit({
          ts: ctx.clock(), actor: 'admin', action: 'admin.request', keyId: null, keyPrefix: null, remote: req.ip,
          detail: { method: req.method, path: req.url.split('?')[0], status: reply.statusCode },
        });
      } catch (e) {
        req.log.error({ code: 'audit_write_failed', message: (e as Error).message }, 'could not write an audit entry');
      }
    });

    const actor = (req: FastifyRequest): Actor => ({ actor: 'admin', remote: req.ip });

    app.get('/keys', async () => ({ object: 'list', data: await keyActions.list(ctx) }));

    app.post('/keys', async (req, reply) => {
      const created = await keyActions.create(ctx, req.body, actor(req));
      reply.code(201);
      return created;
    });

    app.post<{ Params: { id: string } }>('/keys/:id/rotate', async (req) => keyActions.rotate(ctx, req.params.id, actor(req)));

    const revoke = async (req: FastifyRequest<{ Params: { id: string } }>): Promise<unknown> =>
      keyActions.revoke(ctx, req.params.id, actor(req));
    app.post<{ Params: { id: string } }>('/keys/:id/revoke', revoke);
    app.delete<{ Params: { id: string } }>('/keys/:id', revoke);

    app.get('/adapters', async () => ({
      object: 'list', data: [...ctx.models.values()].filter((m) => m.parent !== null).map(adapterView),
    }));

    app.post('/adapters', async (req, reply) => {
      const { name, path, base } = parseAdapterBody(req.body);
      let served: ServedModel;
      try {
        served = addAdapter(ctx, name, path, base, ctx.clock());
      } catch (e) {
        if (e instanceof AjarError && !(e instanceof ServeError)) {
          throw new ServeError('invalid_value', e.message, { param: e.code === 'bad_adapter' ? 'path' : 'name' });
        }
        throw e;
      }
      await ctx.store.appendAudit({
        ts: ctx.clock(), actor: 'admin', action: 'adapter.load', keyId: null, keyPrefix: null, remote: req.ip,
        detail: { name, path, base: served.parent, bytes: served.adapter!.bytes },
      });
      reply.code(201);
      return adapterView(served);
    });

    // NOTE: a wildcard, as ids may hold '/'. Requests already admitted for the adapter keep it and finish.
    app.delete<{ Params: { '*': string } }>('/adapters/*', async (req) => {
      const name = req.params['*'];
      let served: ServedModel;
      try {
        served = removeAdapter(ctx, name);
      } catch (e) {
        if (e instanceof AjarError && e.code === 'model_not_found') throw new ServeError('model_not_found', e.message, { param: 'name' });
        if (e instanceof AjarError && !(e instanceof ServeError)) throw new ServeError('invalid_request', e.message);
        throw e;
      }
      await ctx.store.appendAudit({
        ts: ctx.clock(), actor: 'admin', action: 'adapter.unload', keyId: null, keyPrefix: null, remote: req.ip,
        detail: { name, path: served.adapter!.dir, base: served.parent },
      });
      return { id: name, object: 'model', deleted: true };
    });

    app.get<{ Querystring: Record<string, string | undefined> }>('/usage', async (req) => {
      const since = sinceParam(req);
      return { object: 'list', data: await ctx.store.usageSummary({ keyId: req.query.key, since }) };
    });

    // NOTE: any other path under /admin answers 404 only after the token checked out (the hook above), so an
    // unauthenticated caller cannot learn which admin routes exist.
    app.all('/*', async (req) => {
      throw new ServeError('not_found', `no endpoint ${req.method} ${req.url.split('?')[0]}`);
    });
    app.all('/', async (req) => {
      throw new ServeError('not_found', `no endpoint ${req.method} ${req.url.split('?')[0]}`);
    });

    app.get<{ Querystring: Record<string, string | undefined> }>('/audit', async (req) => {
      const since = sinceParam(req);
      const limit = req.query.limit === undefined ? undefined : Number(req.query.limit);
      if (limit !== undefined && !(Number.isSafeInteger(limit) && limit >= 1)) {
        throw new ServeError('invalid_value', "'limit' must be a whole number >= 1", { param: 'limit' });
      }
      return { object: 'list', data: await ctx.store.listAudit({ since, limit }) };
    });
  };
}
