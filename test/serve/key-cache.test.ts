// The key cache on a store that announces key changes (a fake, so each read's timing is the test's to choose):
// one read per key for concurrent requests, refresh-ahead that never holds a request on a read while the record is
// within its lifetime, a record's age counted from when its read began, and changes that forget reads in flight.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KeyCache, type KeyWatchingStore } from '../../src/serve/key-cache.js';
import type { KeyRecord, Store } from '../../src/serve/store.js';

function record(id: string, revokedAt: number | null = null): KeyRecord {
  return {
    id, name: id, hash: Buffer.alloc(32), createdAt: 0, rotatedAt: null, revokedAt, expiresAt: null, rpm: null, tpm: null,
    quotaTokens: null, quotaPeriod: null, models: null,
  };
}

interface Read {
  id: string;
  resolve: (rec: KeyRecord | undefined) => void;
  reject: (e: Error) => void;
}

/** A store whose getKey answers only when the test says, and whose key changes the test announces. */
function fakeStore(): { store: KeyWatchingStore; reads: Read[]; notify: (id: string | null) => void } {
  const reads: Read[] = [];
  let onChange: (id: string | null) => void = () => {};
  const store = {
    getKey: (id: string) => new Promise<KeyRecord | undefined>((resolve, reject) => reads.push({ id, resolve, reject })),
    watchKeys: async (f: (id: string | null) => void, onState?: (up: boolean) => void) => {
      onChange = f;
      onState?.(true);
      return async () => {};
    },
  } as unknown as Store as KeyWatchingStore;
  return { store, reads, notify: (id) => onChange(id) };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Whether p has settled within a few turns of the event loop. */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  void p.then(() => { done = true; }, () => { done = true; });
  await new Promise((r) => setImmediate(r));
  return done;
}

describe('serve: key cache', () => {
  it('concurrent requests for a key not cached share one read', async () => {
    const f = fakeStore();
    const cache = new KeyCache(f.store, () => {}, 1_000);
    await cache.start();
    const gets = Array.from({ length: 5 }, () => cache.get('k1'));
    assert.equal(f.reads.length, 1);
    f.reads[0].resolve(record('k1'));
    for (const rec of await Promise.all(gets)) assert.equal(rec?.id, 'k1');
    assert.equal((await cache.get('k1'))?.id, 'k1');
    assert.equal(f.reads.length, 1, 'then served from the cache');
    await cache.close();
  });

  it('past half its lifetime a record is served at once and read again in the background, once', async () => {
    const f = fakeStore();
    const cache = new KeyCache(f.store, () => {}, 1_000);
    await cache.start();
    const first = cache.get('k1');
    f.reads[0].resolve(record('k1'));
    await first;
    await sleep(600);
    const a = cache.get('k1');
    const b = cache.get('k1');
    assert.ok(await settled(a), 'answered without waiting for the store');
    assert.equal((await b)?.id, 'k1');
    assert.equal(f.reads.length, 2, 'one background read for both');
    f.reads[1].resolve(record('k1', 5));
    await sleep(500); // past the first read's lifetime, within the second's
    const next = cache.get('k1');
    assert.ok(await settled(next), 'served at once');
    assert.equal((await next)?.revokedAt, 5, 'the refreshed record');
    await cache.close();
  });

  it("a record lapses a lifetime after its read began, and then a request waits for the store", async () => {
    const f = fakeStore();
    const cache = new KeyCache(f.store, () => {}, 150);
    await cache.start();
    const first = cache.get('k1');
    await sleep(100); // the read takes 100 ms: the record it returns is 100 ms old already
    f.reads[0].resolve(record('k1'));
    await first;
    await sleep(60);
    const late = cache.get('k1');
    assert.equal(f.reads.length, 2, 'read again');
    assert.equal(await settled(late), false, 'and the request waits for it');
    f.reads[1].resolve(record('k1', 7));
    assert.equal((await late)?.revokedAt, 7);
    await cache.close();
  });

  it('a change drops the record and any read that began before it', async () => {
    const f = fakeStore();
    const changed: Array<string | null> = [];
    const cache = new KeyCache(f.store, (id) => changed.push(id), 1_000);
    await cache.start();
    const first = cache.get('k1');
    f.notify('k1'); // the key changes while the first read is in flight
    const second = cache.get('k1');
    assert.equal(f.reads.length, 2, 'a request after the change does not join the read from before it');
    f.reads[0].resolve(record('k1'));
    f.reads[1].resolve(record('k1', 9));
    assert.equal((await first)?.revokedAt, null);
    assert.equal((await second)?.revokedAt, 9);
    // The read from before the change did not fill the cache; the one after it did.
    assert.equal((await cache.get('k1'))?.revokedAt, 9);
    f.notify(null);
    const third = cache.get('k1');
    assert.equal(f.reads.length, 3, 'a change to any key drops every record');
    f.reads[2].resolve(undefined);
    assert.equal(await third, undefined);
    assert.deepEqual(changed, ['k1', null]);
    await cache.close();
  });

  it('a failed background read is reported, and the record lapses at its lifetime', async () => {
    const f = fakeStore();
    const errors: string[] = [];
    const cache = new KeyCache(f.store, () => {}, 1_000, (e) => errors.push((e as Error).message));
    await cache.start();
    const first = cache.get('k1');
    f.reads[0].resolve(record('k1'));
    await first;
    await sleep(600);
    assert.equal((await cache.get('k1'))?.id, 'k1');
    f.reads[1].reject(new Error('connection lost'));
    await sleep(0);
    assert.deepEqual(errors, ['connection lost']);
    await sleep(450);
    const late = cache.get('k1');
    assert.equal(f.reads.length, 3);
    f.reads[2].reject(new Error('still down'));
    await assert.rejects(late, /still down/);
    await cache.close();
  });
});
