// Licences an open release can carry: the id the user passes, the Hugging Face Hub's licence id for the model
// card, and the licence text (official SPDX texts from spdx-license-list, or the user's --license-file).
import { readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { AjarError } from '../tensor/errors.js';

interface LicenseInfo {
  /** The Hub's licence identifier (https://huggingface.co/docs/hub/repositories-licenses). */
  hub: string;
  /** SPDX id whose official text ships with ajar (spdx-license-list); absent when the text must be supplied. */
  spdx?: string;
  title: string;
}

/** The licences `ajar release open --license` knows. Ids are the Hub's spelling, matched case-insensitively. */
export const LICENSES: Record<string, LicenseInfo> = {
  'apache-2.0': { hub: 'apache-2.0', spdx: 'Apache-2.0', title: 'Apache License 2.0' },
  mit: { hub: 'mit', spdx: 'MIT', title: 'MIT License' },
  'cc-by-4.0': { hub: 'cc-by-4.0', spdx: 'CC-BY-4.0', title: 'Creative Commons Attribution 4.0 International' },
  // NOTE: the Hub has no plain "openrail-m" id; "openrail" is its id for the OpenRAIL family. OpenRAIL-M is not
  // in the SPDX list and its text cannot be bundled offline, so the user supplies the official text.
  'openrail-m': { hub: 'openrail', title: 'Open RAIL-M License' },
  other: { hub: 'other', title: 'a custom licence' },
};

export const LICENSE_IDS = Object.keys(LICENSES);

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
}

const require = createRequire(import.meta.url);

function bundledText(spdx: string): string {
  const entry = require(`spdx-license-list/licenses/${spdx}.json`) as { licenseText: string };
  return entry.licenseText.endsWith('\n') ? entry.licenseText : `${entry.licenseText}\n`;
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

/** The licence id as ajar spells it, or a clear error listing the known ones. */
export function normalizeLicenseId(id: string): string {
  const key = id.trim().toLowerCase();
  if (LICENSES[key] === undefined) {
    throw new AjarError('unknown_license', `unknown licence '${id}' (known: ${LICENSE_IDS.join(', ')}); for another licence pass `
      + '--license other --license-file FILE [--license-name NAME]');
  }
  return key;
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
  const info = LICENSES[key];
  if (info.spdx === undefined && opts.licenseFile === undefined) {
    if (key === 'openrail-m') {
      throw new AjarError('license_text_needed', '--license openrail-m needs --license-file FILE holding the official Open RAIL-M '
        + 'licence text: it is not in the SPDX licence list, so ajar cannot ship it. Download the text you release under '
        + '(e.g. https://www.licenses.ai/ai-licenses) and pass it with --license-file');
    }
    throw new AjarError('license_text_needed', `--license ${key} needs --license-file FILE holding the licence text`);
  }
  const metadata: Record<string, string> = { license: info.hub };
  let text: string;
  let source: string;
  if (opts.licenseFile !== undefined) {
    text = readLicenseFile(opts.licenseFile);
    source = 'supplied by the publisher';
  } else {
    text = bundledText(info.spdx!);
    source = `the official SPDX text of ${info.spdx}`;
    text = fillCopyright(key, text, opts);
  }
  if (key === 'other') {
    metadata.license_name = opts.licenseName ?? slugOfFirstLine(text);
    metadata.license_link = 'LICENSE';
  }
  return { id: key, title: info.title, metadata, text, source };
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
