// Group commit: records handed in while a write is in flight (or within the same event-loop turn) are written
// together in the next one, so N concurrent requests cost one transaction and one log flush, not N. Each add()
// resolves only once its own batch has committed, so "recorded before the response ends" still holds.

interface Pending<T> {
  item: T;
  resolve: () => void;
  reject: (e: unknown) => void;
}

export class GroupCommit<T> {
  private queue: Array<Pending<T>> = [];
  private flushing = false;
  private done: Array<() => void> = [];

  /** write: commits a whole batch atomically (or throws, committing nothing). */
  constructor(private readonly write: (items: T[]) => Promise<void>, private readonly maxBatch = 256) {}

  add(item: T): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (!this.flushing) {
        this.flushing = true;
        setImmediate(() => void this.flush());
      }
    });
  }

  private async flush(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, this.maxBatch);
      try {
        await this.write(batch.map((p) => p.item));
        for (const p of batch) p.resolve();
      } catch (e) {
        if (batch.length === 1) {
          batch[0].reject(e);
          continue;
        }
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
    this.flushing = false;
    for (const f of this.done.splice(0)) f();
  }

  /** Resolves once every record handed in so far is written (or failed). */
  idle(): Promise<void> {
    return this.flushing ? new Promise((resolve) => this.done.push(resolve)) : Promise.resolve();
  }
}
