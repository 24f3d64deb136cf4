// What every route shares: the served models, the store, limits, metrics, and the per-request state that ends
// in exactly one metrics sample and (for /v1) one durable usage record.
import { performance } from 'node:perf_hooks';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Tokenizer } from '../io/tokenizer/index.js';
import type { CausalLM } from '../models/types.js';
import type { AuditBuffer, AuthFailureLimiter } from './abuse.js';
import type { AdapterHost, ServedAdapter } from './adapters.js';
import type { ChatFormat } from './chat.js';
import type { ConnectionLimits } from './connections.js';
import type { CallerLimits, Limiter } from './limits.js';
import type { ServerMetrics } from './metrics.js';
import type { Cut } from './generation.js';
import type { GenerationQueue } from './queue.js';
import type { KeyCache } from './key-cache.js';
import type { KeyRecord, Store, UsageRecord } from './store.js';

/** What serving needs of a tokenizer (a subset of io/tokenizer's, so an in-memory bundle can supply its own). */
export type ServeTokenizer = Pick<Tokenizer, 'encode' | 'decode' | 'tokenBytes' | 'eosTokenId' | 'bosTokenId' | 'addBos'>;

export interface ServedModel {
  id: string;
  model: CausalLM;
  tokenizer: ServeTokenizer;
  chat: ChatFormat;
  queue: GenerationQueue;
  /** Unix seconds, for /v1/models. */
  created: number;
  /** For a LoRA adapter: the id of its base (whose model, tokenizer and queue it shares); null for a base. */
  parent: string | null;
  adapter: ServedAdapter | null;
}

export type ServeMode = 'closed' | 'open';

export interface ResolvedLimits extends ConnectionLimits {
  /** Requests per minute for keys without their own, and per address in open mode. */
  defaultRpm: number;
  /** Tokens per minute, likewise. */
  defaultTpm: number;
  /** Requests that may wait per model behind the running one. */
  queueDepth: number;
  /** A request's whole life, queue wait included, in ms. */
  requestTimeoutMs: number;
  /** Largest request body, in bytes. */
  bodyLimit: number;
}

export interface ServerContext {
  /** Bases and adapters by the id clients send as `model`. */
  models: Map<string, ServedModel>;
  /** Base id -> the adapters loaded over it (created with the first adapter). */
  adapterHosts: Map<string, AdapterHost>;
  store: Store;
  /** Key records for authentication (key-cache.ts). */
  keys: KeyCache;
  mode: ServeMode;
  limits: ResolvedLimits;
  limiter: Limiter;
  metrics: ServerMetrics;
  clock: () => number;
  adminTokenHash: Buffer | null;
  /** Generations admitted and not yet recorded (queued or running): shutdown and revocation cut them. */
  active: Set<ActiveGeneration>;
  /** Authentication failures per client address, and their batched audit entries (abuse.ts). */
  authFailures: AuthFailureLimiter;
  auditBuffer: AuditBuffer;
  /** This process in the usage journal (journal.ts). */
  journalOwner: string;
}

/** A generation in flight, as shutdown and revocation see it. */
export interface ActiveGeneration {
  keyId: string | null;
  cut(c: Cut): void;
}

/** The caller of a /v1 request once known: a key (closed mode) or an address (open mode). */
export interface Caller {
  /** Rate-limit identity: the key id, or "addr:<address>". */
  id: string;
  keyId: string | null;
  key: KeyRecord | null;
  client: string;
  limits: CallerLimits;
}

export interface RequestState {
  startedAt: number; // performance.now()
  ts: number; // the server clock at arrival (epoch ms)
  caller: Caller | null;
  /** Set by admin routes once the admin token checked out (their calls are audited). */
  admin: boolean;
  model: string | null;
  promptTokens: number;
  completionTokens: number;
  finishReason: string | null;
  user: string | null;
  /** The handler finalizes itself (generation: after the last token, whatever happens to the socket). */
  deferred: boolean;
  finished: boolean;
  /** The usage record is committed (which also ended the request's quota hold, if any). */
  recorded: boolean;
}

declare module 'fastify' {
  interface FastifyRequest {
    ajar: RequestState;
  }
}

export function newRequestState(now: number): RequestState {
  return {
    startedAt: performance.now(), ts: now, caller: null, admin: false, model: null, promptTokens: 0,
    completionTokens: 0, finishReason: null, user: null, deferred: false, finished: false,
    recorded: false,
  };
}

/** The route pattern (low cardinality), or 'unmatched'. */
export function routeLabel(req: FastifyRequest): string {
  return req.routeOptions?.url ?? 'unmatched';
}

/**
 * Close the books on a request, once: metrics, and for an identified /v1 caller a usage record.
 * A failed write is logged (message only) and does not change the response.
 */
export async function finalizeRequest(ctx: ServerContext, req: FastifyRequest, status: number): Promise<void> {
  const st = req.ajar;
  if (st.finished) return;
  st.finished = true;
  const seconds = (performance.now() - st.startedAt) / 1000;
  const route = routeLabel(req);
  ctx.metrics.requests.inc({ route, status: String(status) });
  ctx.metrics.latency.observe({ route }, seconds);
  if (st.model !== null) {
    if (st.promptTokens > 0) ctx.metrics.tokens.inc({ model: st.model, type: 'prompt' }, st.promptTokens);
    if (st.completionTokens > 0) ctx.metrics.tokens.inc({ model: st.model, type: 'completion' }, st.completionTokens);
  }
  if (st.caller === null) return;
  try {
    // NOTE: the store drops the request's journal entry in the same transaction.
    await ctx.store.recordUsage(usageRecord(req, st.caller, route, seconds * 1000, status));
    st.recorded = true;
  } catch (e) {
    req.log.error({ code: 'usage_write_failed', message: (e as Error).message }, 'could not write a usage record');
  }
}

function usageRecord(req: FastifyRequest, caller: Caller, route: string, latencyMs: number, status: number): UsageRecord {
  const st = req.ajar;
  return {
    ts: st.ts, keyId: caller.keyId, client: caller.client, model: st.model, endpoint: route,
    promptTokens: st.promptTokens, completionTokens: st.completionTokens, latencyMs, status,
    finishReason: st.finishReason, user: st.user, requestId: String(req.id),
  };
}

/**
 * Write (or bring up to date) the journal entry of a generation in flight: what it has produced so far, so a crash
 * loses at most what came after. A failed write is logged and generation goes on.
 */
export async function journalRequest(ctx: ServerContext, req: FastifyRequest): Promise<void> {
  const st = req.ajar;
  if (st.caller === null || st.finished) return;
  const now = ctx.clock();
  try {
    await ctx.store.journalUsage({
      ...usageRecord(req, st.caller, routeLabel(req), now - st.ts, 0),
      requestId: String(req.id), owner: ctx.journalOwner, heartbeat: now,
    });
  } catch (e) {
    req.log.error({ code: 'journal_write_failed', message: (e as Error).message }, 'could not journal a generation');
  }
}

/** Headers a reply carries for its caller's limits. */
export function setLimitHeaders(ctx: ServerContext, reply: FastifyReply, caller: Caller): void {
  reply.headers(ctx.limiter.headers(caller.id, caller.limits));
}
