// One model, one generation at a time: a FIFO of at most `depth` waiting requests. Generation is CPU-bound and
// synchronous per token, so running two at once would only interleave them; the queue makes the order explicit.
import { ServeError } from './errors.js';

interface Waiter {
  resolve: (release: () => void) => void;
  reject: (e: unknown) => void;
  signal?: AbortSignal;
  onAbort?: () => void;
}

export class GenerationQueue {
  private busy = false;
  private readonly waiters: Waiter[] = [];

  /** depth: how many requests may wait behind the running one; 0 means none may wait. */
  constructor(readonly depth: number, private readonly retryAfterSec = 1) {}

  /** Requests waiting (not counting the one running). */
  get waiting(): number {
    return this.waiters.length;
  }

  get running(): number {
    return this.busy ? 1 : 0;
  }

  /**
   * Wait for the model. Resolves with a release function (call it exactly once, in a finally);
   * throws queue_full at once when `depth` requests already wait; rejects with signal.reason when aborted.
   */
  acquire(signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (!this.busy) {
      this.busy = true;
      return Promise.resolve(this.releaser());
    }
    if (this.waiters.length >= this.depth) {
      return Promise.reject(new ServeError('queue_full',
        `the model's request queue is full (${this.depth} waiting); retry later`, { retryAfter: this.retryAfterSec }));
    }
    return new Promise((resolve, reject) => {
      const w: Waiter = { resolve, reject, signal };
      if (signal) {
        w.onAbort = () => {
          const i = this.waiters.indexOf(w);
          if (i >= 0) this.waiters.splice(i, 1);
          reject(signal.reason);
        };
        signal.addEventListener('abort', w.onAbort, { once: true });
      }
      this.waiters.push(w);
    });
  }

  private releaser(): () => void {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const next = this.waiters.shift();
      if (!next) {
        this.busy = false;
        return;
      }
      if (next.onAbort) next.signal!.removeEventListener('abort', next.onAbort);
      next.resolve(this.releaser());
    };
  }
}
