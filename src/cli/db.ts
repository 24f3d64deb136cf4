// ajar db migrate: bring a store's schema (SQLite or PostgreSQL) up to this ajar's version, saying which migrations
// ran. Idempotent: a second run applies nothing. `ajar serve` migrates at start too; this is for deploys that run
// migrations as their own step (docs/deploy.md).
import { defaultDbSpec, openMigrated } from '../serve/index.js';
import { AjarError } from '../tensor/errors.js';
import { bool, parseFlags, str } from './args.js';

const HELP = `usage: ajar db migrate [--db sqlite:PATH|postgres://...] [--json]

Applies the migrations the database lacks (each once, in order; replicas starting together wait for one another)
and prints which it applied, or that the schema is up to date. --db: as for 'ajar serve' (now: ${defaultDbSpec()}).
--json: {"version": N, "applied": [{"version": N, "name": "..."}]}.`;

export async function dbCommand(argv: string[]): Promise<number> {
  const p = parseFlags('db', argv, { db: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } }, true);
  if (bool(p, 'help')) {
    console.log(HELP);
    return 0;
  }
  const [sub, ...extra] = p.positionals;
  if (sub !== 'migrate' || extra.length > 0) {
    throw new AjarError('bad_flag', sub === undefined
      ? 'ajar db: name a subcommand: ajar db migrate [--db URL]'
      : `ajar db: unknown subcommand '${[sub, ...extra].join(' ')}'; the one there is: migrate`);
  }
  const spec = str(p, 'db') ?? defaultDbSpec();
  const { store, migrated } = await openMigrated(spec);
  await store.close();
  if (bool(p, 'json')) {
    console.log(JSON.stringify(migrated));
    return 0;
  }
  const where = spec.replace(/\/\/[^@/]*@/, '//***@');
  if (migrated.applied.length === 0) {
    console.log(`ajar db migrate: ${where} is up to date (schema version ${migrated.version})`);
  } else {
    for (const m of migrated.applied) console.log(`applied ${m.version}: ${m.name}`);
    console.log(`ajar db migrate: ${where} is at schema version ${migrated.version}`);
  }
  return 0;
}
