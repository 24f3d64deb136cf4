// One model, one generation at a time: at most `depth` waiting requests. Generation is CPU-bound and synchronous
// per token, so running two at once would only interleave them; the queue makes the order explicit. Waiters carry a
// lane (an adapter over a shared base): the next to run is the oldest waiter of the least recently served lane, so
// a burst for one adapter cannot starve another; within a lane the order is FIFO.
import { ServeError } from './errors.js';

interface Waiter {
  resolve: (release: () => void) => void;
  reject: (e: unknown) => void;
  signal?: AbortSignal;
  onAbort?: () => void;
  lane: string;
}

export class GenerationQueue {
  private busy = false;
  private readonly waiters: Waiter[] = [];
  /** Lane -> the turn it was last served (a counter); lanes never served count as oldest. */
  private readonly servedAt = new Map<string, number>();
  private turn = 0;

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
  acquire(signal?: AbortSignal, lane = ''): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (!this.busy) {
      this.busy = true;
      this.servedAt.set(lane, this.turn++);
      return Promise.resolve(this.releaser());
    }
    if (this.waiters.length >= this.depth) {
      return Promise.reject(new ServeError('queue_full',
        `the model's request queue is full (${this.depth} waiting); retry later`, { retryAfter: this.retryAfterSec }));
    }
    return new Promise((resolve, reject) => {
      const w: Waiter = { resolve, reject, signal, lane };
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

  /** Remove and return the oldest waiter of the least recently served lane. */
  private pickNext(): Waiter | undefined {
    let best = -1;
    let bestAt = Infinity;
    for (let i = 0; i < this.waiters.length; i++) {
      const at = this.servedAt.get(this.waiters[i].lane) ?? -1;
      if (at < bestAt) {
        best = i;
        bestAt = at;
      }
    }
    return best < 0 ? undefined : this.waiters.splice(best, 1)[0];
  }

  private releaser(): () => void {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const next = this.pickNext();
      if (!next) {
        this.busy = false;
        return;
      }
      this.servedAt.set(next.lane, this.turn++);
      if (next.onAbort) next.signal!.removeEventListener('abort', next.onAbort);
      next.resolve(this.releaser());
    };
  }
}
