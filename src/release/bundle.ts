// Closed bundles: every model file encrypted with AES-256-GCM (a random 96-bit nonce per file, the file's name as
// additional authenticated data) under a key derived from the secret, and a manifest.json whose HMAC (a separately
// derived key) covers every field. Only ciphertext is ever written; opening decrypts in memory and refuses a wrong
// key, a missing file or any changed byte before a model is built.
import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { entryExists, readRegularFile, readRegularText, sha256OfRegularFile } from '../io/safe-read.js';
import type { CausalLM } from '../models/index.js';
import { AjarError } from '../tensor/errors.js';
import { contentHashOfFiles, isPlainFileName, readModelFiles, sha256Hex, sortByBytes, Staging, writeNewFile } from './files.js';
import { checkScryptParams, deriveBundleKeys, keyId, SCRYPT_DEFAULTS, type ScryptParams } from './key.js';
import { causalLMFromFiles, modelFromFiles, type InMemoryModel } from './memory.js';
import { appendReleaseRecord } from './records.js';

export const BUNDLE_FORMAT = 'ajar-closed-bundle';
export const BUNDLE_VERSION = 1;
export const MANIFEST = 'manifest.json';
const CIPHER = 'AES-256-GCM';
const NONCE_BYTES = 12; // GCM's 96-bit nonce (NIST SP 800-38D)
const TAG_BYTES = 16;
const SALT_BYTES = 16;

/** What a bundle holds: a whole model (the default, and every bundle before hybrid releases) or a LoRA adapter. */
export type BundleContent = 'model' | 'adapter';
/** The file each kind of bundle must hold. */
const REQUIRED_FILE: Record<BundleContent, string> = { model: 'config.json', adapter: 'adapter_config.json' };

export interface BundleFileEntry {
  /** The model file's name (also the AES-GCM additional authenticated data). */
  name: string;
  /** The ciphertext's file in the bundle: name + ".enc", ciphertext then the 16-byte tag. */
  path: string;
  nonce: string; // hex, 12 bytes
  size: number; // plaintext bytes
  ciphertext_sha256: string; // of the whole .enc file
}

export interface BundleManifest {
  format: typeof BUNDLE_FORMAT;
  version: number;
  name: string;
  /** Absent in model bundles (so their manifests are unchanged); "adapter" in a hybrid release's adapter bundle. */
  content?: 'adapter';
  created: string;
  cipher: typeof CIPHER;
  kdf: { name: 'scrypt'; salt: string; N: number; r: number; p: number; then: 'HKDF-SHA256' };
  key_id: string;
  model_sha256: string;
  files: BundleFileEntry[];
  /** HMAC-SHA256, hex, over canonicalJson(the manifest without "mac"). */
  mac: string;
}

/** JSON with object keys sorted at every level and no whitespace: the bytes the manifest's MAC covers. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const obj = v as Record<string, unknown>;
    const keys = Object.keys(obj).filter((k) => obj[k] !== undefined).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

function manifestMac(macKey: Uint8Array, manifest: Omit<BundleManifest, 'mac'> | BundleManifest): Buffer {
  const { mac: _mac, ...rest } = manifest as BundleManifest;
  return createHmac('sha256', macKey).update(canonicalJson(rest)).digest();
}

function encrypt(key: Uint8Array, nonce: Uint8Array, name: string, plain: Uint8Array): Buffer {
  const c = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
  c.setAAD(Buffer.from(name, 'utf8'));
  return Buffer.concat([c.update(plain), c.final(), c.getAuthTag()]);
}

export interface SealOptions {
  modelDir: string;
  out: string;
  secret: Uint8Array;
  /** The bundle's name (manifest and record); default the model folder's name. */
  name: string;
  now?: Date;
  /** Progress lines. */
  log?: (line: string) => void;
  /** scrypt cost (tests may not go below SCRYPT_LIMITS). */
  scrypt?: ScryptParams;
}

export interface SealResult {
  out: string;
  manifest: BundleManifest;
  recordPath: string;
}

/**
 * `ajar release closed`: check the model loads, encrypt its files into a new bundle, publish it with one rename,
 * and append the release record. NOTE: plaintext exists only in memory (read from the model folder); the staging
 * folder and the bundle only ever receive ciphertext and the manifest.
 */
export function sealBundle(opts: SealOptions): SealResult {
  const log = opts.log ?? (() => undefined);
  const files = readModelFiles(opts.modelDir);
  log(`checking that ${opts.modelDir} loads (${files.size} files)`);
  modelFromFiles(files, opts.modelDir);
  const { out, manifest } = sealFiles(files, { ...opts, content: 'model' });
  const recordPath = appendReleaseRecord(opts.modelDir, {
    kind: 'closed', out, date: manifest.created, model_sha256: manifest.model_sha256, name: opts.name, key_id: manifest.key_id,
  });
  return { out, manifest, recordPath };
}

export interface SealFilesOptions extends Omit<SealOptions, 'modelDir'> {
  content: BundleContent;
}

/**
 * Encrypt `files` into a new bundle at opts.out and publish it with one rename; no release record (the caller
 * writes it). The plaintext buffers are zeroed once encrypted.
 */
export function sealFiles(files: Map<string, Uint8Array>, opts: SealFilesOptions): { out: string; manifest: BundleManifest } {
  const log = opts.log ?? (() => undefined);
  const out = resolve(opts.out);
  const modelSha = contentHashOfFiles(files);
  const kid = keyId(opts.secret);
  const params = opts.scrypt ?? { ...SCRYPT_DEFAULTS };
  checkScryptParams(params, 'scrypt parameters');
  const salt = randomBytes(SALT_BYTES);
  const keys = deriveBundleKeys(opts.secret, salt, params);
  const staging = new Staging(out, 'bundle');
  try {
    const entries: BundleFileEntry[] = [];
    for (const name of sortByBytes([...files.keys()])) {
      const plain = files.get(name)!;
      const nonce = randomBytes(NONCE_BYTES);
      const sealed = encrypt(keys.enc, nonce, name, plain);
      const path = `${name}.enc`;
      writeNewFile(staging.path(path), sealed);
      entries.push({ name, path, nonce: nonce.toString('hex'), size: plain.length, ciphertext_sha256: sha256Hex(sealed) });
      log(`encrypted ${name} (${plain.length} bytes)`);
      plain.fill(0);
    }
    const unsigned: Omit<BundleManifest, 'mac'> = {
      format: BUNDLE_FORMAT,
      version: BUNDLE_VERSION,
      name: opts.name,
      ...(opts.content === 'adapter' ? { content: 'adapter' as const } : {}),
      created: (opts.now ?? new Date()).toISOString(),
      cipher: CIPHER,
      kdf: { name: 'scrypt', salt: salt.toString('hex'), N: params.N, r: params.r, p: params.p, then: 'HKDF-SHA256' },
      key_id: kid,
      model_sha256: modelSha,
      files: entries,
    };
    const manifest: BundleManifest = { ...unsigned, mac: manifestMac(keys.mac, unsigned).toString('hex') };
    writeNewFile(staging.path(MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
    staging.publish('bundle');
    return { out, manifest };
  } finally {
    staging.discard();
    keys.enc.fill(0);
    keys.mac.fill(0);
  }
}

function bundleError(bundle: string, message: string): AjarError {
  return new AjarError('bad_bundle', `bundle ${bundle}: ${message}`);
}

/** What a manifest says its bundle holds (absent: a model). */
export function bundleContent(manifest: BundleManifest): BundleContent {
  return manifest.content === 'adapter' ? 'adapter' : 'model';
}

function isHex(v: unknown, bytes: number): v is string {
  return typeof v === 'string' && v.length === 2 * bytes && /^[0-9a-f]+$/.test(v);
}

/** manifest.json parsed and shape-checked (nothing in it is trusted until the MAC is checked). */
export function readManifest(bundle: string): BundleManifest {
  if (!existsSync(bundle) || !statSync(bundle).isDirectory()) throw bundleError(bundle, 'no such folder');
  const path = join(bundle, MANIFEST);
  if (!entryExists(path)) throw bundleError(bundle, `${MANIFEST} is missing; this is not a closed bundle, or it is incomplete`);
  const text = readRegularText(path, { code: 'bad_bundle', kind: 'index', root: bundle });
  let m: unknown;
  try {
    m = JSON.parse(text);
  } catch {
    throw bundleError(bundle, `${MANIFEST} is not valid JSON: the manifest was changed or damaged`);
  }
  const man = m as Partial<BundleManifest> | null;
  if (man === null || typeof man !== 'object' || man.format !== BUNDLE_FORMAT) {
    throw bundleError(bundle, `${MANIFEST} is not an ajar closed bundle manifest (format "${BUNDLE_FORMAT}")`);
  }
  if (man.version !== BUNDLE_VERSION) {
    throw bundleError(bundle, `${MANIFEST} has format version ${JSON.stringify(man.version)}; this ajar reads version ${BUNDLE_VERSION}`);
  }
  if (typeof man.kdf !== 'object' || man.kdf === null || man.kdf.name !== 'scrypt' || !isHex(man.kdf.salt, SALT_BYTES)
    || !isHex(man.mac, 32) || typeof man.key_id !== 'string' || !Array.isArray(man.files)) {
    throw bundleError(bundle, `${MANIFEST} lacks a field it needs (kdf, key_id, files, mac): the manifest was changed or damaged`);
  }
  if (man.content !== undefined && man.content !== 'adapter') {
    throw bundleError(bundle, `${MANIFEST} has content ${JSON.stringify(man.content)}; this ajar reads model and "adapter" bundles`);
  }
  checkScryptParams(man.kdf, `bundle ${bundle}: ${MANIFEST}`);
  return man as BundleManifest;
}

/** After the MAC: every entry must be one plain name, stored as name.enc, listed once. */
function checkEntries(bundle: string, files: BundleFileEntry[], content: BundleContent): void {
  const seen = new Set<string>();
  for (const f of files) {
    const ok = f !== null && typeof f === 'object' && typeof f.name === 'string' && isPlainFileName(f.name) && f.name !== MANIFEST
      && f.path === `${f.name}.enc` && isHex(f.nonce, NONCE_BYTES) && Number.isSafeInteger(f.size) && f.size >= 0
      && isHex(f.ciphertext_sha256, 32) && !seen.has(f.name);
    if (!ok) throw bundleError(bundle, `${MANIFEST} has a malformed file entry ${JSON.stringify(f)}`);
    seen.add(f.name);
  }
  if (!seen.has(REQUIRED_FILE[content])) throw bundleError(bundle, `${MANIFEST} lists no ${REQUIRED_FILE[content]}`);
}

/** A sealed file is read no further than the size its manifest entry states (plus the tag), when it states one. */
function sealedLimit(f: BundleFileEntry): { maxBytes?: number; limitOf?: string } {
  if (!Number.isSafeInteger(f.size) || f.size < 0) return {};
  return { maxBytes: f.size + TAG_BYTES, limitOf: `this file (${MANIFEST} says ${f.size} bytes plus the ${TAG_BYTES}-byte tag)` };
}

export interface OpenedBundle {
  manifest: BundleManifest;
  /** Decrypted model files by name: held in memory only. */
  files: Map<string, Uint8Array>;
}

/**
 * Open a bundle in memory. Order: the manifest's MAC (a wrong key or a changed manifest), then that it holds what
 * `expect` says, then every listed file is present, then each file's size, SHA-256 and GCM tag; all before
 * anything is returned.
 */
export function openBundle(bundle: string, secret: Uint8Array, expect: BundleContent = 'model'): OpenedBundle {
  const manifest = readManifest(bundle);
  const params = checkScryptParams(manifest.kdf, `bundle ${bundle}: ${MANIFEST}`);
  const keys = deriveBundleKeys(secret, Buffer.from(manifest.kdf.salt, 'hex'), params);
  try {
    const expected = manifestMac(keys.mac, manifest);
    const got = Buffer.from(manifest.mac, 'hex');
    if (got.length !== expected.length || !timingSafeEqual(got, expected)) {
      throw new AjarError('wrong_key', `bundle ${bundle}: wrong key, or the manifest was changed: its MAC does not match `
        + `(the bundle names key id ${String(manifest.key_id).slice(0, 32)}; the given key's id is ${keyId(secret)})`);
    }
    const content = bundleContent(manifest);
    if (content !== expect) {
      throw bundleError(bundle, content === 'adapter'
        ? 'holds an encrypted LoRA adapter, not a model: load it over its base model (loadAdapterBundle)'
        : 'holds a whole model, not a LoRA adapter: serve it as a model bundle (ajar serve --bundle)');
    }
    checkEntries(bundle, manifest.files, content);
    const missing = manifest.files.filter((f) => !entryExists(join(bundle, f.path))).map((f) => f.path);
    if (missing.length > 0) {
      throw bundleError(bundle, `${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} missing; copy the whole bundle folder`);
    }
    const files = new Map<string, Uint8Array>();
    for (const f of manifest.files) {
      // NOTE: read no more than the manifest's size; a longer file is refused before it fills memory.
      const sealed = readRegularFile(join(bundle, f.path), { code: 'bad_bundle', kind: 'whole', root: bundle, ...sealedLimit(f) });
      if (sealed.length !== f.size + TAG_BYTES) {
        throw bundleError(bundle, `${f.path} was altered: it has ${sealed.length} bytes, the manifest says ${f.size + TAG_BYTES}`);
      }
      if (sha256Hex(sealed) !== f.ciphertext_sha256) {
        throw bundleError(bundle, `${f.path} was altered: its SHA-256 does not match the manifest`);
      }
      const d = createDecipheriv('aes-256-gcm', keys.enc, Buffer.from(f.nonce, 'hex'), { authTagLength: TAG_BYTES });
      d.setAAD(Buffer.from(f.name, 'utf8'));
      d.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
      const head = d.update(sealed.subarray(0, sealed.length - TAG_BYTES));
      try {
        const tail = d.final();
        files.set(f.name, tail.length === 0 ? head : Buffer.concat([head, tail]));
      } catch {
        head.fill(0);
        throw bundleError(bundle, `${f.path} was altered: its authentication tag does not match`);
      }
    }
    if (contentHashOfFiles(files) !== manifest.model_sha256) {
      throw bundleError(bundle, 'the decrypted files do not hash to the manifest\'s model_sha256');
    }
    return { manifest, files };
  } finally {
    keys.enc.fill(0);
    keys.mac.fill(0);
  }
}

export interface BundledModel extends InMemoryModel<CausalLM> {
  manifest: BundleManifest;
}

/**
 * A servable model from a bundle: decrypted, built and loaded in memory; the decrypted bytes are zeroed once the
 * weights are in the model. Every failure is an AjarError before anything is served.
 */
export function loadBundledModel(bundle: string, secret: Uint8Array): BundledModel {
  const { manifest, files } = openBundle(bundle, secret);
  try {
    return { ...causalLMFromFiles(files, `bundle ${bundle}`), manifest };
  } finally {
    for (const bytes of files.values()) bytes.fill(0);
  }
}

export interface BundleCheck {
  problems: string[];
  /** Files checked against the manifest. */
  checked: number;
  authenticated: boolean;
}

/**
 * `ajar verify` on a bundle. Without a key: each listed file is present with the SHA-256 the manifest records and
 * nothing unlisted is in the folder (integrity, not authenticity: anyone can rewrite an unauthenticated manifest).
 * With a key: a full openBundle (MAC, tags), decrypted in memory and discarded.
 */
export function checkBundle(bundle: string, secret?: Uint8Array): BundleCheck {
  const manifest = readManifest(bundle);
  const problems: string[] = [];
  const listed = new Set<string>([MANIFEST]);
  for (const f of manifest.files) {
    const path = typeof f?.path === 'string' && isPlainFileName(f.path) ? f.path : undefined;
    if (path === undefined) {
      problems.push(`${MANIFEST} has a malformed file entry`);
      continue;
    }
    listed.add(path);
    if (!entryExists(join(bundle, path))) {
      problems.push(`${path}: missing`);
      continue;
    }
    let hash: string;
    try {
      hash = sha256OfRegularFile(join(bundle, path), { code: 'bad_bundle', kind: 'weights', root: bundle, ...sealedLimit(f) });
    } catch (e) {
      if (!(e instanceof AjarError)) throw e;
      problems.push(`${path}: ${e.message}`); // a FIFO, a link out of the bundle, longer than the manifest says
      continue;
    }
    if (hash !== f.ciphertext_sha256) problems.push(`${path}: changed (SHA-256 differs)`);
  }
  for (const name of readdirSync(bundle)) {
    if (!listed.has(name)) problems.push(`${name}: not listed in ${MANIFEST}`);
  }
  if (secret === undefined || problems.length > 0) return { problems, checked: manifest.files.length, authenticated: false };
  try {
    const { files } = openBundle(bundle, secret, bundleContent(manifest));
    for (const bytes of files.values()) bytes.fill(0);
  } catch (e) {
    if (!(e instanceof AjarError)) throw e;
    return { problems: [e.message.replace(`bundle ${bundle}: `, '')], checked: manifest.files.length, authenticated: false };
  }
  return { problems, checked: manifest.files.length, authenticated: true };
}
