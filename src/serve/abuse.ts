// Defences against authentication floods: failures are limited per client address (429 after a burst, before any
// key is looked up), and their audit entries are written in batches, so a flood of bad keys costs one transaction
// a second instead of one synced write per request and cannot starve generation of the CPU or the disk.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyRequest } from 'fastify';
import type { AuthContext, AuthTarget } from './auth.js';
import type { ServerContext } from './context.js';
import { errorBody, ServeError } from './errors.js';
import { TokenBucket } from './limits.js';
import type { AuditEntry, Store } from './store.js';

/** Failures an address may make in a burst; it earns one back every 60/BURST seconds. */
export const AUTH_FAILURE_BURST = 30;
/** Addresses tracked at most (the oldest forgotten first), so many addresses cannot grow memory without bound. */
const MAX_TRACKED = 50_000;

export class AuthFailureLimiter {
  private readonly buckets = new Map<string, TokenBucket>();

  constructor(private readonly clock: () => number, private readonly burst = AUTH_FAILURE_BURST) {}

  /** Seconds until the address may try again, or 0 when it may now. */
  retryAfter(address: string): number {
    const b = this.buckets.get(address);
    if (!b) return 0;
    const now = this.clock();
    if (b.isFull(now)) {
      this.buckets.delete(address);
      return 0;
    }
    return b.available(now) >= 1 ? 0 : Math.max(1, Math.ceil(b.waitMs(1, now) / 1000));
  }

  /** Count a failure from the address. */
  fail(address: string): void {
    let b = this.buckets.get(address);
    if (!b) {
      if (this.buckets.size >= MAX_TRACKED) this.buckets.delete(this.buckets.keys().next().value!);
      b = new TokenBucket(this.burst, this.clock());
      this.buckets.set(address, b);
    }
    b.tryTake(1, this.clock());
  }
}

/** Entries of one address, reason and target kept individually per flush; the rest are summed into one entry. */
const KEEP_PER_GROUP = 5;
export const AUDIT_FLUSH_MS = 1_000;
const MAX_BUFFERED = 10_000;

/** Buffers authentication-failure audit entries and writes them in one transaction a second. */
export class AuditBuffer {
  private entries: AuditEntry[] = [];
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();

  constructor(private readonly store: Store, private readonly onError: (message: string) => void) {}

  add(e: AuditEntry): void {
    if (this.entries.length >= MAX_BUFFERED) this.entries = summarize(this.entries);
    this.entries.push(e);
    this.timer ??= setTimeout(() => void this.flush(), AUDIT_FLUSH_MS).unref();
  }

  /** Write what is buffered now (also on close). */
  flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const batch = summarize(this.entries);
    this.entries = [];
    this.flushing = this.flushing.then(async () => {
      if (batch.length === 0) return;
      try {
        await this.store.appendAudits(batch);
      } catch (e) {
        this.onError((e as Error).message);
      }
    });
    return this.flushing;
  }
}

/** Keep the first KEEP_PER_GROUP entries of each (remote, reason, target); fold the rest into one with a count. */
function summarize(entries: AuditEntry[]): AuditEntry[] {
  const out: AuditEntry[] = [];
  const groups = new Map<string, { kept: number; folded: AuditEntry | null }>();
  for (const e of entries) {
    const d = e.detail ?? {};
    const key = `${e.remote}\u0000${String(d.reason)}\u0000${String(d.target)}`;
    let g = groups.get(key);
    if (!g) {
      g = { kept: 0, folded: null };
      groups.set(key, g);
    }
    const count = typeof d.count === 'number' ? d.count : 1;
    if (g.kept < KEEP_PER_GROUP && count === 1) {
      g.kept++;
      out.push(e);
    } else if (g.folded === null) {
      g.folded = { ...e, keyId: null, keyPrefix: null, detail: { reason: d.reason, target: d.target, count, path: d.path } };
      out.push(g.folded);
    } else {
      const fd = g.folded.detail!;
      fd.count = (fd.count as number) + count;
      g.folded.ts = Math.max(g.folded.ts, e.ts);
    }
  }
  return out;
}

/** The audit entry of a request refused because its address is locked out (folded per flush, summarize()). */
function lockedOutEntry(ctx: ServerContext, remote: string, target: AuthTarget, path: string): AuditEntry {
  return {
    ts: ctx.clock(), actor: 'client', action: 'auth.failure', keyId: null, keyPrefix: null, remote,
    detail: { reason: 'rate_limited', target, path },
  };
}

/** The metrics label of a failure: one value for an unknown key id and a wrong secret alike (they must look alike). */
const METRIC_REASON: Record<string, string> = {
  missing: 'missing', revoked: 'revoked', expired: 'expired',
};

/**
 * The AuthContext of one request: refused with 429 at once when its address has failed too often; failures are
 * counted (metrics, the address's limit) and audited through the batching buffer.
 */
export function guardedAuth(ctx: ServerContext, req: FastifyRequest, target: AuthTarget): AuthContext {
  const path = req.url.split('?')[0];
  const now = ctx.clock();
  const wait = ctx.authFailures.retryAfter(req.ip);
  if (wait > 0) {
    ctx.auditBuffer.add(lockedOutEntry(ctx, req.ip, target, path));
    throw new ServeError('too_many_auth_failures',
      `too many failed authentications from this address; retry in ${wait} s`, { retryAfter: wait });
  }
  return {
    store: ctx.store, getKey: (id) => ctx.keys.get(id), now, remote: req.ip, path,
    audit: (e) => ctx.auditBuffer.add(e),
    onFailure: (reason) => {
      ctx.metrics.authFailures.inc({ target, reason: METRIC_REASON[reason] ?? 'invalid' });
      ctx.authFailures.fail(req.ip);
    },
  };
}

/**
 * How long the replies to a locked-out address wait on their connection, gathered into one write: one system call
 * per connection every quarter second instead of one per refused request (a pipelining flood of bad keys otherwise
 * costs the server a loopback write for every one, the largest part of its cost per request). An honest client
 * stops at its first 429 and waits the Retry-After seconds, so it loses nothing.
 */
export const LOCKED_OUT_HOLD_MS = 250;
const held = new WeakSet<Socket>();

/**
 * Keep the connection's writes buffered until the hold ends. Node's response end() uncorks the socket fully
 * (it sets the cork count to one, then uncorks), so the socket's own uncork is what waits.
 */
function holdReplies(socket: Socket): void {
  if (held.has(socket)) return;
  held.add(socket);
  socket.cork();
  socket.uncork = function heldUncork(this: Socket) {
    const state = (this as unknown as { _writableState: { corked: number } })._writableState;
    state.corked = Math.max(state.corked, 1);
    return;
  };
  setTimeout(() => {
    held.delete(socket);
    delete (socket as Partial<Socket>).uncork; // the prototype's again
    if (!socket.destroyed) socket.uncork();
  }, LOCKED_OUT_HOLD_MS).unref();
}

const LOCKED_OUT_BODY = Buffer.from(JSON.stringify(errorBody(new ServeError('too_many_auth_failures'))));

/**
 * Before fastify: a request from an address locked out for failed authentications (by its socket's address; not
 * behind a trusted proxy) is answered 429 at once, counted and audited in the batch. Returns whether it answered.
 */
export function answerLockedOut(ctx: ServerContext, req: IncomingMessage, res: ServerResponse): boolean {
  const address = req.socket.remoteAddress ?? 'unknown';
  const wait = ctx.authFailures.retryAfter(address);
  if (wait === 0) return false;
  req.resume();
  holdReplies(req.socket);
  res.writeHead(429, {
    'content-type': 'application/json; charset=utf-8', 'content-length': LOCKED_OUT_BODY.length, 'retry-after': String(wait),
  });
  res.end(LOCKED_OUT_BODY);
  ctx.metrics.rateLimited.inc({ code: 'too_many_auth_failures' });
  const path = (req.url ?? '').split('?')[0];
  ctx.auditBuffer.add(lockedOutEntry(ctx, address, path.startsWith('/admin') ? 'admin' : path.startsWith('/ui') ? 'dashboard' : 'api', path));
  return true;
}
