// One server of npm run bench:serve, in its own process: the same buildServer as `ajar serve`, over the store and
// limiter the flags name, or (--bare) over a store and a limiter that answer at once and keep nothing: the same
// server without the cost of authentication lookups, limits and metering. Prints "port N" once listening.
// Usage: node dist/bench/overhead/server.js --model DIR --key KEY (--bare | --db SPEC [--redis URL])
import { selectBackend } from '../../src/backends/select.js';
import { buildServer, modelSpecFromFolder, openStore } from '../../src/serve/index.js';
import type { Limiter } from '../../src/serve/limits.js';
import { nullLimiter, nullStore } from './null.js';
import { Trace } from './trace.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
}

selectBackend('js');
const key = arg('key')!;
const bare = process.argv.includes('--bare');
const store = bare ? nullStore(key) : await openStore(arg('db'));
let limiter: Limiter | undefined = bare ? nullLimiter : undefined;
const redis = arg('redis');
if (!bare && redis !== undefined) {
  const { RedisLimiter } = await import('../../src/serve/redis-limiter.js');
  const r = new RedisLimiter(redis, { prefix: 'ajar-bench' });
  await r.ready(3_000);
  limiter = r;
}
const traceFile = arg('trace');
const trace = traceFile === undefined ? undefined : new Trace();
const app = buildServer({
  models: [modelSpecFromFolder(arg('model')!, 'stub')], store: trace ? trace.store(store) : store,
  limiter: trace && limiter ? trace.limiter(limiter) : limiter,
  limits: { queueDepth: 1000, defaultRpm: 1_000_000, defaultTpm: 100_000_000, maxConnectionsPerAddress: 0 },
});
trace?.hooks(app);
await app.listen({ host: '127.0.0.1', port: 0 });
const addr = app.server.address();
console.log(`port ${typeof addr === 'object' && addr !== null ? addr.port : 0}`);
process.on('SIGTERM', () => {
  if (trace) trace.write(traceFile!);
  void app.close().then(() => store.close()).then(() => limiter?.close()).then(() => process.exit(0));
});
