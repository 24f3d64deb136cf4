// ajar audit: the server's append-only audit log (key changes, admin calls, failed authentications), oldest first;
// with --model, the privacy audit of a trained model (privacy-audit.ts).
import { bool, num, parseFlags, str } from './args.js';
import { printJson } from './common.js';
import { PRIVACY_AUDIT_HELP, PRIVACY_AUDIT_USAGE, privacyAuditCommand } from './privacy-audit.js';

const help = (defaultDbSpec: string): string => `usage: ajar audit [--since DATE] [--limit N] [--json] [--db sqlite:PATH|postgres://...]
${PRIVACY_AUDIT_USAGE}

Without --model, lists the server's audit log, oldest first: keys created, rotated and revoked; admin calls;
authentication failures (with the key's non-secret prefix ajar_sk_<id> at most). --limit N shows the newest N entries.
--json prints an array of {id, time, actor, action, key_id, key_prefix, remote, detail}.
--db: as for 'ajar serve' (now: ${defaultDbSpec}).

${PRIVACY_AUDIT_HELP}`;

/** Whether argv asks for the privacy audit: --model DIR (or -m, --model=DIR). */
function wantsPrivacyAudit(argv: readonly string[]): boolean {
  return argv.some((a) => a === '--model' || a === '-m' || a.startsWith('--model='));
}

export async function auditCommand(argv: string[]): Promise<number> {
  if (wantsPrivacyAudit(argv) && !argv.includes('--help') && !argv.includes('-h')) return privacyAuditCommand(argv);
  // NOTE: the server's modules (HTTP framework, database clients) load only for the log, not for the privacy audit.
  const { defaultDbSpec, formatAudit, isoTime, openStore, parseDate } = await import('../serve/index.js');
  const p = parseFlags('audit', argv, {
    since: { type: 'string' }, limit: { type: 'string' }, json: { type: 'boolean' }, db: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (bool(p, 'help')) {
    console.log(help(defaultDbSpec()));
    return 0;
  }
  const sinceText = str(p, 'since');
  const since = sinceText === undefined ? undefined : parseDate(sinceText, '--since');
  const limit = num('audit', p, 'limit', { int: true, min: 1 });
  const store = await openStore(str(p, 'db') ?? defaultDbSpec());
  try {
    const entries = await store.listAudit({ since, limit });
    if (bool(p, 'json')) {
      printJson(entries.map((e) => ({
        id: e.id, time: isoTime(e.ts), actor: e.actor, action: e.action, key_id: e.keyId, key_prefix: e.keyPrefix,
        remote: e.remote, detail: e.detail,
      })));
    } else {
      console.log(formatAudit(entries));
    }
  } finally {
    await store.close();
  }
  return 0;
}
