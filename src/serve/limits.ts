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
  settle(used: number): void;
}

const PRUNE_AT = 10_000;

export class RateLimiter {
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

  /** Count one request, or throw 429 requests_per_minute_exceeded with Retry-After. */
  takeRequest(caller: string, limits: CallerLimits): void {
    const now = this.clock();
    const s = this.state(caller, limits);
    if (!s.requests.tryTake(1, now)) {
      const wait = s.requests.waitMs(1, now);
      throw new ServeError('requests_per_minute_exceeded',
        `rate limit reached: ${limits.rpm} requests per minute; retry in ${formatReset(wait)}`,
        { retryAfter: Math.max(1, Math.ceil(wait / 1000)) });
    }
  }

  /**
   * Reserve `need` tokens (prompt + the most the completion may use) from the per-minute bucket, or throw 429:
   * request_too_large when need exceeds the whole limit (waiting cannot help), else tokens_per_minute_exceeded.
   */
  reserveTokens(caller: string, limits: CallerLimits, need: number, param: string): TokenReservation {
    const now = this.clock();
    const s = this.state(caller, limits);
    if (need > limits.tpm) {
      throw new ServeError('request_too_large',
        `this request may use ${need} tokens (prompt plus ${param}) but the limit is ${limits.tpm} tokens per minute; `
        + `lower ${param}`, { param, retryAfter: 60 });
    }
    if (!s.tokens.tryTake(need, now)) {
      const wait = s.tokens.waitMs(need, now);
      throw new ServeError('tokens_per_minute_exceeded',
        `rate limit reached: ${limits.tpm} tokens per minute, this request may use ${need}; retry in ${formatReset(wait)}`,
        { retryAfter: Math.max(1, Math.ceil(wait / 1000)) });
    }
    let settled = false;
    return {
      reserved: need,
      settle: (used: number) => {
        if (settled) return;
        settled = true;
        if (used < need) s.tokens.give(need - used, this.clock());
      },
    };
  }

  /** The six x-ratelimit-* headers OpenAI sends. */
  headers(caller: string, limits: CallerLimits): Record<string, string> {
    const now = this.clock();
    const s = this.state(caller, limits);
    return {
      'x-ratelimit-limit-requests': String(limits.rpm),
      'x-ratelimit-remaining-requests': String(Math.floor(s.requests.available(now))),
      'x-ratelimit-reset-requests': formatReset(s.requests.resetMs(now)),
      'x-ratelimit-limit-tokens': String(limits.tpm),
      'x-ratelimit-remaining-tokens': String(Math.floor(s.tokens.available(now))),
      'x-ratelimit-reset-tokens': formatReset(s.tokens.resetMs(now)),
    };
  }
}
