// Licences an open release can carry: any id of the SPDX licence list (spdx-license-ids) or the Hub's own ids, the
// Hub's licence id for the model card, and the licence text: bundled for the common licences (assets/licenses/,
// official SPDX texts written by scripts/vendor-licenses.mjs), else the user's --license-file, else a link to the
// official text at spdx.org.
import { readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { AjarError } from '../tensor/errors.js';

interface LicenseInfo {
  /** The Hub's licence identifier (https://huggingface.co/docs/hub/repositories-licenses). */
  hub: string;
  /** SPDX id whose official text ships with ajar (assets/licenses/); absent when the text must be supplied. */
  spdx?: string;
  title: string;
}

/** The licences whose text ajar bundles, plus openrail-m and other. Ids are the Hub's spelling, matched case-insensitively. */
export const LICENSES: Record<string, LicenseInfo> = {
  'apache-2.0': { hub: 'apache-2.0', spdx: 'Apache-2.0', title: 'Apache License 2.0' },
  mit: { hub: 'mit', spdx: 'MIT', title: 'MIT License' },
  'bsd-2-clause': { hub: 'bsd-2-clause', spdx: 'BSD-2-Clause', title: 'BSD 2-Clause "Simplified" License' },
  'bsd-3-clause': { hub: 'bsd-3-clause', spdx: 'BSD-3-Clause', title: 'BSD 3-Clause "New" or "Revised" License' },
  isc: { hub: 'isc', spdx: 'ISC', title: 'ISC License' },
  zlib: { hub: 'zlib', spdx: 'Zlib', title: 'zlib License' },
  'bsl-1.0': { hub: 'bsl-1.0', spdx: 'BSL-1.0', title: 'Boost Software License 1.0' },
  unlicense: { hub: 'unlicense', spdx: 'Unlicense', title: 'The Unlicense' },
  'cc0-1.0': { hub: 'cc0-1.0', spdx: 'CC0-1.0', title: 'Creative Commons Zero v1.0 Universal' },
  'cc-by-4.0': { hub: 'cc-by-4.0', spdx: 'CC-BY-4.0', title: 'Creative Commons Attribution 4.0 International' },
  'cc-by-sa-4.0': { hub: 'cc-by-sa-4.0', spdx: 'CC-BY-SA-4.0', title: 'Creative Commons Attribution Share Alike 4.0 International' },
  'cc-by-nc-4.0': { hub: 'cc-by-nc-4.0', spdx: 'CC-BY-NC-4.0', title: 'Creative Commons Attribution Non Commercial 4.0 International' },
  'cc-by-nc-sa-4.0': {
    hub: 'cc-by-nc-sa-4.0', spdx: 'CC-BY-NC-SA-4.0', title: 'Creative Commons Attribution Non Commercial Share Alike 4.0 International',
  },
  'cc-by-nd-4.0': { hub: 'cc-by-nd-4.0', spdx: 'CC-BY-ND-4.0', title: 'Creative Commons Attribution No Derivatives 4.0 International' },
  'cc-by-nc-nd-4.0': {
    hub: 'cc-by-nc-nd-4.0', spdx: 'CC-BY-NC-ND-4.0', title: 'Creative Commons Attribution Non Commercial No Derivatives 4.0 International',
  },
  // NOTE: the Hub spells the GNU licences without SPDX's -only suffix (gpl-3.0, SPDX's deprecated id for GPL-3.0-only).
  'gpl-2.0': { hub: 'gpl-2.0', spdx: 'GPL-2.0-only', title: 'GNU General Public License v2.0 only' },
  'gpl-3.0': { hub: 'gpl-3.0', spdx: 'GPL-3.0-only', title: 'GNU General Public License v3.0 only' },
  'lgpl-2.1': { hub: 'lgpl-2.1', spdx: 'LGPL-2.1-only', title: 'GNU Lesser General Public License v2.1 only' },
  'lgpl-3.0': { hub: 'lgpl-3.0', spdx: 'LGPL-3.0-only', title: 'GNU Lesser General Public License v3.0 only' },
  'agpl-3.0': { hub: 'agpl-3.0', spdx: 'AGPL-3.0-only', title: 'GNU Affero General Public License v3.0 only' },
  'mpl-2.0': { hub: 'mpl-2.0', spdx: 'MPL-2.0', title: 'Mozilla Public License 2.0' },
  'epl-2.0': { hub: 'epl-2.0', spdx: 'EPL-2.0', title: 'Eclipse Public License 2.0' },
  // NOTE: the Hub has no plain "openrail-m" id; "openrail" is its id for the OpenRAIL family. OpenRAIL-M is not
  // in the SPDX list and its text cannot be bundled offline, so the user supplies the official text.
  'openrail-m': { hub: 'openrail', title: 'Open RAIL-M License' },
  other: { hub: 'other', title: 'a custom licence' },
};

/** The ids above; `--license` also takes every other id of the SPDX licence list. */
export const LICENSE_IDS = Object.keys(LICENSES);

/**
 * SPDX ids the Hub lists as licence ids (lower case) beyond LICENSES; any other SPDX id goes on the card as
 * `license: other` with its id as license_name.
 */
const HUB_SPDX_IDS = new Set([
  'afl-3.0', 'artistic-2.0', 'bsd-3-clause-clear', 'cc-by-2.0', 'cc-by-2.5', 'cc-by-3.0', 'cc-by-sa-3.0', 'cc-by-nc-2.0',
  'cc-by-nc-3.0', 'cc-by-nc-nd-3.0', 'cc-by-nc-sa-2.0', 'cc-by-nc-sa-3.0', 'cdla-sharing-1.0', 'cdla-permissive-1.0',
  'cdla-permissive-2.0', 'wtfpl', 'ecl-2.0', 'epl-1.0', 'etalab-2.0', 'eupl-1.1', 'eupl-1.2', 'lppl-1.3c', 'ms-pl', 'odc-by',
  'odbl', 'osl-3.0', 'postgresql', 'ofl-1.1', 'ncsa', 'pddl',
]);

const require = createRequire(import.meta.url);

/** Every SPDX licence id, current and deprecated, by its lower-case spelling. */
let spdxIds: Map<string, string> | undefined;
function spdxIdsByLowerCase(): Map<string, string> {
  if (spdxIds === undefined) {
    const ids = [...require('spdx-license-ids') as string[], ...require('spdx-license-ids/deprecated.json') as string[]];
    spdxIds = new Map(ids.map((id) => [id.toLowerCase(), id]));
  }
  return spdxIds;
}

export interface LicenseOptions {
  /** A file holding the licence text; required for openrail-m and other, overrides the bundled text otherwise. */
  licenseFile?: string;
  /** For `other`: the Hub's license_name (a short id such as my-license-1.0); default from the text's first line. */
  licenseName?: string;
  /** Copyright holder for the MIT and Apache-2.0 copyright lines. */
  author?: string;
  year: number;
}

export interface ResolvedLicense {
  id: string;
  title: string;
  /** Front-matter fields: license, and for `other` license_name and license_link. */
  metadata: Record<string, string>;
  /** The LICENSE file's text. */
  text: string;
  /** Where the text came from, for the card. */
  source: string;
  /** The official text's page, for an SPDX licence (https://spdx.org/licenses/ID.html). */
  link?: string;
}

function spdxLink(spdx: string): string {
  return `https://spdx.org/licenses/${spdx}.html`;
}

function bundledText(spdx: string): string {
  return readFileSync(fileURLToPath(new URL(`../../../assets/licenses/${spdx}.txt`, import.meta.url)), 'utf8');
}

function readLicenseFile(path: string): string {
  let text: string;
  try {
    if (!statSync(path).isFile()) throw new Error('not a file');
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new AjarError('bad_flag', `--license-file ${path} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  if (text.trim() === '') throw new AjarError('bad_flag', `--license-file ${path} is empty`);
  return text.endsWith('\n') ? text : `${text}\n`;
}

/** The licence id as ajar spells it (lower case; the Hub's spelling where LICENSES has it), or a clear error. */
export function normalizeLicenseId(id: string): string {
  const key = id.trim().toLowerCase();
  if (LICENSES[key] !== undefined) return key;
  const spdx = spdxIdsByLowerCase().get(key);
  if (spdx === undefined) {
    throw new AjarError('unknown_license', `unknown licence '${id}': give an SPDX licence id (https://spdx.org/licenses/, e.g. `
      + `${LICENSE_IDS.slice(0, 4).join(', ')}) or openrail-m; for another licence pass --license other --license-file FILE [--license-name NAME]`);
  }
  const bundled = Object.entries(LICENSES).find(([, info]) => info.spdx === spdx);
  return bundled !== undefined ? bundled[0] : key;
}

/** What ajar knows of a normalized id: its LICENSES entry, or an SPDX licence whose text is not bundled. */
function licenseInfo(key: string): LicenseInfo {
  const known = LICENSES[key];
  if (known !== undefined) return known;
  const spdx = spdxIdsByLowerCase().get(key)!;
  return { hub: HUB_SPDX_IDS.has(key) ? key : 'other', spdx, title: spdx };
}

/** A Hub-style license_name from a licence's first non-empty line: lower case, dashes, at most 64 characters. */
function slugOfFirstLine(text: string): string {
  const first = text.split('\n').map((l) => l.trim()).find((l) => l !== '') ?? 'custom';
  const slug = first.toLowerCase().replace(/[^a-z0-9.]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 64).replace(/-+$/, '');
  return slug === '' ? 'custom' : slug;
}

/** Check the flags for a licence before any work is done; return what the release writes. */
export function resolveLicense(id: string, opts: LicenseOptions): ResolvedLicense {
  const key = normalizeLicenseId(id);
  const info = licenseInfo(key);
  if (info.spdx === undefined && opts.licenseFile === undefined) {
    if (key === 'openrail-m') {
      throw new AjarError('license_text_needed', '--license openrail-m needs --license-file FILE holding the official Open RAIL-M '
        + 'licence text: it is not in the SPDX licence list, so ajar cannot ship it. Download the text you release under '
        + '(e.g. https://www.licenses.ai/ai-licenses) and pass it with --license-file');
    }
    throw new AjarError('license_text_needed', `--license ${key} needs --license-file FILE holding the licence text`);
  }
  const link = info.spdx !== undefined ? spdxLink(info.spdx) : undefined;
  const metadata: Record<string, string> = { license: info.hub };
  let text: string;
  let source: string;
  if (opts.licenseFile !== undefined) {
    text = readLicenseFile(opts.licenseFile);
    source = 'supplied by the publisher';
  } else if (LICENSES[key] !== undefined) {
    text = fillCopyright(key, bundledText(info.spdx!), opts);
    source = `the official SPDX text of ${info.spdx}`;
  } else {
    // NOTE: ajar bundles only the common texts (the whole SPDX list is 12 MB); for the rest LICENSE names the licence
    // and links its official text, and --license-file puts the text itself in the release.
    text = `${info.spdx}\n\nThis model is released under the ${info.spdx} licence (SPDX identifier ${info.spdx}).\n`
      + `Its official text: ${link}\n`;
    source = `not bundled with ajar: the official text is at ${link}; pass --license-file to include it`;
  }
  if (metadata.license === 'other') {
    metadata.license_name = opts.licenseName ?? (info.spdx !== undefined ? key : slugOfFirstLine(text));
    metadata.license_link = opts.licenseFile === undefined && link !== undefined ? link : 'LICENSE';
  }
  const resolved: ResolvedLicense = { id: key, title: info.title, metadata, text, source };
  if (link !== undefined) resolved.link = link;
  return resolved;
}

/** MIT's "<year> <copyright holders>" and Apache's "[yyyy] [name of copyright owner]" filled from --author. */
function fillCopyright(key: string, text: string, opts: LicenseOptions): string {
  if (key === 'mit') {
    if (opts.author === undefined || opts.author.trim() === '') {
      throw new AjarError('bad_flag', 'the MIT licence names its copyright holder: pass --author "NAME" (a person or organisation)');
    }
    return text.replace('<year> <copyright holders>', `${opts.year} ${opts.author.trim()}`);
  }
  if (key === 'apache-2.0' && opts.author !== undefined && opts.author.trim() !== '') {
    return text.replace('[yyyy] [name of copyright owner]', `${opts.year} ${opts.author.trim()}`);
  }
  return text;
}
