// The server's life after listen: a graceful shutdown (stop accepting, close idle connections at once, give running
// generations a grace period, then cut them and record what each produced) and the watch that cuts a key's
// generations within a second of its revocation, whichever process revoked it.
import { createServer, type Server } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance } from 'fastify';
import { adminTokenHash, bearerMatches } from './auth.js';
import type { ConnectionGuard } from './connections.js';
import type { ServerContext } from './context.js';
import { Cut, SHUTDOWN_CUT } from './generation.js';
import { errorBody, ServeError } from './errors.js';
import { keyStatus } from './keys.js';
import { PROMETHEUS_CONTENT_TYPE } from './metrics.js';

/** How long cut generations get to write their usage records before shutdown gives up on them. */
const FLUSH_MS = 10_000;
/** How often running generations' keys are re-read from the store. */
export const REVOCATION_CHECK_MS = 500;

export interface ShutdownReport {
  /** Generations queued or running when shutdown began. */
  inFlight: number;
  /** Of those, how many the grace period's end (or a second signal) cut short. */
  cut: number;
  /** Generations whose usage record could not be written in time (0 unless the store hangs). */
  unrecorded: number;
}

export class ServerControl {
  private shutting: Promise<ShutdownReport> | undefined;
  private hurried = false;

  constructor(private readonly app: FastifyInstance, private readonly ctx: ServerContext,
    readonly connections: ConnectionGuard) {}

  /**
   * Stop accepting, close idle connections now (and each that falls idle), let generations run for up to graceMs,
   * then cut them; resolves once every usage record is written and every connection closed. Idempotent.
   */
  shutdown(graceMs: number): Promise<ShutdownReport> {
    this.shutting ??= this.run(graceMs);
    return this.shutting;
  }

  /** Write the buffered authentication-failure audit entries now (they are otherwise written once a second). */
  flushAudit(): Promise<void> {
    return this.ctx.auditBuffer.flush();
  }

  /** The Prometheus text of this server's metrics (for a separate metrics listener). */
  metricsText(): string {
    return this.ctx.metrics.registry.render();
  }

  /** End the grace period now (a second signal); records are still written. */
  hurry(): void {
    this.hurried = true;
  }

  private async run(graceMs: number): Promise<ShutdownReport> {
    const { ctx, connections } = this;
    const inFlight = ctx.active.size;
    // fastify stops listening, its preClose hook turns new requests away (503, Connection: close).
    const closed = this.app.close();
    connections.closeIdle();
    const sweep = setInterval(() => connections.closeIdle(), 100);
    try {
      const drained = await this.drained(graceMs, true);
      let cut = 0;
      if (!drained && ctx.active.size > 0) {
        cut = ctx.active.size;
        for (const g of ctx.active) g.cut(SHUTDOWN_CUT);
        await this.drained(FLUSH_MS, false);
      }
      const unrecorded = ctx.active.size;
      // NOTE: an unref'd timer, so a server that closed at once does not keep the process alive for it.
      await Promise.race([closed, new Promise<void>((resolve) => setTimeout(resolve, 2_000).unref())]);
      return { inFlight, cut, unrecorded };
    } finally {
      clearInterval(sweep);
    }
  }

  /** Resolves true when no generation is in flight, or false after ms (or at hurry(), when it may end the wait). */
  private async drained(ms: number, hurryEnds: boolean): Promise<boolean> {
    const until = Date.now() + ms;
    while (this.ctx.active.size > 0 && Date.now() < until && !(hurryEnds && this.hurried)) await sleep(20);
    return this.ctx.active.size === 0;
  }
}

/**
 * Cut every generation whose key is no longer active (revoked or expired since it was admitted). Runs every
 * REVOCATION_CHECK_MS while generations are in flight; the admin API calls it at once after a revocation.
 */
export async function cutRevokedKeys(ctx: ServerContext): Promise<void> {
  const ids = new Set<string>();
  for (const g of ctx.active) if (g.keyId !== null) ids.add(g.keyId);
  const now = ctx.clock();
  for (const id of ids) {
    const rec = await ctx.store.getKey(id);
    const status = rec ? keyStatus(rec, now) : 'revoked';
    if (status === 'active') continue;
    const cut = status === 'expired'
      ? new Cut('key_expired', 'expired', 'the API key expired during the request')
      : new Cut('key_revoked', 'revoked', 'the API key was revoked during the request');
    for (const g of ctx.active) if (g.keyId === id) g.cut(cut);
  }
}

/** Start the revocation watch; returns its stop function. */
export function watchRevocations(ctx: ServerContext, log: (message: string) => void): () => void {
  let busy = false;
  const timer = setInterval(() => {
    if (busy || ctx.active.size === 0) return;
    busy = true;
    cutRevokedKeys(ctx).catch((e: unknown) => log((e as Error).message)).finally(() => {
      busy = false;
    });
  }, REVOCATION_CHECK_MS);
  timer.unref();
  return () => clearInterval(timer);
}

/** GET /metrics on its own address (a Prometheus scrape port kept off the public API's). */
export async function listenMetrics(control: ServerControl, addr: { host: string; port: number },
  token: string | undefined): Promise<Server> {
  const expected = token === undefined ? undefined : adminTokenHash(token);
  const server = createServer((req, res) => {
    const ok = expected === undefined || bearerMatches(req.headers.authorization, expected);
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics' || !ok) {
      res.writeHead(404, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify(errorBody(new ServeError('not_found'))));
      return;
    }
    res.writeHead(200, { 'content-type': PROMETHEUS_CONTENT_TYPE }).end(control.metricsText());
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(addr.port, addr.host, () => resolve());
  });
  return server;
}
