// Release records: one JSON line per release in <model>/ajar_releases.jsonl (what, when, where, the model's
// content hash, the licence or the key id), and reading them back for `ajar release list`.
import { appendFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { readRegularText } from '../io/safe-read.js';
import { AjarError } from '../tensor/errors.js';
import { contentHash } from './files.js';

export const RELEASES_FILE = 'ajar_releases.jsonl';

export interface ReleaseRecord {
  kind: 'open' | 'closed' | 'hybrid';
  /** Absolute path of the release folder or bundle. */
  out: string;
  /** ISO 8601. */
  date: string;
  /** The model's content hash when it was released (see contentHash). */
  model_sha256: string;
  name: string;
  /** Open releases: the licence id. */
  license?: string;
  /** Closed bundles and hybrid releases' adapter bundles: the key id (never the key). */
  key_id?: string;
  /** Hybrid releases: the adapter folder and its content hash (adapter files as the model's are hashed). */
  adapter?: string;
  adapter_sha256?: string;
}

/** Append a record; a failure says the release itself was written. */
export function appendReleaseRecord(modelDir: string, record: ReleaseRecord): string {
  const path = join(modelDir, RELEASES_FILE);
  try {
    appendFileSync(path, `${JSON.stringify(record)}\n`);
  } catch (e) {
    throw new AjarError('write_failed', `the release is complete in ${record.out}, but its record could not be appended to ${path} `
      + `(${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); add it by hand: ${JSON.stringify(record)}`);
  }
  return path;
}

/** The records of a model folder, oldest first; [] when it has none. A damaged line is an error naming it. */
export function readReleaseRecords(modelDir: string): ReleaseRecord[] {
  const path = join(modelDir, RELEASES_FILE);
  if (!existsSync(path)) return [];
  const lines = readRegularText(path, { code: 'bad_records', kind: 'index', root: modelDir }).split('\n');
  const out: ReleaseRecord[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    let r: unknown;
    try {
      r = JSON.parse(line);
    } catch {
      throw new AjarError('bad_records', `${path}: line ${i + 1} is not valid JSON; fix or remove it`);
    }
    const rec = r as Partial<ReleaseRecord> | null;
    if (rec === null || typeof rec !== 'object' || (rec.kind !== 'open' && rec.kind !== 'closed' && rec.kind !== 'hybrid') || typeof rec.out !== 'string'
      || typeof rec.date !== 'string' || typeof rec.model_sha256 !== 'string') {
      throw new AjarError('bad_records', `${path}: line ${i + 1} is not a release record (kind, out, date, model_sha256)`);
    }
    out.push(rec as ReleaseRecord);
  });
  return out;
}

export interface ListedRelease extends ReleaseRecord {
  /** Whether the release folder or bundle still exists. */
  present: boolean;
  /** Whether the model folder still has the content it had when released (null when it cannot be hashed). */
  same_model: boolean | null;
}

/** The release records of a model folder, each with whether its output still exists and the model is unchanged. */
export function listReleases(modelDir: string): ListedRelease[] {
  const records = readReleaseRecords(modelDir);
  let current: string | null = null;
  try {
    current = records.length > 0 ? contentHash(modelDir) : null;
  } catch {
    current = null;
  }
  return records.map((r) => ({ ...r, present: existsSync(r.out), same_model: current === null ? null : current === r.model_sha256 }));
}
