// ajar usage: prompt and completion tokens per API key and UTC day, from the server's usage records.
// --format json prints [{"key_id", "day", "requests", "prompt_tokens", "completion_tokens"}] (a contract).
import { defaultDbSpec, formatUsage, openStore, parseDate, REPORT_FORMATS, type ReportFormat } from '../serve/index.js';
import { AjarError } from '../tensor/errors.js';
import { bool, parseFlags, str } from './args.js';

const HELP = `usage: ajar usage [--key ID] [--since DATE] [--format table|csv|json | --json] [--db sqlite:PATH|postgres://...]

Totals per key and UTC day: requests, prompt and completion tokens. Open-mode callers appear as anon:<address>.
--json is --format json. --since: YYYY-MM-DD (UTC) or an ISO time. --db: as for 'ajar serve' (now: ${defaultDbSpec()}).`;

export async function usageCommand(argv: string[]): Promise<number> {
  const p = parseFlags('usage', argv, {
    key: { type: 'string' }, since: { type: 'string' }, format: { type: 'string' }, json: { type: 'boolean' }, db: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (bool(p, 'help')) {
    console.log(HELP);
    return 0;
  }
  const format = (str(p, 'format') ?? (bool(p, 'json') ? 'json' : 'table')) as ReportFormat;
  if (!REPORT_FORMATS.includes(format)) {
    throw new AjarError('bad_flag', `ajar usage: --format must be table, csv or json, got '${format}'`);
  }
  if (bool(p, 'json') && format !== 'json') {
    throw new AjarError('bad_flag', `ajar usage: --json and --format ${format} disagree; give one of them`);
  }
  const sinceText = str(p, 'since');
  const since = sinceText === undefined ? undefined : parseDate(sinceText, '--since');
  const store = await openStore(str(p, 'db') ?? defaultDbSpec());
  try {
    const rows = await store.usageSummary({ keyId: str(p, 'key'), since });
    console.log(formatUsage(rows, format));
  } finally {
    await store.close();
  }
  return 0;
}
