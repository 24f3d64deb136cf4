// API keys: `ajar_sk_<id>_<secret>`, shown once, stored only as SHA-256 and compared in constant time.
// The id (64 random bits, not secret) finds the record; the secret (256 random bits) proves possession.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { AjarError } from '../tensor/errors.js';
import type { AuditEntry, KeyRecord, Store } from './store.js';
import { isoTime, type QuotaPeriod } from './time.js';

export const KEY_PREFIX = 'ajar_sk_';
const KEY_SHAPE = /^ajar_sk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;
const ID_SHAPE = /^[0-9a-f]{16}$/;

export interface ParsedKey {
  id: string;
  /** `ajar_sk_<id>`: safe to log and audit; it names the key without revealing it. */
  prefix: string;
}

/**
 * SHA-256 of the whole key. NOTE: a fast hash is right here, unlike for passwords: the secret is 256 random bits,
 * so there is nothing to brute-force offline and a slow KDF (bcrypt, scrypt) would only slow every request.
 */
export function hashKey(key: string): Buffer {
  return createHash('sha256').update(key, 'utf8').digest();
}

/** The id and loggable prefix of a string shaped like one of our keys, or null. */
export function parseKey(key: string): ParsedKey | null {
  const m = KEY_SHAPE.exec(key);
  return m ? { id: m[1], prefix: `${KEY_PREFIX}${m[1]}` } : null;
}

export function isKeyId(id: string): boolean {
  return ID_SHAPE.test(id);
}

/** A new key for a given id (a fresh id when none is given). */
export function newKey(id: string = randomBytes(8).toString('hex')): { id: string; key: string; hash: Buffer } {
  const secret = randomBytes(32).toString('base64url'); // 43 characters
  const key = `${KEY_PREFIX}${id}_${secret}`;
  return { id, key, hash: hashKey(key) };
}

/** Does `presented` hash to `stored`? Constant time in the hash, whatever the input. */
export function keyMatches(presented: string, stored: Buffer): boolean {
  const h = hashKey(presented);
  return stored.length === h.length && timingSafeEqual(h, stored);
}

const DUMMY_HASH = hashKey(`${KEY_PREFIX}0000000000000000_${'A'.repeat(43)}`);

/** Spend the same hashing work as a real comparison (for unknown ids, so timing does not tell ids apart). */
export function burnComparison(presented: string): void {
  keyMatches(presented, DUMMY_HASH);
}

export type KeyStatus = 'active' | 'revoked' | 'expired';

export function keyStatus(k: KeyRecord, now: number): KeyStatus {
  if (k.revokedAt !== null) return 'revoked';
  if (k.expiresAt !== null && now >= k.expiresAt) return 'expired';
  return 'active';
}

/** What `keys list`, `/admin/keys` and JSON output show: everything but the hash. */
export interface KeyView {
  id: string;
  name: string;
  status: KeyStatus;
  created_at: string;
  rotated_at: string | null;
  revoked_at: string | null;
  expires_at: string | null;
  rpm: number | null;
  tpm: number | null;
  quota_tokens: number | null;
  quota_period: QuotaPeriod | null;
  models: string[] | null;
}

export function keyView(k: KeyRecord, now: number): KeyView {
  const t = (ms: number | null): string | null => (ms === null ? null : isoTime(ms));
  return {
    id: k.id, name: k.name, status: keyStatus(k, now), created_at: isoTime(k.createdAt), rotated_at: t(k.rotatedAt),
    revoked_at: t(k.revokedAt), expires_at: t(k.expiresAt), rpm: k.rpm, tpm: k.tpm, quota_tokens: k.quotaTokens,
    quota_period: k.quotaPeriod, models: k.models,
  };
}

export interface NewKeySpec {
  name: string;
  rpm?: number | null;
  tpm?: number | null;
  quotaTokens?: number | null;
  /** Defaults to 'month' when quotaTokens is given. */
  quotaPeriod?: QuotaPeriod | null;
  expiresAt?: number | null;
  models?: string[] | null;
}

/** Who performs a key operation, for the audit log. */
export interface Actor {
  actor: string;
  remote?: string | null;
}

function positiveInt(v: number | null | undefined, what: string): number | null {
  if (v === undefined || v === null) return null;
  if (!Number.isSafeInteger(v) || v < 1) throw new AjarError('bad_key_spec', `${what} must be a whole number >= 1, got ${v}`);
  return v;
}

/** Check a key spec; every problem is AjarError('bad_key_spec') naming the field. */
export function validateKeySpec(spec: NewKeySpec, now: number): Omit<KeyRecord, 'id' | 'hash' | 'createdAt'> {
  const name = typeof spec.name === 'string' ? spec.name.trim() : '';
  if (name === '' || name.length > 200) throw new AjarError('bad_key_spec', 'a key needs a name of 1 to 200 characters');
  const quotaTokens = positiveInt(spec.quotaTokens, 'the token quota');
  if (spec.quotaPeriod != null && quotaTokens === null) {
    throw new AjarError('bad_key_spec', 'a quota period was given without a token quota: add the quota in tokens');
  }
  if (spec.quotaPeriod != null && spec.quotaPeriod !== 'day' && spec.quotaPeriod !== 'month') {
    throw new AjarError('bad_key_spec', `the quota period must be 'day' or 'month', got '${String(spec.quotaPeriod)}'`);
  }
  const expiresAt = spec.expiresAt ?? null;
  if (expiresAt !== null && (!Number.isFinite(expiresAt) || expiresAt <= now)) {
    throw new AjarError('bad_key_spec', `the expiry ${Number.isFinite(expiresAt) ? isoTime(expiresAt) : expiresAt} is not in the future`);
  }
  let models: string[] | null = null;
  if (spec.models != null) {
    models = spec.models.map((m) => m.trim()).filter((m) => m !== '');
    if (models.length === 0) throw new AjarError('bad_key_spec', 'the model list is empty: name at least one model id');
  }
  return {
    name,
    rotatedAt: null,
    revokedAt: null,
    expiresAt,
    rpm: positiveInt(spec.rpm, 'requests per minute'),
    tpm: positiveInt(spec.tpm, 'tokens per minute'),
    quotaTokens,
    quotaPeriod: quotaTokens === null ? null : (spec.quotaPeriod ?? 'month'),
    models,
  };
}

function audit(action: AuditEntry['action'], who: Actor, keyId: string, now: number,
  detail: Record<string, unknown> | null): AuditEntry {
  return { ts: now, actor: who.actor, action, keyId, keyPrefix: `${KEY_PREFIX}${keyId}`, remote: who.remote ?? null, detail };
}

/** Create a key; returns the record and the key, which exists nowhere else after this call. */
export async function createApiKey(store: Store, spec: NewKeySpec, who: Actor,
  now: number = Date.now()): Promise<{ record: KeyRecord; key: string }> {
  const fields = validateKeySpec(spec, now);
  const { id, key, hash } = newKey();
  const record: KeyRecord = { id, hash, createdAt: now, ...fields };
  await store.createKey(record);
  await store.appendAudit(audit('key.create', who, id, now, {
    name: record.name, rpm: record.rpm, tpm: record.tpm, quota_tokens: record.quotaTokens,
    quota_period: record.quotaPeriod, expires_at: record.expiresAt === null ? null : isoTime(record.expiresAt),
    models: record.models,
  }));
  return { record, key };
}

async function existingKey(store: Store, id: string): Promise<KeyRecord> {
  const rec = isKeyId(id) ? await store.getKey(id) : undefined;
  if (!rec) throw new AjarError('key_not_found', `no API key with id '${id}' (see 'ajar keys list')`);
  return rec;
}

/** New secret for the same id, name, limits and usage history; the old key stops working at once. */
export async function rotateApiKey(store: Store, id: string, who: Actor,
  now: number = Date.now()): Promise<{ record: KeyRecord; key: string }> {
  const rec = await existingKey(store, id);
  if (rec.revokedAt !== null) throw new AjarError('key_revoked', `key ${id} is revoked; create a new key instead`);
  const { key, hash } = newKey(id);
  await store.replaceKeyHash(id, hash, now);
  await store.appendAudit(audit('key.rotate', who, id, now, { name: rec.name }));
  return { record: { ...rec, hash, rotatedAt: now }, key };
}

/** Revoke a key (idempotent: revoking twice keeps the first time and writes no second entry). */
export async function revokeApiKey(store: Store, id: string, who: Actor, now: number = Date.now()): Promise<KeyRecord> {
  const rec = await existingKey(store, id);
  if (rec.revokedAt !== null) return rec;
  await store.revokeKey(id, now);
  await store.appendAudit(audit('key.revoke', who, id, now, { name: rec.name }));
  return { ...rec, revokedAt: now };
}
