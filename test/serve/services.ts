// The services the scale-out tests use: PostgreSQL ($AJAR_TEST_POSTGRES, default postgres://postgres@127.0.0.1:5432/test)
// and Redis ($AJAR_TEST_REDIS, default redis://127.0.0.1:6379). Each helper returns a reason string instead when
// the service does not answer, for the test's skip message.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { RedisLimiter } from '../../src/serve/redis-limiter.js';

export const PG_URL = process.env.AJAR_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/test';
export const REDIS_URL = process.env.AJAR_TEST_REDIS ?? 'redis://127.0.0.1:6379';

/** A fresh schema in the test database (its URL selects it through libpq's options), or why there is none. */
export async function pgSchema(): Promise<{ url: string; drop: () => Promise<void> } | string> {
  const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 3_000 });
  try {
    await client.connect();
  } catch (e) {
    return `PostgreSQL at ${PG_URL} does not answer (${(e as Error).message}); set AJAR_TEST_POSTGRES`;
  }
  const schema = `ajar_test_${randomBytes(6).toString('hex')}`;
  await client.query(`CREATE SCHEMA ${schema}`);
  await client.end();
  const url = `${PG_URL}${PG_URL.includes('?') ? '&' : '?'}options=${encodeURIComponent(`-c search_path=${schema}`)}`;
  return {
    url,
    drop: async () => {
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      await c.query(`DROP SCHEMA ${schema} CASCADE`);
      await c.end();
    },
  };
}

/** false when Redis answers, else why not. */
export async function redisMissing(): Promise<string | false> {
  const probe = new RedisLimiter(REDIS_URL, { prefix: 'ajar-probe' });
  try {
    await probe.ready(2_000);
    return false;
  } catch (e) {
    return `Redis at ${REDIS_URL} does not answer (${(e as Error).message}); set AJAR_TEST_REDIS`;
  } finally {
    await probe.close();
  }
}
