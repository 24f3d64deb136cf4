// The store behind the server and the keys/usage/audit commands: API keys (hashes only), usage records and the
// audit log. Every method is async so a PostgreSQL store can implement the same interface; SQLite is the default.
import { homedir } from 'node:os';
import { join } from 'node:path';
import { AjarError } from '../tensor/errors.js';
import type { QuotaPeriod } from './time.js';

/** One API key as stored. `hash` is SHA-256 of the whole key; the key itself is never stored. */
export interface KeyRecord {
  id: string;
  name: string;
  hash: Buffer;
  createdAt: number; // epoch ms, like every time below
  rotatedAt: number | null;
  revokedAt: number | null;
  expiresAt: number | null;
  rpm: number | null; // null: the server's default
  tpm: number | null; // null: the server's default
  quotaTokens: number | null; // null: no quota
  quotaPeriod: QuotaPeriod | null;
  models: string[] | null; // null: every served model
}

/** One metered request. Open mode has no key: keyId is null and `client` (the address) identifies the caller. */
export interface UsageRecord {
  ts: number;
  keyId: string | null;
  client: string | null;
  model: string | null;
  endpoint: string;
  promptTokens: number;
  completionTokens: number;
  latencyMs: number;
  /** HTTP status; 499 when the client went away before the response ended (nginx's convention). */
  status: number;
  finishReason: string | null;
  user: string | null;
  requestId: string | null;
}

export interface QuotaRequest {
  keyId: string;
  requestId: string;
  quota: number;
  since: number;
  min: number;
  want: number;
  now: number;
  /** Epoch ms after which the hold no longer counts (its process died without releasing it). */
  expiresAt: number;
}

/** A generation in flight as journalled: its usage so far, who runs it (journal.ts) and when it last reported. */
export interface JournalEntry extends UsageRecord {
  requestId: string;
  owner: string;
  /** Epoch ms of the last update. */
  heartbeat: number;
}

export interface UsageFilter {
  keyId?: string;
  since?: number;
  /** listUsage only: the newest `limit` records. */
  limit?: number;
}

/** Totals per key and UTC day: the contract of `ajar usage --format json`. */
export interface UsageSummaryRow {
  key_id: string; // the key id, or "anon:<address>" for open-mode callers
  day: string; // YYYY-MM-DD, UTC
  requests: number;
  prompt_tokens: number;
  completion_tokens: number;
}

export type AuditAction =
  | 'key.create'
  | 'key.rotate'
  | 'key.revoke'
  | 'adapter.load'
  | 'adapter.unload'
  | 'admin.request'
  | 'auth.failure';

export interface AuditEntry {
  id?: number;
  ts: number;
  /** Who acted: 'cli:<os user>', 'admin' (the admin token) or 'client' (a caller of /v1). */
  actor: string;
  action: AuditAction;
  keyId: string | null;
  /** For auth failures: the non-secret prefix `ajar_sk_<id>` of the presented key, when it had our shape. */
  keyPrefix: string | null;
  remote: string | null;
  /** Small JSON-able facts (reason, path, status). Never a secret. */
  detail: Record<string, unknown> | null;
}

export interface AuditFilter {
  since?: number;
  limit?: number;
}

/** How a store makes usage records durable: 'full' waits for the log's flush to disk at every commit; 'normal'
 * (default) commits without waiting for it (PostgreSQL's synchronous_commit off for metering writes, flushed within
 * ~0.6 s; SQLite's WAL synced once a second), so a commit survives any server process's crash but the last second
 * could be lost to a power cut. */
export type DbSync = 'full' | 'normal';

export interface Migrated {
  /** The schema version now. */
  version: number;
  /** The migrations this open applied, oldest first (none when the database was up to date). */
  applied: Array<{ version: number; name: string }>;
}

export interface Store {
  readonly kind: string;
  createKey(rec: KeyRecord): Promise<void>;
  getKey(id: string): Promise<KeyRecord | undefined>;
  listKeys(): Promise<KeyRecord[]>;
  /** Sets revokedAt once; returns false when there is no such key. */
  revokeKey(id: string, at: number): Promise<boolean>;
  /** Replaces the hash (rotation); returns false when there is no such key. */
  replaceKeyHash(id: string, hash: Buffer, at: number): Promise<boolean>;
  /** Appends the record, and drops the journal entry of its requestId (if any) in the same transaction. */
  recordUsage(u: UsageRecord): Promise<void>;
  /**
   * Inserts or replaces the journal entry of a generation in flight (keyed by requestId): what a crash would
   * otherwise lose. recordUsage closes it; reconcileJournal (journal.ts) turns dead processes' entries into records.
   */
  journalUsage(j: JournalEntry): Promise<void>;
  /** Journal entries, oldest first. */
  listJournal(): Promise<JournalEntry[]>;
  /** Appends each record and drops the journal entry of its requestId, all in one transaction. */
  closeJournal(records: UsageRecord[]): Promise<void>;
  /** Prompt + completion tokens a key has used since `since` (epoch ms). */
  tokensUsedSince(keyId: string, since: number): Promise<number>;
  /**
   * Atomically, for every process on this store: the key's quota left (quota - used since `since` - live holds);
   * when at least `min` is left, hold min(want, left) tokens under `requestId` until `expiresAt` and return them.
   * recordUsage (same requestId) and releaseQuota end a hold.
   */
  reserveQuota(r: QuotaRequest): Promise<{ granted: number; left: number }>;
  releaseQuota(requestId: string): Promise<void>;
  usageSummary(filter: UsageFilter): Promise<UsageSummaryRow[]>;
  /**
   * The daily per-key rollups (kept in the same transaction as the raw records, so they always agree with
   * usageSummary over whole days). `since` is rounded down to its UTC day.
   */
  dailyUsage(filter: UsageFilter): Promise<UsageSummaryRow[]>;
  /** Raw usage records, oldest first (billing exports, tests). */
  listUsage(filter: UsageFilter): Promise<Array<UsageRecord & { id: number }>>;
  appendAudit(e: AuditEntry): Promise<void>;
  /** Appends entries in one transaction (batched authentication failures). */
  appendAudits(entries: AuditEntry[]): Promise<void>;
  /** Oldest first. */
  listAudit(filter: AuditFilter): Promise<AuditEntry[]>;
  /** Throws when the store cannot answer (readiness checks). */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** $AJAR_HOME, else ~/.ajar. */
export function dataDir(): string {
  const home = process.env.AJAR_HOME;
  return home !== undefined && home !== '' ? home : join(homedir(), '.ajar');
}

/** `sqlite:<data dir>/ajar.db`. */
export function defaultDbSpec(): string {
  return `sqlite:${join(dataDir(), 'ajar.db')}`;
}

export type DbSpec = { kind: 'sqlite'; path: string /* ':memory:' for an in-memory database */ } | { kind: 'postgres'; url: string };

/** Parse a --db value: `sqlite:PATH` or a `postgres://` (or `postgresql://`) URL. */
export function parseDbSpec(spec: string): DbSpec {
  if (spec.startsWith('sqlite:')) {
    const path = spec.slice('sqlite:'.length);
    if (path === '') throw new AjarError('bad_db', `--db '${spec}' names no file: use sqlite:PATH`);
    return { kind: 'sqlite', path };
  }
  if (/^postgres(ql)?:\/\//.test(spec)) return { kind: 'postgres', url: spec };
  throw new AjarError('bad_db', `--db '${spec}' is not a database address: use sqlite:PATH or postgres://USER@HOST:PORT/DB`);
}

export interface OpenOptions {
  /** How usage records reach the disk (pg-store.ts's DbSync): 'normal' (default) or 'full'. */
  sync?: DbSync;
}

/** Open the store a --db value names (default: defaultDbSpec()), applying its migrations. Drivers load when used. */
export async function openStore(spec: string = defaultDbSpec(), opts: OpenOptions = {}): Promise<Store> {
  return (await openMigrated(spec, opts)).store;
}

/** Open a store and say which migrations this open applied (ajar db migrate). */
export async function openMigrated(spec: string = defaultDbSpec(), opts: OpenOptions = {}): Promise<{ store: Store; migrated: Migrated }> {
  const parsed = parseDbSpec(spec);
  if (parsed.kind === 'postgres') {
    const { PgStore } = await import('./pg-store.js');
    const store = await PgStore.open(parsed.url, opts);
    return { store, migrated: store.migrated };
  }
  // NOTE: better-sqlite3 is an optional dependency (a native module): loaded here, on first use, so that a failed
  // native build leaves the rest of ajar, and 'ajar/serve' with another Store, working.
  let sqlite: typeof import('./sqlite-store.js');
  try {
    sqlite = await import('./sqlite-store.js');
  } catch (e) {
    throw new AjarError('sqlite_unavailable', `the SQLite store needs the better-sqlite3 package, which is not installed `
      + `(${(e as Error).message.split('\n')[0]}); install it with: npm install better-sqlite3`);
  }
  const store = sqlite.SqliteStore.open(parsed.path, opts);
  return { store, migrated: store.migrated };
}
