// buildServer: the whole HTTP app as a fastify instance, built without listening (tests use app.inject; the CLI
// calls listen). Models arrive loaded, so a model decrypted in memory is served exactly like one from a folder.
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { AjarError } from '../tensor/errors.js';
import type { LoraSet } from '../models/adapter.js';
import type { CausalLM } from '../models/types.js';
import { answerLockedOut, AuditBuffer, AuthFailureLimiter } from './abuse.js';
import { addAdapter, MODEL_ID_SHAPE, type AdapterHost } from './adapters.js';
import { adminRoutes } from './admin.js';
import { adminTokenHash, bearerMatches } from './auth.js';
import { dashboardRoutes, type DashboardOptions } from './dashboard/index.js';
import { ChatFormat } from './chat.js';
import {
  clientErrorHandler, ConnectionGuard, DEFAULT_CONNECTION_LIMITS, TIMEOUT_CHECK_INTERVAL_MS,
} from './connections.js';
import {
  finalizeRequest, newRequestState, type RequestState, type ResolvedLimits, type ServedModel, type ServerContext,
  type ServeMode, type ServeTokenizer,
} from './context.js';
import { ERROR_CATALOG, errorBody, ServeError, toServeError } from './errors.js';
import { RateLimiter, type Limiter } from './limits.js';
import { PROMETHEUS_CONTENT_TYPE, ServerMetrics } from './metrics.js';
import { journalOwner } from './journal.js';
import { KEY_CACHE_MS, KeyCache } from './key-cache.js';
import { cutRevokedKeys, ServerControl, watchRevocations } from './lifecycle.js';
import { GenerationQueue } from './queue.js';
import { timedLimiter, timedStore } from './timed.js';
import type { Store } from './store.js';
import { v1Routes } from './v1.js';

export interface ModelSpec {
  /** The name clients pass as `model`. */
  id: string;
  model: CausalLM;
  tokenizer: ServeTokenizer;
  /** Jinja chat template text; without one, chat uses the plain fallback (docs/serving.md). */
  chatTemplate?: string;
}

/** A PEFT LoRA adapter folder served as the model `id` over a base (default: the only base). */
export interface AdapterSpec {
  id: string;
  /** The PEFT adapter folder; with `attach`, only a label (e.g. the encrypted bundle's folder). */
  dir: string;
  base?: string;
  /** Loads the adapter onto the base another way (an encrypted hybrid bundle, decrypted in memory). */
  attach?: (model: CausalLM) => LoraSet;
}

export const DEFAULT_LIMITS: ResolvedLimits = {
  defaultRpm: 120,
  defaultTpm: 100_000,
  queueDepth: 16,
  requestTimeoutMs: 120_000,
  bodyLimit: 1 << 20, // 1 MiB
  ...DEFAULT_CONNECTION_LIMITS,
};

export interface ServerOptions {
  models: ModelSpec[];
  /** LoRA adapters served beside their base, which stays one copy in memory. */
  adapters?: AdapterSpec[];
  store: Store;
  /** closed (default): an API key on every /v1 request. open: no keys; limits and metering per client address. */
  mode?: ServeMode;
  limits?: Partial<ResolvedLimits>;
  /** Enables /admin/*. Kept only as a SHA-256 digest. */
  adminToken?: string;
  /** fastify's logger option (pino options, or false). Default: off. */
  logger?: FastifyServerOptions['logger'];
  /** Trust X-Forwarded-For for the client address (behind a reverse proxy). Default false. */
  trustProxy?: FastifyServerOptions['trustProxy'];
  /** Epoch ms; tests move it to cross minutes and expiry dates. */
  clock?: () => number;
  /** This process's name in the usage journal (default: host, pid and a random part; journal.ts). */
  journalOwner?: string;
  /**
   * Who may read GET /metrics on this app: 'loopback' (default: only clients on this machine), 'token' (a bearer
   * `metricsToken`, from anywhere), or 'off' (not served here: the CLI's --metrics-listen serves it on its own port).
   */
  metricsAccess?: 'loopback' | 'token' | 'off';
  metricsToken?: string;
  /** Requests and tokens per minute: shared by replicas (RedisLimiter), else this process's memory. */
  limiter?: Limiter;
  /** Mounts the web dashboard at /ui (needs adminToken: signing in takes it). */
  dashboard?: DashboardOptions;
  /** Serve /v1 and /admin (default true). `ajar dashboard` serves only /ui (with no model), /health and /ready. */
  api?: boolean;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Graceful shutdown and the connection guard of an ajar server (lifecycle.ts). */
    ajarControl: ServerControl;
  }
}

function checkLimits(l: ResolvedLimits): void {
  const intAtLeast = (v: number, min: number, what: string): void => {
    if (!Number.isSafeInteger(v) || v < min) throw new AjarError('bad_flag', `${what} must be a whole number >= ${min}, got ${v}`);
  };
  intAtLeast(l.defaultRpm, 1, 'the default requests per minute');
  intAtLeast(l.defaultTpm, 1, 'the default tokens per minute');
  intAtLeast(l.queueDepth, 0, 'the queue depth');
  intAtLeast(l.requestTimeoutMs, 1, 'the request timeout (ms)');
  intAtLeast(l.bodyLimit, 1, 'the body limit (bytes)');
  intAtLeast(l.keepAliveTimeoutMs, 1, 'the keep-alive timeout (ms)');
  intAtLeast(l.headersTimeoutMs, 1, 'the headers timeout (ms)');
  intAtLeast(l.receiveTimeoutMs, l.headersTimeoutMs, 'the receive timeout (ms), at least the headers timeout,');
  intAtLeast(l.maxConnections, 1, 'the connection limit');
  intAtLeast(l.maxConnectionsPerAddress, 0, 'the connection limit per address');
}

function tokenText(tok: ServeTokenizer, id: number | null): string {
  return id === null ? '' : tok.decode([id]);
}

function serveModels(specs: ModelSpec[], limits: ResolvedLimits, now: number, api: boolean): Map<string, ServedModel> {
  if (specs.length === 0 && api) throw new AjarError('bad_flag', 'no model to serve: give at least one');
  const out = new Map<string, ServedModel>();
  for (const s of specs) {
    if (!MODEL_ID_SHAPE.test(s.id)) {
      throw new AjarError('bad_flag', `model id '${s.id}' must be 1-128 letters, digits or . _ : / -`);
    }
    if (out.has(s.id)) throw new AjarError('bad_flag', `two models are both named '${s.id}'; give them distinct ids`);
    const chat = new ChatFormat(s.chatTemplate, tokenText(s.tokenizer, s.tokenizer.bosTokenId),
      tokenText(s.tokenizer, s.tokenizer.eosTokenId), s.tokenizer.addBos);
    out.set(s.id, {
      id: s.id, model: s.model, tokenizer: s.tokenizer, chat, queue: new GenerationQueue(limits.queueDepth),
      created: Math.floor(now / 1000), parent: null, adapter: null,
    });
  }
  return out;
}

/** A query parameter that looks like a credential: its name, or a value with our key's prefix. */
const CREDENTIAL_PARAM = /^(api[_-]?key|access[_-]?token|token|auth|authorization|bearer)$/i;

function credentialInQuery(url: string): boolean {
  const q = url.indexOf('?');
  if (q < 0) return false;
  for (const [k, v] of new URLSearchParams(url.slice(q + 1))) {
    if (CREDENTIAL_PARAM.test(k) || v.startsWith('ajar_sk_') || v.startsWith('Bearer ')) return true;
  }
  return false;
}

/** The URL as logs show it: the path, and only a marker for the query (it may hold a credential). */
export function loggedUrl(url: string): string {
  const q = url.indexOf('?');
  return q < 0 ? url : `${url.slice(0, q)}?[redacted]`;
}

/** NOTE: fastify's request serializer logs the whole URL; ours logs the path (and the address, as it did). */
function withSafeSerializers(logger: FastifyServerOptions['logger']): FastifyServerOptions['logger'] {
  if (logger === false || logger === undefined || logger === null) return false;
  const base = logger === true ? {} : logger;
  return {
    ...base,
    serializers: {
      ...(base as { serializers?: Record<string, unknown> }).serializers,
      req: (req: { method: string; url: string; ip?: string; socket?: { remotePort?: number } }) => ({
        method: req.method, url: loggedUrl(req.url), remoteAddress: req.ip, remotePort: req.socket?.remotePort,
      }),
    },
  } as FastifyServerOptions['logger'];
}

export function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false;
  const a = address.startsWith('::ffff:') ? address.slice(7) : address;
  return a === '::1' || a.startsWith('127.');
}

/** Whether a scrape may read /metrics, by the socket's own peer address (not X-Forwarded-For) or the token. */
function metricsGate(opts: ServerOptions): (peer: string | undefined, authorization: string | undefined) => boolean {
  const access = opts.metricsAccess ?? (opts.metricsToken !== undefined ? 'token' : 'loopback');
  if (access === 'token') {
    if (opts.metricsToken === undefined || opts.metricsToken.length < 16) {
      throw new AjarError('bad_flag', 'the metrics token must be at least 16 characters; use a long random one');
    }
    const expected = adminTokenHash(opts.metricsToken);
    return (_peer, authorization) => bearerMatches(authorization, expected);
  }
  if (access === 'off') return () => false;
  return (peer) => isLoopback(peer);
}

const RATE_CODES = new Set(Object.entries(ERROR_CATALOG).filter(([, e]) => e.status === 429 || e.status === 503).map(([c]) => c));

/** The app. The caller owns the store (closes it after app.close()). */
export function buildServer(opts: ServerOptions): FastifyInstance {
  const clock = opts.clock ?? Date.now;
  const limits: ResolvedLimits = { ...DEFAULT_LIMITS, ...opts.limits };
  checkLimits(limits);
  const models = serveModels(opts.models, limits, clock(), opts.api !== false);
  if (opts.adminToken !== undefined && opts.adminToken.length < 16) {
    throw new AjarError('bad_admin_token', 'the admin token is shorter than 16 characters; use a long random one');
  }
  const guard = new ConnectionGuard(limits);
  const adapterHosts = new Map<string, AdapterHost>();
  for (const a of opts.adapters ?? []) addAdapter({ models, adapterHosts }, a.id, a.dir, a.base, clock(), a.attach);
  // NOTE: adapters share their base's queue, so only bases report one.
  const metrics = new ServerMetrics(() => [...models.values()].filter((m) => m.parent === null).map((m) => ({
    model: m.id, waiting: m.queue.waiting, running: m.queue.running,
  })), () => guard);
  const store = timedStore(opts.store, metrics.storeLatency);
  const ctx: ServerContext = {
    models,
    adapterHosts,
    store,
    keys: new KeyCache(store, (id) => {
      // A change to a key with generations running here: cut them now if it was revoked, not at the next check.
      if ([...ctx.active].some((g) => id === null || g.keyId === id)) {
        cutRevokedKeys(ctx).catch((e: unknown) => app.log.error({ code: 'revocation_check_failed', message: (e as Error).message }));
      }
    }, KEY_CACHE_MS, (e) => app.log.warn({ code: 'key_refresh_failed', message: (e as Error).message },
      'could not refresh a cached key record; it lapses within a second')),
    mode: opts.mode ?? 'closed',
    limits,
    limiter: timedLimiter(opts.limiter ?? new RateLimiter(clock), metrics.limiterLatency),
    metrics,
    clock,
    adminTokenHash: opts.adminToken === undefined ? null : adminTokenHash(opts.adminToken),
    active: new Set(),
    authFailures: new AuthFailureLimiter(clock),
    auditBuffer: new AuditBuffer(store, (message) => app.log.error({ code: 'audit_write_failed', message }, 'could not write audit entries')),
    journalOwner: opts.journalOwner ?? journalOwner(),
  };

  const app = Fastify({
    logger: withSafeSerializers(opts.logger ?? false),
    bodyLimit: limits.bodyLimit,
    // NOTE: our own Node server: its timeouts (the time to receive a request, headers and body, against slow senders;
    // generation has its own timeout) are the guard's, and an address locked out for failed authentications is
    // answered before fastify sees the request (the cheapest answer a flood can get).
    serverFactory: (handler) => createServer({
      connectionsCheckingInterval: TIMEOUT_CHECK_INTERVAL_MS, headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.receiveTimeoutMs, keepAliveTimeout: limits.keepAliveTimeoutMs,
    }, opts.trustProxy ? handler : (req, res) => {
      if (!answerLockedOut(ctx, req, res)) handler(req, res);
    }),
    clientErrorHandler: clientErrorHandler(limits),
    trustProxy: opts.trustProxy ?? false,
    // Our own 503 while closing (below), in OpenAI's error shape rather than fastify's.
    return503OnClosing: false,
    genReqId: () => `req_${randomBytes(8).toString('hex')}`,
  });

  guard.attach(app.server);
  app.decorate('ajarControl', new ServerControl(app, ctx, guard));
  const stopWatch = watchRevocations(ctx, (message) => app.log.error({ code: 'revocation_check_failed', message }));
  const keysStarted = ctx.keys.start().catch((e: unknown) => {
    app.log.error({ code: 'key_watch_failed', message: (e as Error).message }, 'key changes are not announced; reading every key from the store');
  });
  app.addHook('onClose', async () => {
    stopWatch();
    await keysStarted;
    await ctx.keys.close();
    await ctx.auditBuffer.flush();
  });
  // JSON only: a text/plain body is refused with 415 rather than parsed into a string.
  app.removeContentTypeParser('text/plain');
  app.decorateRequest('ajar', null as unknown as RequestState);
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onRequest', async (req, reply) => {
    req.ajar = newRequestState(clock());
    reply.header('x-request-id', String(req.id));
    if (closing) {
      reply.header('connection', 'close');
      throw new ServeError('server_closing', undefined, { retryAfter: 5 });
    }
    if (credentialInQuery(req.url)) throw new ServeError('api_key_in_url');
  });
  app.addHook('onResponse', async (req, reply) => {
    if (!req.ajar.deferred) await finalizeRequest(ctx, req, reply.statusCode);
  });

  app.setErrorHandler(async (err, req, reply) => {
    const { error, internal } = toServeError(err, limits.bodyLimit);
    if (internal) {
      // NOTE: message only: a stack trace in the log is as unwelcome as one in the response.
      req.log.error({ code: 'internal_error', message: err instanceof Error ? err.message : String(err) }, 'request failed');
    }
    if (RATE_CODES.has(error.code)) ctx.metrics.rateLimited.inc({ code: error.code });
    if (error.retryAfter !== null) reply.header('retry-after', String(error.retryAfter));
    return reply.code(error.status).type('application/json; charset=utf-8').send(errorBody(error));
  });

  app.setNotFoundHandler(async (req, reply) => {
    const e = new ServeError('not_found', `no endpoint ${req.method} ${req.url.split('?')[0]}`);
    return reply.code(404).type('application/json; charset=utf-8').send(errorBody(e));
  });

  // Liveness: the process answers. Readiness (for a load balancer): not shutting down, and the store answers.
  app.get('/health', async () => ({ status: 'ok' }));
  app.get('/ready', async (_req, reply) => {
    const checks: Record<string, string> = { models: `${models.size} loaded`, store: 'ok' };
    try {
      await ctx.store.ping();
    } catch (e) {
      checks.store = `unreachable: ${(e as Error).message}`;
    }
    // NOTE: while closing, the onRequest hook has already answered 503 server_closing.
    const ready = checks.store === 'ok';
    reply.code(ready ? 200 : 503);
    return { status: ready ? 'ready' : 'not ready', checks };
  });
  const metricsAllowed = metricsGate(opts);
  app.get('/metrics', async (req, reply) => {
    // NOTE: refused exactly as a path that does not exist, so a stranger learns nothing.
    if (!metricsAllowed(req.raw.socket.remoteAddress, req.headers.authorization)) {
      throw new ServeError('not_found', `no endpoint ${req.method} /metrics`);
    }
    reply.type(PROMETHEUS_CONTENT_TYPE);
    return ctx.metrics.registry.render();
  });
  if (opts.api !== false) {
    app.register(v1Routes(ctx), { prefix: '/v1' });
    app.register(adminRoutes(ctx), { prefix: '/admin' });
  }
  if (opts.dashboard !== undefined) {
    if (opts.adminToken === undefined) {
      throw new AjarError('bad_admin_token', 'the dashboard needs an admin token (signing in takes it): give --admin-token-file');
    }
    app.register(dashboardRoutes(ctx, opts.dashboard), { prefix: '/ui' });
  }
  return app;
}
