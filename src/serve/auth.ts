// Who is calling: API keys for /v1 (looked up by their non-secret id, hash compared in constant time, re-read from
// the store on every request, or from a cache the store's change notifications keep exact (key-cache.ts), so
// revocation and expiry hold at once) and the admin token for /admin.
import { createHash, timingSafeEqual } from 'node:crypto';
import { ServeError, type ServeErrorCode } from './errors.js';
import { burnComparison, keyMatches, keyStatus, parseKey } from './keys.js';
import type { AuditEntry, KeyRecord, Store } from './store.js';

/** The token after "Bearer ", or undefined. */
export function bearerToken(header: string | string[] | undefined): string | undefined {
  const h = Array.isArray(header) ? header[0] : header;
  if (h === undefined) return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
  return m ? m[1] : undefined;
}

/** What a failed authentication was for: the API (/v1), /admin, or the dashboard's sign-in. */
export type AuthTarget = 'api' | 'admin' | 'dashboard';

export interface AuthContext {
  store: Store;
  /** Where key records are read (a KeyCache); default: store.getKey. */
  getKey?: (id: string) => Promise<KeyRecord | undefined>;
  now: number;
  remote: string;
  path: string;
  /** Counts a failure by reason (metrics, the per-address failure limit). */
  onFailure?: (reason: string) => void;
  /** Where failures are audited (a batching buffer); default: straight to the store. */
  audit?: (e: AuditEntry) => void;
}

async function fail(ctx: AuthContext, code: ServeErrorCode, reason: string, key: KeyRecord | null,
  prefix: string | null, target: AuthTarget): Promise<never> {
  const entry: AuditEntry = {
    ts: ctx.now, actor: 'client', action: 'auth.failure', keyId: key?.id ?? null, keyPrefix: prefix,
    remote: ctx.remote, detail: { reason, target, path: ctx.path },
  };
  if (ctx.audit) ctx.audit(entry);
  else await ctx.store.appendAudit(entry);
  ctx.onFailure?.(reason);
  throw new ServeError(code);
}

/**
 * The key record behind an Authorization header, or a 401 (missing_api_key, invalid_api_key, key_revoked,
 * key_expired) after an audit entry that holds the key's prefix at most, never the secret.
 */
export async function authenticateKey(ctx: AuthContext, header: string | string[] | undefined): Promise<KeyRecord> {
  const presented = bearerToken(header);
  if (presented === undefined) return fail(ctx, 'missing_api_key', 'missing', null, null, 'api');
  const parsed = parseKey(presented);
  if (parsed === null) {
    burnComparison(presented);
    // NOTE: a malformed token might be some other secret pasted by mistake: audit nothing of it.
    return fail(ctx, 'invalid_api_key', 'malformed', null, null, 'api');
  }
  const rec = await (ctx.getKey ? ctx.getKey(parsed.id) : ctx.store.getKey(parsed.id));
  if (!rec) {
    burnComparison(presented);
    return fail(ctx, 'invalid_api_key', 'unknown_key', null, parsed.prefix, 'api');
  }
  if (!keyMatches(presented, rec.hash)) return fail(ctx, 'invalid_api_key', 'wrong_secret', rec, parsed.prefix, 'api');
  const status = keyStatus(rec, ctx.now);
  if (status === 'revoked') return fail(ctx, 'key_revoked', 'revoked', rec, parsed.prefix, 'api');
  if (status === 'expired') return fail(ctx, 'key_expired', 'expired', rec, parsed.prefix, 'api');
  return rec;
}

export function adminTokenHash(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** Whether an Authorization header carries the token whose adminTokenHash is `expected` (constant time). */
export function bearerMatches(header: string | string[] | undefined, expected: Buffer): boolean {
  const presented = bearerToken(header);
  return presented !== undefined && timingSafeEqual(adminTokenHash(presented), expected);
}

/**
 * Check the admin token. NOTE: both sides are hashed first so timingSafeEqual compares equal lengths and the
 * token's length does not leak either.
 */
export async function authenticateAdmin(ctx: AuthContext, expected: Buffer | null,
  header: string | string[] | undefined): Promise<void> {
  return authenticateAdminToken(ctx, expected, bearerToken(header), 'admin');
}

/** Check a presented admin token (the dashboard's sign-in form sends it as a field); failures audited as above. */
export async function authenticateAdminToken(ctx: AuthContext, expected: Buffer | null, presented: string | undefined,
  target: AuthTarget): Promise<void> {
  if (expected === null) throw new ServeError('admin_disabled');
  if (presented === undefined || presented === '') return fail(ctx, 'invalid_admin_token', 'missing', null, null, target);
  if (!timingSafeEqual(adminTokenHash(presented), expected)) {
    return fail(ctx, 'invalid_admin_token', 'wrong_token', null, null, target);
  }
}
