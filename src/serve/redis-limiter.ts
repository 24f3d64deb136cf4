// Requests and tokens per minute shared by every replica: one token bucket pair per caller in Redis, checked and
// taken in one Lua script on Redis's own clock (TIME), so replicas with skewed clocks agree and parallel requests
// through different replicas cannot together pass a limit. A request's tokens (prompt + max_tokens) are taken
// before it generates; settle() gives back what it did not use, in a second script.
// When Redis cannot be reached: fail closed (503 limiter_unavailable) by default, or fail open to this process's
// own buckets (`--redis-fail open`), with a warning in the log.
import { Redis } from 'ioredis';
import { ServeError } from './errors.js';
import {
  checkSize, limitHeaders, RateLimiter, requestsExceeded, tokensExceeded, type CallerLimits, type Limiter, type LimitCost,
  type TokenReservation,
} from './limits.js';

// Both scripts refill the two buckets continuously (to full in a minute), as limits.ts's TokenBucket does.
const REFILL = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rpm = tonumber(ARGV[1])
local tpm = tonumber(ARGV[2])
local s = redis.call('HMGET', KEYS[1], 'r', 't', 'ts', 'rpm', 'tpm')
local r = tonumber(s[1])
local k = tonumber(s[2])
local ts = tonumber(s[3])
if r == nil or tonumber(s[4]) ~= rpm or tonumber(s[5]) ~= tpm then r = rpm; k = tpm; ts = now end
local dt = math.max(0, now - ts)
r = math.min(rpm, r + dt * rpm / 60000)
k = math.min(tpm, k + dt * tpm / 60000)
`;

const SAVE = `
redis.call('HSET', KEYS[1], 'r', tostring(r), 't', tostring(k), 'ts', now, 'rpm', rpm, 'tpm', tpm)
redis.call('PEXPIRE', KEYS[1], 120000)
`;

/** ARGV: rpm, tpm, requests, tokens. Returns {taken (1/0), requests left, tokens left}. */
const TAKE = `${REFILL}
local needR = tonumber(ARGV[3])
local needT = tonumber(ARGV[4])
local ok = 0
if r + 1e-9 >= needR and k + 1e-9 >= needT then r = r - needR; k = k - needT; ok = 1 end
${SAVE}
return {ok, tostring(r), tostring(k)}`;

/** ARGV: rpm, tpm, tokens to give back. Returns {requests left, tokens left}. */
const GIVE = `${REFILL}
k = math.min(tpm, k + tonumber(ARGV[3]))
${SAVE}
return {tostring(r), tostring(k)}`;

export type RedisFailMode = 'closed' | 'open';

interface Known {
  requests: number;
  tokens: number;
  at: number;
}

export class RedisLimiter implements Limiter {
  readonly shared = true;
  private readonly redis: Redis;
  private readonly known = new Map<string, Known>();
  private readonly fallback: RateLimiter;
  private lastWarning = 0;

  /**
   * url: redis://HOST:PORT[/DB]. prefix: the keys' namespace (several deployments on one Redis).
   * onFallback: told (at most once a minute) when fail-open serves from this process's buckets.
   */
  constructor(url: string, private readonly opts: {
    failMode?: RedisFailMode; prefix?: string; onFallback?: (message: string) => void; clock?: () => number;
  } = {}) {
    this.redis = new Redis(url, {
      // NOTE: no queueing while disconnected: a request must not wait for Redis to come back.
      enableOfflineQueue: false, maxRetriesPerRequest: 0, connectTimeout: 2_000, lazyConnect: false,
      // NOTE: the scripts of concurrent requests go out in one write (one round trip for all), not one each.
      enableAutoPipelining: true,
      retryStrategy: (times) => Math.min(times * 200, 2_000),
    });
    this.redis.on('error', () => {});
    this.redis.defineCommand('ajarTake', { numberOfKeys: 1, lua: TAKE });
    this.redis.defineCommand('ajarGive', { numberOfKeys: 1, lua: GIVE });
    this.fallback = new RateLimiter(opts.clock ?? Date.now);
  }

  /** Resolves when connected, or rejects after ms (for startup checks). */
  async ready(ms = 3_000): Promise<void> {
    if (this.redis.status === 'ready') return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer from Redis in ${ms / 1000} s`)), ms);
      this.redis.once('ready', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private key(caller: string): string {
    return `${this.opts.prefix ?? 'ajar'}:rl:${caller}`;
  }

  private async run(command: 'ajarTake' | 'ajarGive', caller: string, args: number[]): Promise<string[]> {
    const call = (this.redis as unknown as Record<string, (...a: unknown[]) => Promise<Array<number | string>>>)[command];
    const out = await call.call(this.redis, this.key(caller), ...args);
    return out.map(String);
  }

  private unavailable(e: unknown): ServeError | null {
    if (this.opts.failMode === 'open') {
      const now = Date.now();
      if (now - this.lastWarning > 60_000) {
        this.lastWarning = now;
        this.opts.onFallback?.(`Redis unreachable (${(e as Error).message}); limiting per process until it answers`);
      }
      return null;
    }
    return new ServeError('limiter_unavailable',
      'the rate limiter (Redis) cannot be reached, and this server fails closed; retry shortly', { retryAfter: 5 });
  }

  async take(caller: string, limits: CallerLimits, cost: LimitCost): Promise<TokenReservation> {
    checkSize(limits, cost);
    let out: string[];
    try {
      out = await this.run('ajarTake', caller, [limits.rpm, limits.tpm, cost.requests, cost.tokens]);
    } catch (e) {
      const error = this.unavailable(e);
      if (error) throw error;
      return this.fallback.take(caller, limits, cost);
    }
    const [ok, requests, tokens] = [out[0] === '1', Number(out[1]), Number(out[2])];
    this.remember(caller, requests, tokens);
    if (!ok) {
      if (requests + 1e-9 < cost.requests) throw requestsExceeded(limits, ((cost.requests - requests) * 60_000) / limits.rpm);
      throw tokensExceeded(limits, cost.tokens, ((cost.tokens - tokens) * 60_000) / limits.tpm);
    }
    let settled = false;
    return {
      reserved: cost.tokens,
      settle: async (used: number) => {
        if (settled || used >= cost.tokens) return;
        settled = true;
        try {
          const back = await this.run('ajarGive', caller, [limits.rpm, limits.tpm, cost.tokens - used]);
          this.remember(caller, Number(back[0]), Number(back[1]));
        } catch {
          // NOTE: a refund lost to an outage only makes the limit stricter for a minute.
        }
      },
    };
  }

  /** The caller's levels as Redis last said, for the headers (at most 10,000 callers, the oldest forgotten). */
  private remember(caller: string, requests: number, tokens: number): void {
    this.known.delete(caller);
    if (this.known.size >= 10_000) this.known.delete(this.known.keys().next().value!);
    this.known.set(caller, { requests, tokens, at: Date.now() });
  }

  headers(caller: string, limits: CallerLimits): Record<string, string> {
    const k = this.known.get(caller);
    if (!k) return this.fallback.headers(caller, limits);
    const dt = Math.max(0, Date.now() - k.at);
    const requests = Math.min(limits.rpm, k.requests + (dt * limits.rpm) / 60_000);
    const tokens = Math.min(limits.tpm, k.tokens + (dt * limits.tpm) / 60_000);
    return limitHeaders(limits, { requests, tokens }, {
      requests: ((limits.rpm - requests) * 60_000) / limits.rpm, tokens: ((limits.tpm - tokens) * 60_000) / limits.tpm,
    });
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }
}
