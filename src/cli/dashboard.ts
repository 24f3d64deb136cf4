// `ajar dashboard`: the web dashboard on its own (no model, no API): flags -> store, sources, buildServer, listen.
import { dashboardOptions } from '../dashboard/index.js';
import { buildServer, defaultDbSpec, openStore } from '../serve/index.js';
import { AjarError } from '../tensor/errors.js';
import { bool, num, parseFlags, str } from './args.js';
import { adminToken } from './serve.js';

const HELP = `usage: ajar dashboard [--runs DIR] [--models DIR] [--db sqlite:PATH|postgres://...] [--host 127.0.0.1] [--port 8090]
                      [--admin-token-file F]

The web dashboard at http://HOST:PORT/ui: training runs (loss, learning rate, tokens/s, epsilon; live while a run
trains), model folders and releases (card, results, licence, checksums), API keys, usage per key and day, the plan
(open a scenario, edit a number, see it recompute). Sign in with the admin token. See docs/dashboard.md.

  --runs DIR              training runs: every folder under DIR holding a metrics.jsonl ('ajar train --out')
  --models DIR            model folders, adapters, open releases, closed bundles and hybrid releases under DIR
  --db SPEC               the store of keys, usage and audit, as 'ajar serve' and 'ajar keys' use it (default ${defaultDbSpec()})
  --admin-token-file F    the admin token (else the AJAR_ADMIN_TOKEN variable); at least 16 characters
  --host, --port          where to listen (default 127.0.0.1:8090)

The playground needs a served model: run 'ajar serve --model DIR --dashboard' instead.`;

export async function dashboardCommand(argv: string[]): Promise<number> {
  const p = parseFlags('dashboard', argv, {
    runs: { type: 'string' }, models: { type: 'string' }, db: { type: 'string' }, host: { type: 'string' },
    port: { type: 'string' }, 'admin-token-file': { type: 'string' }, help: { type: 'boolean', short: 'h' },
  });
  if (bool(p, 'help')) {
    console.log(HELP);
    return 0;
  }
  const token = adminToken(str(p, 'admin-token-file'), 'dashboard');
  if (token === undefined) {
    throw new AjarError('bad_flag', 'ajar dashboard: an admin token is required to sign in: give --admin-token-file F (or set AJAR_ADMIN_TOKEN)');
  }
  const host = str(p, 'host') ?? '127.0.0.1';
  const port = num('dashboard', p, 'port', { int: true, min: 0, max: 65535 }) ?? 8090;
  const dashboard = dashboardOptions({ runs: str(p, 'runs'), models: str(p, 'models') });
  const dbSpec = str(p, 'db') ?? defaultDbSpec();
  const store = await openStore(dbSpec);
  const app = buildServer({ models: [], api: false, store, adminToken: token, dashboard, logger: false });
  try {
    await app.listen({ host, port });
  } catch (e) {
    await app.close();
    await store.close();
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') {
      throw new AjarError('listen_failed', `ajar dashboard: cannot listen on ${host}:${port} (${code}); pick another --port`);
    }
    throw e;
  }
  const addr = app.server.address();
  const where = typeof addr === 'object' && addr !== null ? `${host}:${addr.port}` : `${host}:${port}`;
  console.error(`ajar dashboard: http://${where}/ui (runs: ${dashboard.labels?.runs ?? 'none'}; models: `
    + `${dashboard.labels?.models ?? 'none'}; db: ${dbSpec})`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  await app.close();
  await store.close();
  return 0;
}
