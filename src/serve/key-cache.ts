// Key records for authentication. A store that tells of every key change (PostgreSQL: a trigger NOTIFYs, each replica
// LISTENs; pg-store.ts's watchKeys) lets each replica keep the records it read for up to `ttlMs`, dropping one the
// moment it changes anywhere: revocation, rotation, scope and limit changes still reach every replica within a second
// (the lifetime is the backstop), and a request costs no database round trip for its key. While notifications are not
// flowing (not started, connection lost and reconnecting), and for stores without them (SQLite, whose read costs
// microseconds), every request reads the store.
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

export class KeyCache {
  private readonly entries = new Map<string, { rec: KeyRecord | undefined; at: number }>();
  private live = false;
  /** Bumped by every change: a read that began before one must not fill the cache with what it read. */
  private generation = 0;
  private stop: (() => Promise<void>) | undefined;
  private closed = false;

  /** onChange: told each changed key id (null: any) after the cache dropped it. */
  constructor(private readonly store: Store, private readonly onChange: (id: string | null) => void = () => {},
    private readonly ttlMs = KEY_CACHE_MS) {}

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
    const hit = this.entries.get(id);
    const now = performance.now();
    if (hit !== undefined && now - hit.at < this.ttlMs) return hit.rec;
    const generation = this.generation;
    const rec = await this.store.getKey(id);
    if (this.live && generation === this.generation) {
      this.entries.delete(id);
      if (this.entries.size >= MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value!);
      this.entries.set(id, { rec, at: now });
    }
    return rec;
  }

  private changed(id: string | null): void {
    this.generation++;
    if (id === null) this.entries.clear();
    else this.entries.delete(id);
    this.onChange(id);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.live = false;
    this.entries.clear();
    await this.stop?.();
  }
}
