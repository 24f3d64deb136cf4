// Bundle keys: the secret (a key file's bytes or AJAR_BUNDLE_KEY), its public key id, and the keys a bundle
// derives from it: scrypt(secret, bundle salt) -> HKDF-SHA256 -> an AES-256-GCM key and, separately, an HMAC key.
import { createHmac, hkdfSync, randomBytes, scryptSync } from 'node:crypto';
import { closeSync, constants as fsConstants, fsyncSync, openSync, statSync, writeSync } from 'node:fs';
import { readRegularFile } from '../io/safe-read.js';
import { AjarError } from '../tensor/errors.js';

/** The shortest secret accepted, in bytes: 32 (`ajar release key` writes 64 hex characters, 256 random bits). */
export const MIN_SECRET_BYTES = 32;

export const KEY_ENV = 'AJAR_BUNDLE_KEY';

/** scrypt's cost for new bundles: N 2^15, r 8, p 1 (32 MiB of memory per derivation). */
export const SCRYPT_DEFAULTS = { N: 32768, r: 8, p: 1 } as const;

/** Bounds on the scrypt parameters a manifest may ask for, checked before deriving (a crafted N could take GiBs). */
export const SCRYPT_LIMITS = { minN: 16384, maxN: 262144, r: 8, maxP: 4 } as const;

export interface ScryptParams {
  N: number;
  r: number;
  p: number;
}

export interface BundleKeys {
  enc: Buffer; // AES-256-GCM key
  mac: Buffer; // HMAC-SHA256 key for the manifest
}

const INFO_ENC = 'ajar bundle v1: aes-256-gcm file key';
const INFO_MAC = 'ajar bundle v1: hmac-sha256 manifest key';
const KEY_ID_SALT = 'ajar key id v1';

function scryptMem(p: ScryptParams): number {
  return 128 * p.N * p.r * p.p + 16 * 1024 * 1024;
}

/** Where the secret came from, for messages. */
export interface Secret {
  bytes: Buffer;
  source: string;
  /** Warnings for the user (a key file others can read). */
  warnings: string[];
}

function checkLength(bytes: Buffer, source: string): void {
  if (bytes.length < MIN_SECRET_BYTES) {
    throw new AjarError('weak_key', `${source} holds ${bytes.length} bytes; a bundle key needs at least ${MIN_SECRET_BYTES} `
      + "(make one with 'ajar release key --out FILE', or 'openssl rand -hex 32 > FILE')");
  }
}

/** The secret from --key-file (its bytes, one trailing newline removed), else AJAR_BUNDLE_KEY, else an error. */
export function readSecret(keyFile: string | undefined, env: NodeJS.ProcessEnv = process.env): Secret {
  const warnings: string[] = [];
  if (keyFile !== undefined) {
    // NOTE: the user named the file, so no folder bounds it; a FIFO or device is still refused, not waited on.
    let bytes = readRegularFile(keyFile, { code: 'bad_flag', kind: 'config' });
    // NOTE: one trailing newline only (editors and `echo` add one); other bytes are the key as written.
    if (bytes.length > 0 && bytes[bytes.length - 1] === 0x0a) {
      bytes = bytes.subarray(0, bytes.length - (bytes.length > 1 && bytes[bytes.length - 2] === 0x0d ? 2 : 1));
    }
    checkLength(bytes, `--key-file ${keyFile}`);
    if (process.platform !== 'win32' && (statSync(keyFile).mode & 0o077) !== 0) {
      warnings.push(`${keyFile} is readable by other users; chmod 600 it`);
    }
    return { bytes: Buffer.from(bytes), source: `--key-file ${keyFile}`, warnings };
  }
  const value = env[KEY_ENV];
  if (value !== undefined && value !== '') {
    const bytes = Buffer.from(value, 'utf8');
    checkLength(bytes, KEY_ENV);
    return { bytes, source: KEY_ENV, warnings };
  }
  throw new AjarError('no_key', `no bundle key: pass --key-file FILE or set ${KEY_ENV} `
    + "(make a key with 'ajar release key --out FILE')");
}

/**
 * The key id: 16 hex characters that name a secret without revealing it: HMAC-SHA256(scrypt(secret, fixed salt),
 * "ajar key id"). NOTE: scrypt, not a fast hash, so the id gives no shortcut for guessing a weak secret.
 */
export function keyId(secret: Uint8Array): string {
  const k = scryptSync(secret, KEY_ID_SALT, 32, { ...SCRYPT_DEFAULTS, maxmem: scryptMem(SCRYPT_DEFAULTS) });
  return createHmac('sha256', k).update('ajar key id').digest('hex').slice(0, 16);
}

export function checkScryptParams(p: unknown, where: string): ScryptParams {
  const q = p as Partial<ScryptParams> | null;
  const ok = q !== null && typeof q === 'object' && Number.isInteger(q.N) && Number.isInteger(q.r) && Number.isInteger(q.p)
    && q.N! >= SCRYPT_LIMITS.minN && q.N! <= SCRYPT_LIMITS.maxN && (q.N! & (q.N! - 1)) === 0 && q.r === SCRYPT_LIMITS.r
    && q.p! >= 1 && q.p! <= SCRYPT_LIMITS.maxP;
  if (!ok) {
    throw new AjarError('bad_bundle', `${where}: the scrypt parameters ${JSON.stringify(p)} are outside what ajar accepts `
      + `(N a power of two in ${SCRYPT_LIMITS.minN}..${SCRYPT_LIMITS.maxN}, r ${SCRYPT_LIMITS.r}, p 1..${SCRYPT_LIMITS.maxP}); the manifest is damaged`);
  }
  return { N: q.N!, r: q.r!, p: q.p! };
}

/** The encryption and MAC keys of one bundle: HKDF with distinct info strings over scrypt(secret, salt). */
export function deriveBundleKeys(secret: Uint8Array, salt: Uint8Array, params: ScryptParams): BundleKeys {
  const master = scryptSync(secret, salt, 32, { ...params, maxmem: scryptMem(params) });
  const enc = Buffer.from(hkdfSync('sha256', master, salt, INFO_ENC, 32));
  const mac = Buffer.from(hkdfSync('sha256', master, salt, INFO_MAC, 32));
  master.fill(0);
  return { enc, mac };
}

/** A new random key: 32 bytes as 64 hex characters and a newline, in a new file only its owner can read. */
export function writeNewKeyFile(path: string): string {
  const secret = randomBytes(32).toString('hex');
  let fd: number;
  try {
    fd = openSync(path, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o600);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new AjarError('out_exists', `${path} already exists; a key file is never overwritten (choose another --out)`);
    throw new AjarError('write_failed', `cannot create ${path} (${code ?? (e as Error).message})`);
  }
  try {
    writeSync(fd, `${secret}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return keyId(Buffer.from(secret, 'utf8'));
}
