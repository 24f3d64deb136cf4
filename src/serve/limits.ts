// Per-caller rate limits: requests per minute and tokens per minute as token buckets. State lives in this process's
// memory (quotas do not: the store holds them, generation.ts).
import { ServeError } from './errors.js';

const MINUTE_MS = 60_000;

/** A bucket of `capacity` that refills to full in one minute; levels are fractional. */
export class TokenBucket {
  private level: number;
  private last: number;

  constructor(readonly capacity: number, now: number) {
    this.level = capacity;
    this.last = now;
  }

  private refill(now: number): void {
    if (now > this.last) {
      this.level = Math.min(this.capacity, this.level + ((now - this.last) * this.capacity) / MINUTE_MS);
      this.last = now;
    }
  }

  available(now: number): number {
    this.refill(now);
    return this.level;
  }

  /** Take n if there are n; returns whether it did. */
  tryTake(n: number, now: number): boolean {
    this.refill(now);
    if (this.level + 1e-9 < n) return false;
    this.level -= n;
    return true;
  }

  /** Return n (unused reservation); never above capacity. */
  give(n: number, now: number): void {
    this.refill(now);
    this.level = Math.min(this.capacity, this.level + n);
  }

  /** Milliseconds until n are available (0 if they are now). */
  waitMs(n: number, now: number): number {
    this.refill(now);
    return n <= this.level ? 0 : ((n - this.level) * MINUTE_MS) / this.capacity;
  }

  /** Milliseconds until the bucket is full again. */
  resetMs(now: number): number {
    return this.waitMs(this.capacity, now);
  }

  isFull(now: number): boolean {
    return this.available(now) >= this.capacity;
  }
}

/** The limits that apply to one caller (a key, or an address in open mode). */
export interface CallerLimits {
  rpm: number;
  tpm: number;
}

/** OpenAI's reset format: "20ms", "1.5s", "6m0s". */
export function formatReset(ms: number): string {
  if (ms < 1000) return `${Math.ceil(ms)}ms`;
  const s = ms / 1000;
  if (s < 60) return `${Math.round(s * 10) / 10}s`;
  const m = Math.floor(s / 60);
  return `${m}m${Math.round(s - m * 60)}s`;
}

interface CallerState {
  requests: TokenBucket;
  tokens: TokenBucket;
}

/** The tokens a request reserved; settle() returns what it did not use. */
export interface TokenReservation {
  reserved: number;
  settle(used: number): Promise<void>;
}

/** What one check takes: requests (1, or 0) and tokens (prompt + max_tokens for a generation). */
export interface LimitCost {
  requests: number;
  tokens: number;
  /** The request field that sets the token count, for request_too_large. */
  param?: string;
}

/** Requests and tokens per minute per caller: in this process (RateLimiter) or shared by replicas (RedisLimiter). */
export interface Limiter {
  /** Whether every replica sees the same buckets. */
  readonly shared: boolean;
  take(caller: string, limits: CallerLimits, cost: LimitCost): Promise<TokenReservation>;
  /** The six x-ratelimit-* headers, from the caller's last known state. */
  headers(caller: string, limits: CallerLimits): Record<string, string>;
  close(): Promise<void>;
}

export function checkSize(limits: CallerLimits, cost: LimitCost): void {
  if (cost.tokens > limits.tpm) {
    const param = cost.param ?? 'max_tokens';
    throw new ServeError('request_too_large',
      `this request may use ${cost.tokens} tokens (prompt plus ${param}) but the limit is ${limits.tpm} tokens per minute; `
      + `lower ${param}`, { param, retryAfter: 60 });
  }
}

export function requestsExceeded(limits: CallerLimits, waitMs: number): ServeError {
  return new ServeError('requests_per_minute_exceeded',
    `rate limit reached: ${limits.rpm} requests per minute; retry in ${formatReset(waitMs)}`,
    { retryAfter: Math.max(1, Math.ceil(waitMs / 1000)) });
}

export function tokensExceeded(limits: CallerLimits, need: number, waitMs: number): ServeError {
  return new ServeError('tokens_per_minute_exceeded',
    `rate limit reached: ${limits.tpm} tokens per minute, this request may use ${need}; retry in ${formatReset(waitMs)}`,
    { retryAfter: Math.max(1, Math.ceil(waitMs / 1000)) });
}

/** The six headers from bucket levels (what is left, and ms until each is full again). */
export function limitHeaders(limits: CallerLimits, left: { requests: number; tokens: number },
  resetMs: { requests: number; tokens: number }): Record<string, string> {
  return {
    'x-ratelimit-limit-requests': String(limits.rpm),
    'x-ratelimit-remaining-requests': String(Math.floor(left.requests)),
    'x-ratelimit-reset-requests': formatReset(resetMs.requests),
    'x-ratelimit-limit-tokens': String(limits.tpm),
    'x-ratelimit-remaining-tokens': String(Math.floor(left.tokens)),
    'x-ratelimit-reset-tokens': formatReset(resetMs.tokens),
  };
}

const PRUNE_AT = 10_000;

export class RateLimiter implements Limiter {
  readonly shared = false;
  private readonly callers = new Map<string, CallerState>();

  constructor(private readonly clock: () => number) {}

  private state(caller: string, limits: CallerLimits): CallerState {
    const now = this.clock();
    let s = this.callers.get(caller);
    if (!s || s.requests.capacity !== limits.rpm || s.tokens.capacity !== limits.tpm) {
      if (!s && this.callers.size >= PRUNE_AT) this.prune(now);
      s = { requests: new TokenBucket(limits.rpm, now), tokens: new TokenBucket(limits.tpm, now) };
      this.callers.set(caller, s);
    }
    return s;
  }

  /** NOTE: a full bucket holds no information (a new one is full too), so idle callers can be forgotten. */
  private prune(now: number): void {
    for (const [k, s] of this.callers) {
      if (s.requests.isFull(now) && s.tokens.isFull(now)) this.callers.delete(k);
    }
  }

  /**
   * Take `cost.requests` requests and `cost.tokens` tokens together, or neither: 429 request_too_large when the
   * tokens exceed the whole limit (waiting cannot help), requests_per_minute_exceeded or tokens_per_minute_exceeded
   * otherwise. The reservation's settle() gives back the tokens not used.
   */
  async take(caller: string, limits: CallerLimits, cost: LimitCost): Promise<TokenReservation> {
    const now = this.clock();
    const s = this.state(caller, limits);
    checkSize(limits, cost);
    const needR = cost.requests;
    const needT = cost.tokens;
    if (s.requests.available(now) + 1e-9 < needR) throw requestsExceeded(limits, s.requests.waitMs(needR, now));
    if (s.tokens.available(now) + 1e-9 < needT) throw tokensExceeded(limits, needT, s.tokens.waitMs(needT, now));
    s.requests.tryTake(needR, now);
    s.tokens.tryTake(needT, now);
    let settled = false;
    return {
      reserved: needT,
      settle: async (used: number) => {
        if (settled) return;
        settled = true;
        if (used < needT) s.tokens.give(needT - used, this.clock());
      },
    };
  }

  async close(): Promise<void> {}

  /** The six x-ratelimit-* headers OpenAI sends. */
  headers(caller: string, limits: CallerLimits): Record<string, string> {
    const now = this.clock();
    const s = this.state(caller, limits);
    return limitHeaders(limits, { requests: s.requests.available(now), tokens: s.tokens.available(now) },
      { requests: s.requests.resetMs(now), tokens: s.tokens.resetMs(now) });
  }
}
