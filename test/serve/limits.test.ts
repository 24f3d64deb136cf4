// Limits in-process: requests and tokens per minute (429, Retry-After, x-ratelimit-* headers), unused token
// refunds, quotas per period, the per-model queue (503 when full), plus the token bucket and queue on their own.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { generate } from '../../src/generate/index.js';
import { formatReset, TokenBucket } from '../../src/serve/limits.js';
import { GenerationQueue } from '../../src/serve/queue.js';
import { ServeError } from '../../src/serve/errors.js';
import { bearer, harness, MODEL_ID, tinyModel, type Harness } from './helpers.js';

interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string };
}

const LIMIT_HEADERS = ['requests', 'tokens'].flatMap((k) => ['limit', 'remaining', 'reset'].map((w) => `x-ratelimit-${w}-${k}`));

describe('serve: rate limits and quotas', () => {
  let h: Harness;

  before(async () => {
    h = await harness();
  });
  after(async () => h.close());

  const complete = (key: string, body: Record<string, unknown>) => h.app.inject({
    method: 'POST', url: '/v1/completions', headers: bearer(key), payload: { model: MODEL_ID, temperature: 0, ...body },
  });

  it('limits requests per minute with 429, Retry-After and the six headers on every response', async () => {
    const { key } = await h.key({ rpm: 2 });
    const ok = await h.app.inject({ method: 'GET', url: '/v1/models', headers: bearer(key) });
    const invalid = await complete(key, { prompt: 'x', temperature: 'hot' });
    const limited = await h.app.inject({ method: 'GET', url: '/v1/models', headers: bearer(key) });
    for (const r of [ok, invalid, limited]) {
      for (const name of LIMIT_HEADERS) assert.ok(r.headers[name] !== undefined, `${r.statusCode} carries ${name}`);
    }
    assert.equal(ok.headers['x-ratelimit-limit-requests'], '2');
    assert.equal(ok.headers['x-ratelimit-remaining-requests'], '1');
    assert.equal(invalid.statusCode, 400);
    assert.equal(limited.statusCode, 429);
    const e = limited.json<ErrorBody>().error;
    assert.deepEqual([e.code, e.type], ['requests_per_minute_exceeded', 'rate_limit_error']);
    assert.equal(limited.headers['retry-after'], '30'); // one request comes back every 60 s / 2
    assert.equal(limited.headers['x-ratelimit-remaining-requests'], '0');
    assert.equal(limited.headers['x-ratelimit-reset-requests'], '1m0s');
    h.now.t += 30_000;
    assert.equal((await h.app.inject({ method: 'GET', url: '/v1/models', headers: bearer(key) })).statusCode, 200);
  });

  it('limits tokens per minute by reserving prompt + max_tokens', async () => {
    const { key } = await h.key({ tpm: 15 });
    const first = await complete(key, { prompt: 'Hello world', max_tokens: 10 }); // 2 + 10 tokens
    assert.equal(first.statusCode, 200, first.body);
    assert.equal(first.headers['x-ratelimit-remaining-tokens'], '3');
    const second = await complete(key, { prompt: 'Hello world', max_tokens: 10 });
    assert.equal(second.statusCode, 429);
    assert.equal(second.json<ErrorBody>().error.code, 'tokens_per_minute_exceeded');
    assert.ok(Number(second.headers['retry-after']) >= 1);
    const huge = await complete(key, { prompt: 'Hello world', max_tokens: 20 });
    assert.equal(huge.statusCode, 429);
    assert.deepEqual([huge.json<ErrorBody>().error.code, huge.json<ErrorBody>().error.param], ['request_too_large', 'max_tokens']);
  });

  it('gives back the tokens a request reserved but did not use', async () => {
    const { model, tokenizer } = tinyModel();
    const direct = await generate(model, tokenizer, tokenizer.encode('Hello world'), { maxNewTokens: 2, temperature: 0 });
    const stop = tokenizer.decode([direct.ids[1]]).trim(); // generation ends inside the second token
    const { key } = await h.key({ tpm: 30 });
    const r = await complete(key, { prompt: 'Hello world', max_tokens: 20, stop });
    assert.equal(r.statusCode, 200, r.body);
    const usage = r.json<{ usage: { total_tokens: number } }>().usage;
    assert.equal(usage.total_tokens, 4);
    assert.equal(r.headers['x-ratelimit-remaining-tokens'], String(30 - usage.total_tokens));
  });

  it('enforces a token quota per period, clamping max_tokens to what is left', async () => {
    const { key, id } = await h.key({ quotaTokens: 12, quotaPeriod: 'day' });
    const first = await complete(key, { prompt: 'Hello world', max_tokens: 50 });
    assert.equal(first.statusCode, 200, first.body);
    const body = first.json<{ usage: { total_tokens: number }; choices: Array<{ finish_reason: string }> }>();
    assert.equal(body.usage.total_tokens, 12);
    assert.equal(body.choices[0].finish_reason, 'length');
    const second = await complete(key, { prompt: 'Hello world', max_tokens: 1 });
    assert.equal(second.statusCode, 429);
    const e = second.json<ErrorBody>().error;
    assert.deepEqual([e.code, e.type], ['insufficient_quota', 'insufficient_quota']);
    const untilMidnight = (Date.UTC(2026, 0, 16) - h.now.t) / 1000;
    assert.equal(Number(second.headers['retry-after']), Math.ceil(untilMidnight));
    assert.equal(await h.store.tokensUsedSince(id, 0), 12);
    h.now.t = Date.UTC(2026, 0, 16, 0, 0, 1);
    assert.equal((await complete(key, { prompt: 'Hello world', max_tokens: 1 })).statusCode, 200, 'a new day, a new quota');
  });
});

describe('serve: the per-model queue', () => {
  it('answers 503 queue_full with Retry-After when the queue is full', async () => {
    const h = await harness({ limits: { queueDepth: 1 } });
    try {
      const { key } = await h.key();
      const send = () => h.app.inject({
        method: 'POST', url: '/v1/completions', headers: bearer(key),
        payload: { model: MODEL_ID, prompt: 'Hello', max_tokens: 16, temperature: 0 },
      });
      const rs = await Promise.all([send(), send(), send()]);
      assert.deepEqual(rs.map((r) => r.statusCode).sort(), [200, 200, 503]);
      const full = rs.find((r) => r.statusCode === 503)!;
      assert.equal(full.json<ErrorBody>().error.code, 'queue_full');
      assert.equal(full.json<ErrorBody>().error.type, 'server_error');
      assert.equal(full.headers['retry-after'], '1');
      const metrics = (await h.app.inject({ method: 'GET', url: '/metrics' })).body;
      assert.match(metrics, /ajar_rate_limited_total\{code="queue_full"\} 1/);
      assert.match(metrics, /ajar_queue_depth\{model="gpt2-tiny"\} 0/);
      const [row] = (await h.store.listUsage({})).filter((u) => u.status === 503);
      assert.deepEqual([row.promptTokens, row.completionTokens], [0, 0]);
    } finally {
      await h.close();
    }
  });

  it('runs one at a time, in order, and drops a waiter whose request is aborted', async () => {
    const q = new GenerationQueue(2);
    const order: string[] = [];
    const r1 = await q.acquire();
    const ac = new AbortController();
    const p2 = q.acquire(ac.signal);
    const p3 = q.acquire().then((rel) => {
      order.push('third');
      return rel;
    });
    assert.equal(q.waiting, 2);
    await assert.rejects(q.acquire(), (e: unknown) => e instanceof ServeError && e.code === 'queue_full');
    ac.abort('gone');
    await assert.rejects(p2, (e: unknown) => e === 'gone');
    assert.equal(q.waiting, 1);
    r1();
    const r3 = await p3;
    assert.deepEqual(order, ['third']);
    assert.equal(q.running, 1);
    r3();
    r3(); // idempotent
    assert.equal(q.running, 0);
  });
});

describe('serve: token bucket', () => {
  it('refills linearly to capacity over a minute', () => {
    const b = new TokenBucket(60, 0);
    assert.ok(b.tryTake(60, 0));
    assert.ok(!b.tryTake(1, 0));
    assert.equal(b.waitMs(1, 0), 1000);
    assert.equal(b.available(30_000), 30);
    assert.equal(b.available(600_000), 60, 'never above capacity');
    b.tryTake(10, 600_000);
    b.give(100, 600_000);
    assert.equal(b.available(600_000), 60);
  });

  it('formats resets as OpenAI does', () => {
    assert.deepEqual([formatReset(20), formatReset(1500), formatReset(360_000)], ['20ms', '1.5s', '6m0s']);
  });
});
