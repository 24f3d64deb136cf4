// `ajar verify DIR`: an open release against its SHA256SUMS (every listed file present and unchanged, nothing
// unlisted), or a closed bundle against its manifest (and, with the key, its MAC and every GCM tag).
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { entryExists, readRegularText, sha256OfRegularFile } from '../io/safe-read.js';
import { AjarError } from '../tensor/errors.js';
import { checkBundle, MANIFEST } from './bundle.js';
import { isPlainFileName } from './files.js';
import { SUMS_FILE } from './open.js';

export interface VerifyResult {
  kind: 'open' | 'bundle';
  /** One line per problem, naming the file; empty when everything matches. */
  problems: string[];
  /** Files compared. */
  checked: number;
  /** Bundles: whether the key was used to check the MAC and every tag. */
  authenticated: boolean;
}

const SUM_LINE = /^([0-9a-fA-F]{64}) [ *](.+)$/;

function verifySums(dir: string): VerifyResult {
  const problems: string[] = [];
  const listed = new Set<string>([SUMS_FILE]);
  let checked = 0;
  const lines = readRegularText(join(dir, SUMS_FILE), { code: 'bad_release', kind: 'index', root: dir }).split('\n');
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    const m = SUM_LINE.exec(line.replace(/\r$/, ''));
    if (!m || !isPlainFileName(m[2])) {
      problems.push(`${SUMS_FILE} line ${i + 1} is not "<sha256>  <file name>"`);
      return;
    }
    const [, want, name] = m;
    listed.add(name);
    const path = join(dir, name);
    checked++;
    if (!entryExists(path)) {
      problems.push(`${name}: missing`);
      return;
    }
    let got: string;
    try {
      got = sha256OfRegularFile(path, { code: 'bad_release', kind: 'weights', root: dir });
    } catch (e) {
      if (!(e instanceof AjarError)) throw e;
      problems.push(`${name}: ${e.message}`); // a FIFO, a device, a link out of the folder
      return;
    }
    if (got !== want.toLowerCase()) problems.push(`${name}: changed (SHA-256 differs from ${SUMS_FILE})`);
  });
  for (const name of readdirSync(dir).sort()) {
    if (!listed.has(name)) problems.push(`${name}: not listed in ${SUMS_FILE}`);
  }
  return { kind: 'open', problems, checked, authenticated: false };
}

/** Check a release folder or bundle; `secret` authenticates a bundle. A folder that is neither is an error. */
export function verifyRelease(dir: string, secret?: Uint8Array): VerifyResult {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new AjarError('not_found', `${dir} is not a folder`);
  if (entryExists(join(dir, SUMS_FILE))) return verifySums(dir);
  if (entryExists(join(dir, MANIFEST))) return { kind: 'bundle', ...checkBundle(dir, secret) };
  throw new AjarError('not_a_release', `${dir} has neither ${SUMS_FILE} (an open release) nor ${MANIFEST} (a closed bundle); `
    + "nothing to verify (make one with 'ajar release open' or 'ajar release closed')");
}
