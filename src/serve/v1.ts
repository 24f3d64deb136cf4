// The OpenAI-compatible routes under /v1. Every request first meets the gate: who is calling (a key in closed
// mode, the address in open mode) and one request from their per-minute allowance; the limit headers go on every reply.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { authenticateKey } from './auth.js';
import { setLimitHeaders, type Caller, type ServerContext } from './context.js';
import { ServeError } from './errors.js';
import { handleGeneration } from './generation.js';

async function identify(ctx: ServerContext, req: FastifyRequest): Promise<Caller> {
  const d = ctx.limits;
  if (ctx.mode === 'open') {
    return { id: `addr:${req.ip}`, keyId: null, key: null, client: req.ip, limits: { rpm: d.defaultRpm, tpm: d.defaultTpm } };
  }
  const key = await authenticateKey({
    store: ctx.store, now: ctx.clock(), remote: req.ip, path: req.url.split('?')[0],
    onFailure: (reason) => ctx.metrics.authFailures.inc({ target: 'api', reason }),
  }, req.headers.authorization);
  return {
    id: key.id, keyId: key.id, key, client: req.ip,
    limits: { rpm: key.rpm ?? d.defaultRpm, tpm: key.tpm ?? d.defaultTpm },
  };
}

async function gate(ctx: ServerContext, req: FastifyRequest, reply: FastifyReply): Promise<void> {
  const caller = await identify(ctx, req);
  req.ajar.caller = caller;
  try {
    ctx.limiter.takeRequest(caller.id, caller.limits);
  } finally {
    setLimitHeaders(ctx, reply, caller);
  }
}

function modelObject(id: string, created: number): Record<string, unknown> {
  return { id, object: 'model', created, owned_by: 'ajar' };
}

function visible(ctx: ServerContext, caller: Caller): string[] {
  const ids = [...ctx.models.keys()];
  const allowed = caller.key?.models;
  return allowed ? ids.filter((id) => allowed.includes(id)) : ids;
}

export function v1Routes(ctx: ServerContext) {
  return async function register(app: FastifyInstance): Promise<void> {
    app.addHook('onRequest', async (req, reply) => gate(ctx, req, reply));

    app.get('/models', async (req) => {
      const data = visible(ctx, req.ajar.caller!).map((id) => modelObject(id, ctx.models.get(id)!.created));
      return { object: 'list', data };
    });

    app.get<{ Params: { model: string } }>('/models/:model', async (req) => {
      const id = req.params.model;
      if (!visible(ctx, req.ajar.caller!).includes(id)) {
        throw new ServeError('model_not_found', `the model '${id}' does not exist on this server`, { param: 'model' });
      }
      return modelObject(id, ctx.models.get(id)!.created);
    });

    app.post('/completions', async (req, reply) => handleGeneration(ctx, 'completion', req, reply));
    app.post('/chat/completions', async (req, reply) => handleGeneration(ctx, 'chat', req, reply));
  };
}
