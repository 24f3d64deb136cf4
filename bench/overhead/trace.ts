// Diagnostics for npm run bench:serve's servers (--trace FILE): every store and limiter call's duration, the server's
// own time per request (onRequest to onResponse), and the event loop's delay, written as JSON at SIGTERM.
import { writeFileSync } from 'node:fs';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import type { FastifyInstance } from 'fastify';
import type { Limiter } from '../../src/serve/limits.js';
import type { Store } from '../../src/serve/store.js';

export class Trace {
  readonly ops: Record<string, number[]> = {};
  readonly loop = monitorEventLoopDelay({ resolution: 1 });

  constructor() {
    this.loop.enable();
  }

  private add(op: string, ms: number): void {
    (this.ops[op] ??= []).push(ms);
  }

  store(s: Store): Store {
    return new Proxy(s, {
      get: (target, prop) => {
        const v: unknown = Reflect.get(target, prop, target);
        if (typeof v !== 'function') return v;
        return (...args: unknown[]): unknown => {
          const t0 = performance.now();
          const out: unknown = (v as (...a: unknown[]) => unknown).apply(target, args);
          if (out instanceof Promise) {
            const done = (): void => this.add(`store.${String(prop)}`, performance.now() - t0);
            out.then(done, done);
          }
          return out;
        };
      },
    });
  }

  limiter(l: Limiter): Limiter {
    return {
      shared: l.shared,
      take: async (caller, limits, cost) => {
        const t0 = performance.now();
        const r = await l.take(caller, limits, cost);
        this.add('limiter.take', performance.now() - t0);
        return {
          reserved: r.reserved,
          settle: async (used) => {
            const t1 = performance.now();
            await r.settle(used);
            this.add('limiter.settle', performance.now() - t1);
          },
        };
      },
      headers: (c, lim) => l.headers(c, lim),
      close: () => l.close(),
    };
  }

  hooks(app: FastifyInstance): void {
    const started = new WeakMap<object, number>();
    app.addHook('onRequest', async (req) => {
      started.set(req, performance.now());
    });
    app.addHook('onResponse', async (req) => {
      const t0 = started.get(req);
      if (t0 !== undefined) this.add('server.request', performance.now() - t0);
    });
  }

  write(file: string): void {
    this.loop.disable();
    const l = this.loop;
    writeFileSync(file, JSON.stringify({
      ops: this.ops,
      loop_ms: { p50: l.percentile(50) / 1e6, p99: l.percentile(99) / 1e6, max: l.max / 1e6, mean: l.mean / 1e6 },
    }));
  }
}
