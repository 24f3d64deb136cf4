// The server's life under signals and crashes, each against a real `ajar serve` process on a loopback port:
// idle connections do not hold up exit, a second SIGTERM still records every generation, and kill -9 mid-stream
// leaves a usage record (from the journal, at the next start) within a second's tokens of what was delivered.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { UsageRecord } from '../../src/serve/index.js';
import { SqliteStore } from '../../src/serve/sqlite-store.js';
import { makeKey, openStream, sleep, slowModelFolder, startServe, until } from './live.js';

let dir: string;
let modelDir: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'ajar-life-'));
  modelDir = slowModelFolder(join(dir, 'slow'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

async function usage(dbPath: string): Promise<{ records: UsageRecord[]; journal: number }> {
  const store = SqliteStore.open(dbPath);
  try {
    return { records: await store.listUsage({}), journal: (await store.listJournal()).length };
  } finally {
    await store.close();
  }
}

describe('serve: shutdown and crashes', () => {
  it('exits at once after SIGTERM though idle connections are open', async (t) => {
    const db = join(dir, 'idle.db');
    const live = await startServe(modelDir, db, ['--shutdown-grace', '5']);
    // One connection that never sends a byte, one keep-alive connection idle after a request.
    const silent = connect(live.port, '127.0.0.1');
    await new Promise((r) => silent.once('connect', r));
    const kept = connect(live.port, '127.0.0.1');
    await new Promise((r) => kept.once('connect', r));
    kept.write('GET /health HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n');
    await new Promise((r) => kept.once('data', r));
    const t0 = performance.now();
    live.proc.kill('SIGTERM');
    assert.equal(await live.exited, 0, live.stderr());
    const seconds = (performance.now() - t0) / 1000;
    assert.ok(seconds < 2, `exit took ${seconds.toFixed(2)} s with idle connections open (grace 5 s)`);
    t.diagnostic(`exit ${seconds.toFixed(2)} s after SIGTERM with two idle connections open`);
    silent.destroy();
    kept.destroy();
  });

  it('SIGTERM lets a stream run for the grace period, then cuts and records it', async () => {
    const db = join(dir, 'grace.db');
    const { key } = await makeKey(db);
    const live = await startServe(modelDir, db, ['--shutdown-grace', '1']);
    const s = await openStream(live.url, key, 'Once', 1000);
    await until(() => s.tokens() >= 10, 20_000, 'ten tokens');
    const atSignal = s.tokens();
    const t0 = performance.now();
    live.proc.kill('SIGTERM');
    assert.equal(await live.exited, 0, live.stderr());
    const seconds = (performance.now() - t0) / 1000;
    assert.ok(seconds >= 0.9 && seconds < 3, `exit after ${seconds.toFixed(2)} s with a 1 s grace`);
    await s.done;
    assert.ok(s.tokens() > atSignal + 10 && s.tokens() < 1000, `generation went on during the grace: ${atSignal} -> ${s.tokens()}`);
    const rec = (await usage(db)).records.find((r) => r.requestId === s.requestId);
    assert.deepEqual([rec?.completionTokens, rec?.finishReason, rec?.status], [s.tokens(), 'shutdown', 503]);
  });

  it('a second SIGTERM cuts the streams at once and still records each', async () => {
    const db = join(dir, 'double.db');
    const { key } = await makeKey(db);
    const live = await startServe(modelDir, db, ['--shutdown-grace', '30']);
    const running = await openStream(live.url, key, 'Once upon a time', 1000);
    // The second waits in the model's queue behind the first (no response headers until it runs).
    const queued = fetch(`${live.url}/v1/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      body: JSON.stringify({ model: 'slow', prompt: 'Another', max_tokens: 1000, stream: true }),
    });
    await until(() => running.tokens() >= 10, 20_000, 'ten tokens');
    const t0 = performance.now();
    live.proc.kill('SIGTERM');
    await sleep(300);
    live.proc.kill('SIGTERM');
    assert.equal(await live.exited, 0, live.stderr());
    assert.ok((performance.now() - t0) / 1000 < 5, 'the second signal did not wait for the 30 s grace');
    const body = await running.done;
    assert.match(body, /"code":"server_closing"/, `the cut stream says why it ended: ${body.slice(-300)}`);
    const { records, journal } = await usage(db);
    assert.equal(journal, 0, 'no journal entry is left behind');
    const rec = records.find((r) => r.requestId === running.requestId);
    assert.ok(rec, `a record for the running stream: ${JSON.stringify(records)}`);
    assert.equal(rec.completionTokens, running.tokens(), 'the record counts exactly the tokens delivered');
    assert.equal(rec.finishReason, 'shutdown');
    assert.equal(rec.status, 503);
    const q = await queued;
    assert.equal(q.status, 503);
    assert.equal((await q.json() as { error: { code: string } }).error.code, 'server_closing');
    const qrec = records.find((r) => r.requestId === q.headers.get('x-request-id'));
    assert.ok(qrec, 'a record for the queued request');
    assert.deepEqual([qrec.completionTokens, qrec.status], [0, 503]);
  });

  it('kill -9 mid-stream: the next start records what was delivered, within one second of tokens', async (t) => {
    const db = join(dir, 'kill.db');
    const { key } = await makeKey(db);
    const live = await startServe(modelDir, db);
    const s = await openStream(live.url, key, 'The', 1000);
    await until(() => s.tokens() >= 40, 30_000, 'forty tokens');
    await sleep(1_500);
    const rate = s.rate();
    live.proc.kill('SIGKILL');
    await live.exited;
    await s.done;
    const delivered = s.tokens();
    const before2 = await usage(db);
    assert.equal(before2.records.length, 0, 'nothing recorded yet: the process died mid-stream');
    assert.equal(before2.journal, 1, 'the stream is in the journal');
    const again = await startServe(modelDir, db);
    assert.match(again.stderr(), /recorded 1 generation/);
    again.proc.kill('SIGTERM');
    await again.exited;
    const { records, journal } = await usage(db);
    assert.equal(journal, 0);
    const rec = records.find((r) => r.requestId === s.requestId);
    assert.ok(rec, 'the journal became a usage record');
    assert.equal(rec.finishReason, 'interrupted');
    assert.equal(rec.promptTokens, 3);
    const lost = delivered - rec.completionTokens;
    assert.ok(lost <= rate * 1 + 2, `lost ${lost} tokens of ${delivered}; one second is ${rate.toFixed(1)} tokens`);
    assert.ok(rec.completionTokens <= delivered + 2, `recorded ${rec.completionTokens}, delivered ${delivered}`);
    t.diagnostic(`kill -9: ${delivered} tokens delivered, ${rec.completionTokens} recorded at the restart (${rate.toFixed(0)} tokens/s)`);
  });
});
