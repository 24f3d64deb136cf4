// The OpenAI-compatible routes under /v1. Every request first meets the gate: who is calling (a key in closed
// mode, the address in open mode) and one request from their per-minute allowance; the limit headers go on every reply.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { guardedAuth } from './abuse.js';
import { authenticateKey } from './auth.js';
import { setLimitHeaders, type Caller, type ServedModel, type ServerContext } from './context.js';
import { handleGeneration, modelNotFound, visibleModel } from './generation.js';

async function identify(ctx: ServerContext, req: FastifyRequest): Promise<Caller> {
  const d = ctx.limits;
  if (ctx.mode === 'open') {
    return { id: `addr:${req.ip}`, keyId: null, key: null, client: req.ip, limits: { rpm: d.defaultRpm, tpm: d.defaultTpm } };
  }
  const key = await authenticateKey(guardedAuth(ctx, req, 'api'), req.headers.authorization);
  return {
    id: key.id, keyId: key.id, key, client: req.ip,
    limits: { rpm: key.rpm ?? d.defaultRpm, tpm: key.tpm ?? d.defaultTpm },
  };
}

/** Generation routes take their request and tokens together, once the body is read (generation.ts). */
const GENERATION_ROUTES = new Set(['/v1/completions', '/v1/chat/completions']);

async function gate(ctx: ServerContext, req: FastifyRequest, reply: FastifyReply): Promise<void> {
  const caller = await identify(ctx, req);
  req.ajar.caller = caller;
  if (GENERATION_ROUTES.has(req.routeOptions.url ?? '')) return;
  try {
    await ctx.limiter.take(caller.id, caller.limits, { requests: 1, tokens: 0 });
  } finally {
    setLimitHeaders(ctx, reply, caller);
  }
}

/** OpenAI's model object; an adapter adds `parent`, its base's id (as vLLM lists LoRA modules). */
function modelObject(m: ServedModel): Record<string, unknown> {
  const o: Record<string, unknown> = { id: m.id, object: 'model', created: m.created, owned_by: 'ajar' };
  if (m.parent !== null) o.parent = m.parent;
  return o;
}

/** What this caller may use: everything, or its key's scope. */
function visible(ctx: ServerContext, caller: Caller): ServedModel[] {
  return [...ctx.models.keys()].map((id) => visibleModel(ctx, caller, id)).filter((m): m is ServedModel => m !== undefined);
}

export function v1Routes(ctx: ServerContext) {
  return async function register(app: FastifyInstance): Promise<void> {
    app.addHook('onRequest', async (req, reply) => gate(ctx, req, reply));

    app.get('/models', async (req) => {
      const data = visible(ctx, req.ajar.caller!).map(modelObject);
      return { object: 'list', data };
    });

    app.get<{ Params: { model: string } }>('/models/:model', async (req) => {
      const m = visibleModel(ctx, req.ajar.caller!, req.params.model);
      if (!m) throw modelNotFound(req.params.model);
      return modelObject(m);
    });

    app.post('/completions', async (req, reply) => handleGeneration(ctx, 'completion', req, reply));
    app.post('/chat/completions', async (req, reply) => handleGeneration(ctx, 'chat', req, reply));
  };
}
