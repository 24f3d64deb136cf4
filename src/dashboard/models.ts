// Model folders, releases and adapters for the dashboard: each folder under --models (and --models itself) with its
// card, evaluation results, licence, privacy record, release records and checksum verification, read through
// release/'s readers and io/'s safe reads. A folder that cannot be read shows its error instead of hiding the rest.
import { readdirSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { readRegularJson, readRegularText } from '../io/safe-read.js';
import {
  HYBRID_ADAPTER, HYBRID_BASE, listReleases, MANIFEST, readManifest, readResults, readTrainingArgs, splitFrontMatter,
  SUMS_FILE, verifyRelease,
} from '../release/index.js';
import { readPrivacy } from '../release/results.js';
import { AjarError } from '../tensor/errors.js';

export type EntryKind = 'model' | 'adapter' | 'open-release' | 'closed-bundle' | 'hybrid-release';

export interface Verification {
  kind: 'open' | 'bundle';
  ok: boolean;
  checked: number;
  problems: string[];
  /** Bundles: checked against the manifest only (the dashboard holds no key). */
  authenticated: boolean;
}

export interface ModelEntry {
  /** The folder relative to --models ('.' for --models itself). */
  name: string;
  kind: EntryKind;
  architecture: string | null;
  card: { meta: Record<string, unknown>; body: string } | null;
  license: string | null;
  results: unknown[];
  training_args: Record<string, unknown> | null;
  privacy: Record<string, unknown> | null;
  releases: unknown[];
  /** Release folders and bundles: their SHA256SUMS or manifest checked now; a hybrid release has one per part. */
  verification: Record<string, Verification> | null;
  /** Adapter folders inside this one (a model trained with --lora keeps its adapter beside it). */
  adapters: string[];
  bundle: { name: string; content: string; key_id: string; created: string } | null;
  /** What could not be read, one line each. */
  errors: string[];
}

function exists(path: string, dir = false): boolean {
  try {
    const st = statSync(path);
    return dir ? st.isDirectory() : st.isFile();
  } catch {
    return false;
  }
}

function kindOf(dir: string): EntryKind | null {
  if (exists(join(dir, SUMS_FILE))) return 'open-release';
  if (exists(join(dir, MANIFEST))) return 'closed-bundle';
  if (exists(join(dir, HYBRID_BASE), true) && exists(join(dir, HYBRID_ADAPTER), true)) return 'hybrid-release';
  if (exists(join(dir, 'adapter_config.json'))) return 'adapter';
  if (exists(join(dir, 'config.json'))) return 'model';
  return null;
}

function subdirs(dir: string): string[] {
  try {
    return readdirSync(dir).sort().filter((n) => !n.startsWith('.') && exists(join(dir, n), true));
  } catch {
    return [];
  }
}

function verify(dir: string): Verification {
  try {
    const r = verifyRelease(dir);
    return { kind: r.kind, ok: r.problems.length === 0, checked: r.checked, problems: r.problems, authenticated: r.authenticated };
  } catch (e) {
    return { kind: 'open', ok: false, checked: 0, problems: [(e as Error).message], authenticated: false };
  }
}

function entry(root: string, dir: string, kind: EntryKind): ModelEntry {
  const errors: string[] = [];
  const attempt = <T>(what: string, read: () => T, fallback: T): T => {
    try {
      return read();
    } catch (e) {
      if (!(e instanceof AjarError)) throw e;
      errors.push(`${what}: ${e.message}`);
      return fallback;
    }
  };
  const rel = relative(root, dir).split(sep).join('/');
  const e: ModelEntry = {
    name: rel === '' ? '.' : rel, kind, architecture: null, card: null, license: null, results: [], training_args: null,
    privacy: null, releases: [], verification: null, adapters: [], bundle: null, errors,
  };
  const safe = { kind: 'config' as const, root: dir };
  if (exists(join(dir, 'config.json'))) {
    const config = attempt('config.json', () => readRegularJson(join(dir, 'config.json'), { code: 'bad_config', ...safe }), null);
    const arch = (config as { architectures?: unknown } | null)?.architectures;
    e.architecture = Array.isArray(arch) && typeof arch[0] === 'string' ? arch[0] : null;
  }
  if (exists(join(dir, 'README.md'))) {
    e.card = attempt('README.md', () => splitFrontMatter(readRegularText(join(dir, 'README.md'), { code: 'bad_card', ...safe }), 'README.md'), null);
  }
  const metaLicense = e.card?.meta.license;
  if (typeof metaLicense === 'string') e.license = metaLicense;
  else if (exists(join(dir, 'LICENSE'))) {
    e.license = attempt('LICENSE', () => readRegularText(join(dir, 'LICENSE'), { code: 'bad_license', ...safe }).split('\n')[0].trim().slice(0, 120), null);
  }
  e.results = attempt('ajar_results.json', () => readResults(dir), []);
  e.training_args = attempt('training_args.json', () => readTrainingArgs(dir), null);
  e.privacy = attempt('privacy.json', () => readPrivacy(dir), null);
  if (kind === 'model') e.releases = attempt('ajar_releases.jsonl', () => listReleases(dir), []);
  if (kind === 'open-release' || kind === 'closed-bundle') e.verification = { [e.name]: verify(dir) };
  if (kind === 'hybrid-release') {
    e.verification = { [HYBRID_BASE]: verify(join(dir, HYBRID_BASE)), [HYBRID_ADAPTER]: verify(join(dir, HYBRID_ADAPTER)) };
  }
  if (kind === 'closed-bundle') {
    const m = attempt('manifest.json', () => readManifest(dir), null);
    if (m !== null) e.bundle = { name: m.name, content: m.content ?? 'model', key_id: m.key_id, created: m.created };
  }
  e.adapters = subdirs(dir).filter((n) => exists(join(dir, n, 'adapter_config.json')));
  return e;
}

/** Every model, adapter, release and bundle folder at root and one level below it, by name. */
export function modelEntries(root: string): ModelEntry[] {
  const out: ModelEntry[] = [];
  for (const dir of [root, ...subdirs(root).map((n) => join(root, n))]) {
    const kind = kindOf(dir);
    if (kind !== null) out.push(entry(root, dir, kind));
  }
  return out;
}
