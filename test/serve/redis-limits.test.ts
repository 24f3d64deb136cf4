// Requests and tokens per minute shared by replicas through Redis ($AJAR_TEST_REDIS, default redis://127.0.0.1:6379;
// skipped, saying why, when it does not answer): two apps, each with its own Redis connection as two replicas
// would have, hold one key's limits together; with Redis gone, the server fails closed (503) or, if told, open.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { RedisLimiter } from '../../src/serve/redis-limiter.js';
import { bearer, harness, MODEL_ID, type Harness } from './helpers.js';
import { REDIS_URL, redisMissing } from './services.js';

const skip = await redisMissing();
const code = (r: { json: () => unknown }): string => (r.json() as { error: { code: string } }).error.code;

describe('serve: limits shared through Redis', { skip }, () => {
  const prefix = `ajar-test-${randomBytes(6).toString('hex')}`;
  let a: Harness;
  let b: Harness;
  const limiters: RedisLimiter[] = [];

  before(async () => {
    for (let i = 0; i < 2; i++) {
      const l = new RedisLimiter(REDIS_URL, { prefix });
      await l.ready();
      limiters.push(l);
    }
    a = await harness({ limiter: limiters[0], clock: Date.now }, true);
    // The second replica: its own app, store and Redis connection; the tests copy each key record into its store.
    b = await harness({ limiter: limiters[1], clock: Date.now });
  });
  after(async () => {
    await a?.close();
    await b?.close();
    for (const l of limiters) await l.close();
  });

  it('a key\'s requests per minute hold across replicas', async () => {
    const { key, id } = await a.key({ rpm: 3 });
    await b.store.createKey((await a.store.getKey(id))!);
    const statuses = [];
    for (const h of [a, b, a, b]) statuses.push((await h.app.inject({ method: 'GET', url: '/v1/models', headers: bearer(key) })).statusCode);
    assert.deepEqual(statuses, [200, 200, 200, 429]);
  });

  it('tokens per minute: reserved before generation on one replica, seen by the other; unused tokens come back', async () => {
    const { key, id } = await a.key({ tpm: 30 });
    await b.store.createKey((await a.store.getKey(id))!);
    const complete = (h: Harness, max: number) => h.app.inject({
      method: 'POST', url: '/v1/completions', headers: bearer(key),
      payload: { model: MODEL_ID, prompt: 'Hello world', max_tokens: max, temperature: 0 },
    });
    const first = await complete(a, 10); // holds 2 + 10, uses all
    assert.equal(first.statusCode, 200, first.body);
    const second = await complete(b, 10);
    assert.equal(second.statusCode, 200, second.body);
    assert.ok(Number(second.headers['x-ratelimit-remaining-tokens']) <= 7, `b saw a's tokens: ${second.headers['x-ratelimit-remaining-tokens']}`);
    const third = await complete(a, 10);
    assert.deepEqual([third.statusCode, code(third)], [429, 'tokens_per_minute_exceeded']);
  });

  it('fails closed when Redis is gone (503 limiter_unavailable), or open when told', async () => {
    for (const [failMode, status] of [['closed', 503], ['open', 200]] as const) {
      const dead = new RedisLimiter('redis://127.0.0.1:1', { failMode, prefix });
      const h = await harness({ limiter: dead });
      try {
        const { key } = await h.key();
        const r = await h.app.inject({ method: 'GET', url: '/v1/models', headers: bearer(key) });
        assert.equal(r.statusCode, status, r.body);
        if (status === 503) assert.equal(code(r), 'limiter_unavailable');
      } finally {
        await h.close();
        await dead.close();
      }
    }
  });
});
