// ajar verify DIR: check an open release against SHA256SUMS, or a closed bundle against its manifest (with
// --key-file or AJAR_BUNDLE_KEY: also its MAC and every tag). Exit 0 when intact, 1 with one line per problem.
import { KEY_ENV, readSecret, verifyRelease } from '../release/index.js';
import { AjarError } from '../tensor/errors.js';
import { bool, parseFlags, str } from './args.js';
import { printJson } from './common.js';

const HELP = `usage: ajar verify DIR [--key-file FILE] [--json]

An open release (SHA256SUMS): every listed file is present with its SHA-256, and no file is unlisted.
A closed bundle (manifest.json): every encrypted file is present with the SHA-256 its manifest records and no
file is unlisted; with --key-file (or ${KEY_ENV}) also the manifest's MAC and every file's authentication tag,
decrypting in memory only. Exit status 0 when intact, 1 when not (one line per problem on stderr).`;

export async function verifyCommand(argv: string[]): Promise<number> {
  const p = parseFlags('verify', argv, {
    'key-file': { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
  }, true);
  if (bool(p, 'help')) {
    console.log(HELP);
    return 0;
  }
  if (p.positionals.length !== 1) throw new AjarError('bad_flag', "ajar verify: give one folder to check (see 'ajar verify --help')");
  const dir = p.positionals[0];
  const keyFile = str(p, 'key-file');
  const secret = keyFile !== undefined || process.env[KEY_ENV] ? readSecret(keyFile) : undefined;
  for (const w of secret?.warnings ?? []) console.error(`ajar verify: warning: ${w}`);
  const r = verifyRelease(dir, secret?.bytes);
  secret?.bytes.fill(0);
  const ok = r.problems.length === 0;
  if (bool(p, 'json')) {
    printJson({ ok, kind: r.kind, checked: r.checked, authenticated: r.authenticated, problems: r.problems });
    return ok ? 0 : 1;
  }
  for (const problem of r.problems) console.error(`ajar verify: ${dir}: ${problem}`);
  if (!ok) {
    console.error(`ajar verify: ${dir}: FAILED (${r.problems.length} problem${r.problems.length === 1 ? '' : 's'})`);
    return 1;
  }
  const what = r.kind === 'open' ? `${r.checked} files match SHA256SUMS`
    : `${r.checked} encrypted files match the manifest${r.authenticated ? '; the key opens it and every tag is valid'
      : ' (not authenticated: pass --key-file to check the MAC and tags)'}`;
  console.log(`${dir}: OK, ${what}`);
  return 0;
}
