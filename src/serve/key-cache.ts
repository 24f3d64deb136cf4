// Key records for authentication. A store that tells of every key change (PostgreSQL: a trigger NOTIFYs, each replica
// LISTENs; pg-store.ts's watchKeys) lets each replica keep the records it read for up to `ttlMs`, dropping one the
// moment it changes anywhere: revocation, rotation, scope and limit changes still reach every replica within a second
// (the lifetime is the backstop), and a request costs no database round trip for its key. While notifications are not
// flowing (not started, connection lost and reconnecting), and for stores without them (SQLite, whose read costs
// microseconds), every request reads the store.
// NOTE: refresh-ahead: a request that finds its record past half its lifetime is answered from the cache and starts
// one read in the background, so a key in steady use is never read on a request's path; concurrent requests that
// find no fresh record share one read (single flight) instead of each reading.
import { performance } from 'node:perf_hooks';
import type { KeyRecord, Store } from './store.js';

/** What a store offers when it can announce key changes: the id of each changed key, or null for "any of them". */
export interface KeyWatchingStore extends Store {
  watchKeys(onChange: (id: string | null) => void, onState?: (up: boolean) => void): Promise<() => Promise<void>>;
}

function watches(store: Store): store is KeyWatchingStore {
  return typeof (store as Partial<KeyWatchingStore>).watchKeys === 'function';
}

/** The cache's lifetime for a record: the backstop should a notification be lost without the connection dropping. */
export const KEY_CACHE_MS = 1_000;
const MAX_ENTRIES = 10_000;

/** A read of one key: when it began (the age of what it returns) and the cache generation it began in. */
interface Read {
  at: number;
  generation: number;
  result: Promise<KeyRecord | undefined>;
}

export class KeyCache {
  /** at: when the read that returned rec began, so a record is never served more than ttlMs after it was read. */
  private readonly entries = new Map<string, { rec: KeyRecord | undefined; at: number }>();
  /** The read in flight per key id (at most one). */
  private readonly reads = new Map<string, Read>();
  private live = false;
  /** Bumped by every change: a read that began before one must not fill the cache with what it read. */
  private generation = 0;
  private stop: (() => Promise<void>) | undefined;
  private closed = false;

  /**
   * onChange: told each changed key id (null: any) after the cache dropped it. onRefreshError: told when a
   * background refresh fails (the record then lapses at its lifetime, and the next request reads the store itself).
   */
  constructor(private readonly store: Store, private readonly onChange: (id: string | null) => void = () => {},
    private readonly ttlMs = KEY_CACHE_MS, private readonly onRefreshError: (e: unknown) => void = () => {}) {}

  /** Start listening, if the store can; until then (or if it cannot), every get() reads the store. */
  async start(): Promise<void> {
    if (!watches(this.store)) return;
    const stop = await this.store.watchKeys((id) => this.changed(id), (up) => {
      this.live = up;
      if (!up) this.changed(null);
    });
    if (this.closed) await stop();
    else this.stop = stop;
  }

  /** Whether records are being served from the cache (notifications flowing). */
  get caching(): boolean {
    return this.live;
  }

  async get(id: string): Promise<KeyRecord | undefined> {
    if (!this.live) return this.store.getKey(id);
    const now = performance.now();
    const hit = this.entries.get(id);
    if (hit !== undefined && now - hit.at < this.ttlMs) {
      if (now - hit.at >= this.ttlMs / 2 && !this.reads.has(id)) {
        this.read(id, now).result.catch((e: unknown) => this.onRefreshError(e));
      }
      return hit.rec;
    }
    // NOTE: a read in flight began after the last change (changed() forgets older ones) and less than a lifetime ago,
    // so what it returns is as fresh as a read begun now could promise.
    const pending = this.reads.get(id);
    if (pending !== undefined && now - pending.at < this.ttlMs) return pending.result;
    return this.read(id, now).result;
  }

  /** Read the key from the store, filling the cache if nothing changed meanwhile. */
  private read(id: string, at: number): Read {
    const generation = this.generation;
    const r: Read = {
      at, generation, result: this.store.getKey(id).then((rec) => {
        if (this.live && generation === this.generation) {
          this.entries.delete(id);
          if (this.entries.size >= MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value!);
          this.entries.set(id, { rec, at });
        }
        return rec;
      }).finally(() => {
        if (this.reads.get(id) === r) this.reads.delete(id);
      }),
    };
    this.reads.set(id, r);
    return r;
  }

  private changed(id: string | null): void {
    this.generation++;
    if (id === null) {
      this.entries.clear();
      this.reads.clear();
    } else {
      this.entries.delete(id);
      this.reads.delete(id);
    }
    this.onChange(id);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.live = false;
    this.entries.clear();
    this.reads.clear();
    await this.stop?.();
  }
}
