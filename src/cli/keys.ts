// ajar keys create|list|revoke|rotate: manage the server's API keys in its store (--db, as `ajar serve` uses).
// A new or rotated key is printed once; the store keeps only its SHA-256 hash.
import { userInfo } from 'node:os';
import {
  createApiKey, defaultDbSpec, formatKeys, keyView, openStore, parseDate, revokeApiKey, rotateApiKey,
  type Actor, type QuotaPeriod, type Store,
} from '../serve/index.js';
import { AjarError } from '../tensor/errors.js';
import { bool, num, parseFlags, requireStr, str } from './args.js';
import { printJson } from './common.js';
import { closest } from './suggest.js';

const HELP = `usage: ajar keys create --name N [--rpm R] [--tpm T] [--quota-tokens Q [--quota-period day|month]]
                        [--expires DATE] [--models a,b] [--db sqlite:PATH|postgres://...] [--json]
       ajar keys list [--db sqlite:PATH|postgres://...] [--json]
       ajar keys revoke ID [--db sqlite:PATH|postgres://...] [--json]
       ajar keys rotate ID [--db sqlite:PATH|postgres://...] [--json]

API keys of 'ajar serve'. A key (ajar_sk_...) is printed once, by create and rotate: store it then.
--rpm/--tpm: requests and tokens per minute (default: the server's --default-rpm/--default-tpm).
--quota-tokens: prompt + completion tokens per UTC day or month (--quota-period, default month).
--expires: YYYY-MM-DD (the key works through that UTC day) or an ISO time like 2026-01-31T12:00:00Z.
--models: the model and adapter ids the key may use (default: all); others get the 404 of a name not served.
         The CLI writes the store directly and cannot know what a server will serve, so it does not check the
         names (POST /admin/keys on a running server does: 400 unknown_model_in_scope).
rotate keeps id, name, limits and usage history.
--db: default ${'$'}AJAR_HOME/ajar.db or ~/.ajar/ajar.db as sqlite:PATH (now: ${defaultDbSpec()}).
--json: create and rotate print {"id", "key"}; list prints an array; revoke prints the key's record.`;

/** The audit log's actor for CLI changes: the OS user running the command. */
function cliActor(): Actor {
  try {
    return { actor: `cli:${userInfo().username}` };
  } catch {
    return { actor: 'cli' };
  }
}

async function withStore<T>(db: string | undefined, f: (s: Store) => Promise<T>): Promise<T> {
  const store = await openStore(db ?? defaultDbSpec());
  try {
    return await f(store);
  } finally {
    await store.close();
  }
}

function printNewKey(id: string, name: string, key: string, verb: string, json: boolean): void {
  if (json) {
    printJson({ id, key });
    return;
  }
  console.log(`${verb} API key ${id} (${name}):\n\n  ${key}\n\nThis is the only time the key is shown: store it now (ajar keeps only its hash).`);
}

export async function keysCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    console.log(HELP);
    return sub === undefined ? 2 : 0;
  }
  const common = { db: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } as const;
  if (sub === 'create') {
    const p = parseFlags('keys create', rest, {
      ...common, name: { type: 'string' }, rpm: { type: 'string' }, tpm: { type: 'string' },
      'quota-tokens': { type: 'string' }, 'quota-period': { type: 'string' }, expires: { type: 'string' },
      models: { type: 'string' },
    });
    if (bool(p, 'help')) {
      console.log(HELP);
      return 0;
    }
    const period = str(p, 'quota-period');
    if (period !== undefined && period !== 'day' && period !== 'month') {
      throw new AjarError('bad_flag', `ajar keys create: --quota-period must be day or month, got '${period}'`);
    }
    const expires = str(p, 'expires');
    const models = str(p, 'models');
    const spec = {
      name: requireStr('keys create', p, 'name'),
      rpm: num('keys create', p, 'rpm', { int: true, min: 1 }) ?? null,
      tpm: num('keys create', p, 'tpm', { int: true, min: 1 }) ?? null,
      quotaTokens: num('keys create', p, 'quota-tokens', { int: true, min: 1 }) ?? null,
      quotaPeriod: (period as QuotaPeriod | undefined) ?? null,
      expiresAt: expires === undefined ? null : parseDate(expires, '--expires', 'end'),
      models: models === undefined ? null : modelList(models),
    };
    const { record, key } = await withStore(str(p, 'db'), (s) => createApiKey(s, spec, cliActor()));
    printNewKey(record.id, record.name, key, 'Created', bool(p, 'json'));
    return 0;
  }
  if (sub === 'list') {
    const p = parseFlags('keys list', rest, common);
    if (bool(p, 'help')) {
      console.log(HELP);
      return 0;
    }
    const now = Date.now();
    const views = (await withStore(str(p, 'db'), (s) => s.listKeys())).map((k) => keyView(k, now));
    if (bool(p, 'json')) printJson(views);
    else console.log(formatKeys(views));
    return 0;
  }
  if (sub === 'revoke' || sub === 'rotate') {
    const p = parseFlags(`keys ${sub}`, rest, common, true);
    if (bool(p, 'help')) {
      console.log(HELP);
      return 0;
    }
    if (p.positionals.length !== 1) {
      throw new AjarError('bad_flag', `ajar keys ${sub}: give exactly one key id (see 'ajar keys list')`);
    }
    const id = p.positionals[0];
    const json = bool(p, 'json');
    if (sub === 'revoke') {
      const rec = await withStore(str(p, 'db'), (s) => revokeApiKey(s, id, cliActor()));
      if (json) printJson(keyView(rec, Date.now()));
      else console.log(`Revoked API key ${rec.id} (${rec.name}); requests with it are refused from now on.`);
      return 0;
    }
    const { record, key } = await withStore(str(p, 'db'), (s) => rotateApiKey(s, id, cliActor()));
    printNewKey(record.id, record.name, key, 'Rotated', json);
    if (!json) console.log('The old key is refused from now on.');
    return 0;
  }
  const guess = closest(sub, ['create', 'list', 'revoke', 'rotate']);
  throw new AjarError('bad_flag', `ajar keys: unknown subcommand '${sub}'${guess !== undefined ? ` (did you mean '${guess}'?)` : ''}; `
    + 'create, list, revoke or rotate');
}

/** --models a,b: the ids, each non-empty and without spaces. */
function modelList(flag: string): string[] {
  const ids = flag.split(',').map((m) => m.trim());
  const bad = ids.find((m) => m === '' || /\s/.test(m));
  if (bad !== undefined) {
    throw new AjarError('bad_flag', `ajar keys create: --models takes model ids separated by commas, got '${flag}'`);
  }
  return ids;
}
