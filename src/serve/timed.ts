// The store and the limiter as the server uses them, each call timed into a Prometheus histogram by operation
// (ajar_store_duration_seconds{op="recordUsage"}, ajar_limiter_duration_seconds{op="take"}): where a request's time
// goes when it is not generating.
import { performance } from 'node:perf_hooks';
import type { Limiter } from './limits.js';
import type { Histogram } from './metrics.js';
import type { Store } from './store.js';

/** The store with every method that returns a promise timed (its op label is the method's name). */
export function timedStore(store: Store, h: Histogram): Store {
  const wrapped = new Map<PropertyKey, unknown>();
  return new Proxy(store, {
    get(target, prop) {
      const v: unknown = Reflect.get(target, prop, target);
      if (typeof v !== 'function') return v;
      let w = wrapped.get(prop);
      if (w === undefined) {
        const labels = { op: String(prop) };
        w = (...args: unknown[]): unknown => {
          const t0 = performance.now();
          const out: unknown = (v as (...a: unknown[]) => unknown).apply(target, args);
          if (!(out instanceof Promise)) return out;
          const done = (): void => h.observe(labels, (performance.now() - t0) / 1000);
          out.then(done, done);
          return out;
        };
        wrapped.set(prop, w);
      }
      return w;
    },
  });
}

/** The limiter with take() and each reservation's settle() timed, refusals included. */
export function timedLimiter(limiter: Limiter, h: Histogram): Limiter {
  const observe = (op: string, t0: number): void => h.observe({ op }, (performance.now() - t0) / 1000);
  return {
    shared: limiter.shared,
    take: async (caller, limits, cost) => {
      const t0 = performance.now();
      try {
        const r = await limiter.take(caller, limits, cost);
        return {
          reserved: r.reserved,
          settle: async (used) => {
            const t1 = performance.now();
            try {
              await r.settle(used);
            } finally {
              observe('settle', t1);
            }
          },
        };
      } finally {
        observe('take', t0);
      }
    },
    headers: (caller, limits) => limiter.headers(caller, limits),
    close: () => limiter.close(),
  };
}
