// Two `ajar serve` processes on one SQLite database hold a key's token quota together: tokens held by requests in
// flight in either process count for both (before, each process counted only its own and a 2,000-token daily
// quota was served 3,072 tokens).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { SqliteStore } from '../../src/serve/sqlite-store.js';
import { makeKey, SLOW_ID, slowModelFolder, startServe, type Live } from './live.js';

let dir: string;
let modelDir: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'ajar-quota-'));
  modelDir = slowModelFolder(join(dir, 'slow'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

it('two servers on one database never serve more than the quota between them', async (t) => {
  const db = join(dir, 'shared.db');
  const QUOTA = 500;
  const { key, id } = await makeKey(db, { quotaTokens: QUOTA, quotaPeriod: 'day' });
  const servers: Live[] = [];
  try {
    servers.push(await startServe(modelDir, db), await startServe(modelDir, db));
    const results = await Promise.all(servers.flatMap((s) => Array.from({ length: 6 }, async () => {
      const r = await fetch(`${s.url}/v1/completions`, {
        method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
        body: JSON.stringify({ model: SLOW_ID, prompt: 'ab', max_tokens: 100, temperature: 0 }),
      });
      const body = await r.json() as { usage?: { total_tokens: number }; error?: { code: string } };
      return { status: r.status, tokens: body.usage?.total_tokens ?? 0, code: body.error?.code };
    })));
    const served = results.reduce((n, r) => n + r.tokens, 0);
    assert.ok(results.every((r) => r.status === 200 || r.code === 'insufficient_quota'), JSON.stringify(results));
    assert.ok(results.some((r) => r.code === 'insufficient_quota'), 'some requests were refused');
    assert.ok(served <= QUOTA, `${served} tokens served against a quota of ${QUOTA}`);
    assert.ok(served >= QUOTA - 100, `the quota was used, not wasted: ${served}`);
    const store = SqliteStore.open(db);
    try {
      assert.equal(await store.tokensUsedSince(id, 0), served, 'the records match what clients received');
    } finally {
      await store.close();
    }
    t.diagnostic(`${served} tokens served of a ${QUOTA}-token quota by two servers (12 requests of up to 102)`);
  } finally {
    for (const s of servers) s.proc.kill('SIGTERM');
    await Promise.all(servers.map((s) => s.exited));
  }
});
