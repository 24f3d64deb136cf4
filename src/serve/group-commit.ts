// Group commit: records handed in while the writes are in flight (or within the same event-loop turn) are written
// together in the next one, so N concurrent requests cost one transaction and one log flush, not N. Each add()
// resolves only once its own batch has committed, so "recorded before the response ends" still holds.
// Up to `concurrency` batches are in flight at once (one per connection): a record that arrives while one batch is
// being written goes out at once on another connection instead of waiting a whole round trip for it to return.

interface Pending<T> {
  item: T;
  resolve: () => void;
  reject: (e: unknown) => void;
}

export class GroupCommit<T> {
  private queue: Array<Pending<T>> = [];
  private running = 0;
  private scheduled = false;
  private done: Array<() => void> = [];

  /** write: commits a whole batch atomically (or throws, committing nothing); concurrency: batches in flight at most. */
  constructor(private readonly write: (items: T[]) => Promise<void>, private readonly maxBatch = 256,
    private readonly concurrency = 1) {}

  add(item: T): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.schedule();
    });
  }

  /** Start a batch on the next turn (so the records of this turn go together), if a write may start. */
  private schedule(): void {
    if (this.scheduled || this.running >= this.concurrency || this.queue.length === 0) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.flush();
    });
  }

  private async flush(): Promise<void> {
    if (this.running >= this.concurrency || this.queue.length === 0) {
      this.maybeIdle();
      return;
    }
    this.running++;
    const batch = this.queue.splice(0, this.maxBatch);
    try {
      await this.write(batch.map((p) => p.item));
      for (const p of batch) p.resolve();
    } catch (e) {
      if (batch.length === 1) {
        batch[0].reject(e);
      } else {
        // NOTE: one bad record must not fail its neighbours: write them one by one, each failing alone.
        for (const p of batch) {
          try {
            await this.write([p.item]);
            p.resolve();
          } catch (e1) {
            p.reject(e1);
          }
        }
      }
    }
    this.running--;
    // What arrived during the write goes now: it has waited a round trip already.
    if (this.queue.length > 0) void this.flush();
    else this.maybeIdle();
  }

  private maybeIdle(): void {
    if (this.running === 0 && this.queue.length === 0 && !this.scheduled) for (const f of this.done.splice(0)) f();
  }

  /** Resolves once every record handed in so far is written (or failed). */
  idle(): Promise<void> {
    return this.running > 0 || this.queue.length > 0 || this.scheduled
      ? new Promise((resolve) => this.done.push(resolve))
      : Promise.resolve();
  }
}
