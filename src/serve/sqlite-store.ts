// The embedded store: one SQLite file (better-sqlite3) in WAL mode, safe to share between a running server and
// the keys/usage/audit commands. Usage and audit tables are append-only, enforced by triggers.
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { AjarError } from '../tensor/errors.js';
import type {
  AuditEntry, AuditFilter, DbSync, JournalEntry, Migrated, KeyRecord, QuotaRequest, Store, UsageFilter, UsageRecord, UsageSummaryRow,
} from './store.js';
import { utcDay, type QuotaPeriod } from './time.js';

/** The schema's versions (PRAGMA user_version), each a step that `ajar db migrate` names. */
const SQLITE_MIGRATIONS = [
  'keys, usage, audit',
  'usage journal, quota holds',
  'daily usage rollups per key',
];
const SCHEMA_VERSION = SQLITE_MIGRATIONS.length;
const DAY_MS = 86_400_000;

/** Schema 3: totals per key and UTC day, written with each record; filled from the records once when created. */
const ROLLUPS = `
CREATE TABLE usage_daily (
  key_id TEXT NOT NULL,
  day TEXT NOT NULL,
  requests INTEGER NOT NULL,
  prompt_tokens INTEGER NOT NULL,
  completion_tokens INTEGER NOT NULL,
  PRIMARY KEY (key_id, day)
);
INSERT INTO usage_daily SELECT COALESCE(key_id, 'anon:' || COALESCE(client, 'unknown')),
  strftime('%Y-%m-%d', ts / 1000, 'unixepoch'), COUNT(*), SUM(prompt_tokens), SUM(completion_tokens) FROM usage GROUP BY 1, 2;
`;

/** How often the checkpointer syncs the WAL (synchronous=NORMAL): the most a power cut can lose. */
const CHECKPOINT_EVERY_MS = 1_000;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS api_keys (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  hash BLOB NOT NULL,
  created_at INTEGER NOT NULL,
  rotated_at INTEGER,
  revoked_at INTEGER,
  expires_at INTEGER,
  rpm INTEGER,
  tpm INTEGER,
  quota_tokens INTEGER,
  quota_period TEXT CHECK (quota_period IN ('day', 'month')),
  models TEXT
);
CREATE TABLE IF NOT EXISTS usage (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  ts INTEGER NOT NULL,
  key_id TEXT,
  client TEXT,
  model TEXT,
  endpoint TEXT NOT NULL,
  prompt_tokens INTEGER NOT NULL,
  completion_tokens INTEGER NOT NULL,
  latency_ms INTEGER NOT NULL,
  status INTEGER NOT NULL,
  finish_reason TEXT,
  user TEXT,
  request_id TEXT
);
CREATE INDEX IF NOT EXISTS usage_key_ts ON usage (key_id, ts);
CREATE UNIQUE INDEX IF NOT EXISTS usage_request ON usage (request_id) WHERE request_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS usage_ts ON usage (ts);
-- Tokens held against quotas by requests in flight, in every process on this database (schema 2).
CREATE TABLE IF NOT EXISTS quota_holds (
  request_id TEXT PRIMARY KEY,
  key_id TEXT NOT NULL,
  tokens INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS quota_holds_key ON quota_holds (key_id);
-- Generations in flight (schema 2): mutable, one row per request until its usage record replaces it.
CREATE TABLE IF NOT EXISTS usage_journal (
  request_id TEXT PRIMARY KEY,
  owner TEXT NOT NULL,
  heartbeat INTEGER NOT NULL,
  ts INTEGER NOT NULL,
  key_id TEXT,
  client TEXT,
  model TEXT,
  endpoint TEXT NOT NULL,
  prompt_tokens INTEGER NOT NULL,
  completion_tokens INTEGER NOT NULL,
  latency_ms INTEGER NOT NULL,
  status INTEGER NOT NULL,
  finish_reason TEXT,
  user TEXT
);
CREATE TABLE IF NOT EXISTS audit (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  ts INTEGER NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  key_id TEXT,
  key_prefix TEXT,
  remote TEXT,
  detail TEXT
);
CREATE INDEX IF NOT EXISTS audit_ts ON audit (ts);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS usage_no_update BEFORE UPDATE ON usage
  BEGIN SELECT RAISE(ABORT, 'usage records are append-only'); END;
CREATE TRIGGER IF NOT EXISTS usage_no_delete BEFORE DELETE ON usage
  BEGIN SELECT RAISE(ABORT, 'usage records are append-only'); END;
`;

interface KeyRow {
  id: string;
  name: string;
  hash: Buffer;
  created_at: number;
  rotated_at: number | null;
  revoked_at: number | null;
  expires_at: number | null;
  rpm: number | null;
  tpm: number | null;
  quota_tokens: number | null;
  quota_period: QuotaPeriod | null;
  models: string | null;
}

interface UsageRow {
  id: number;
  ts: number;
  key_id: string | null;
  client: string | null;
  model: string | null;
  endpoint: string;
  prompt_tokens: number;
  completion_tokens: number;
  latency_ms: number;
  status: number;
  finish_reason: string | null;
  user: string | null;
  request_id: string | null;
}

interface AuditRow {
  id: number;
  ts: number;
  actor: string;
  action: AuditEntry['action'];
  key_id: string | null;
  key_prefix: string | null;
  remote: string | null;
  detail: string | null;
}

function keyFromRow(r: KeyRow): KeyRecord {
  return {
    id: r.id,
    name: r.name,
    hash: Buffer.from(r.hash),
    createdAt: r.created_at,
    rotatedAt: r.rotated_at,
    revokedAt: r.revoked_at,
    expiresAt: r.expires_at,
    rpm: r.rpm,
    tpm: r.tpm,
    quotaTokens: r.quota_tokens,
    quotaPeriod: r.quota_period,
    models: r.models === null ? null : (JSON.parse(r.models) as string[]),
  };
}

function usageParams(u: UsageRecord): Record<string, unknown> {
  return {
    ts: u.ts, key_id: u.keyId, client: u.client, model: u.model, endpoint: u.endpoint,
    prompt_tokens: u.promptTokens, completion_tokens: u.completionTokens, latency_ms: Math.round(u.latencyMs),
    status: u.status, finish_reason: u.finishReason, user: u.user, request_id: u.requestId,
  };
}

function usageFromRow(r: Omit<UsageRow, 'id'>): UsageRecord {
  return {
    ts: r.ts, keyId: r.key_id, client: r.client, model: r.model, endpoint: r.endpoint,
    promptTokens: r.prompt_tokens, completionTokens: r.completion_tokens, latencyMs: r.latency_ms, status: r.status,
    finishReason: r.finish_reason, user: r.user, requestId: r.request_id,
  };
}

export class SqliteStore implements Store {
  readonly kind = 'sqlite';
  private readonly stmts;
  private checkpointer: Worker | undefined;

  private constructor(private readonly db: Database.Database, private readonly path: string, private readonly sync: DbSync,
    readonly migrated: Migrated) {
    this.stmts = {
      insertKey: db.prepare(`INSERT INTO api_keys (id, name, hash, created_at, rotated_at, revoked_at, expires_at,
        rpm, tpm, quota_tokens, quota_period, models) VALUES (@id, @name, @hash, @created_at, @rotated_at, @revoked_at,
        @expires_at, @rpm, @tpm, @quota_tokens, @quota_period, @models)`),
      getKey: db.prepare('SELECT * FROM api_keys WHERE id = ?'),
      listKeys: db.prepare('SELECT * FROM api_keys ORDER BY created_at, id'),
      revokeKey: db.prepare('UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?'),
      replaceHash: db.prepare('UPDATE api_keys SET hash = ?, rotated_at = ? WHERE id = ?'),
      // NOTE: OR IGNORE with the unique request id: a record written twice for one request bills once.
      insertUsage: db.prepare(`INSERT OR IGNORE INTO usage (ts, key_id, client, model, endpoint, prompt_tokens, completion_tokens,
        latency_ms, status, finish_reason, user, request_id) VALUES (@ts, @key_id, @client, @model, @endpoint,
        @prompt_tokens, @completion_tokens, @latency_ms, @status, @finish_reason, @user, @request_id)`),
      journal: db.prepare(`INSERT OR REPLACE INTO usage_journal (request_id, owner, heartbeat, ts, key_id, client, model,
        endpoint, prompt_tokens, completion_tokens, latency_ms, status, finish_reason, user) VALUES (@request_id, @owner,
        @heartbeat, @ts, @key_id, @client, @model, @endpoint, @prompt_tokens, @completion_tokens, @latency_ms, @status,
        @finish_reason, @user)`),
      rollup: db.prepare(`INSERT INTO usage_daily (key_id, day, requests, prompt_tokens, completion_tokens)
        VALUES (?, ?, 1, ?, ?) ON CONFLICT (key_id, day) DO UPDATE SET requests = requests + 1,
        prompt_tokens = prompt_tokens + excluded.prompt_tokens, completion_tokens = completion_tokens + excluded.completion_tokens`),
      daily: db.prepare(`SELECT key_id, day, requests, prompt_tokens, completion_tokens FROM usage_daily
        WHERE (? IS NULL OR key_id = ?) AND day >= ? ORDER BY day, key_id`),
      unjournal: db.prepare('DELETE FROM usage_journal WHERE request_id = ?'),
      holdsOf: db.prepare('SELECT COALESCE(SUM(tokens), 0) AS n FROM quota_holds WHERE key_id = ? AND expires_at > ?'),
      hold: db.prepare('INSERT OR REPLACE INTO quota_holds (request_id, key_id, tokens, expires_at) VALUES (?, ?, ?, ?)'),
      unhold: db.prepare('DELETE FROM quota_holds WHERE request_id = ?'),
      expireHolds: db.prepare('DELETE FROM quota_holds WHERE expires_at <= ?'),
      listJournal: db.prepare('SELECT * FROM usage_journal ORDER BY ts, request_id'),
      tokensSinceDay: db.prepare(`SELECT COALESCE(SUM(prompt_tokens + completion_tokens), 0) AS n FROM usage_daily
        WHERE key_id = ? AND day >= ?`),
      tokensSince: db.prepare(`SELECT COALESCE(SUM(prompt_tokens + completion_tokens), 0) AS n FROM usage
        WHERE key_id = ? AND ts >= ?`),
      insertAudit: db.prepare(`INSERT INTO audit (ts, actor, action, key_id, key_prefix, remote, detail)
        VALUES (@ts, @actor, @action, @key_id, @key_prefix, @remote, @detail)`),
    };
  }

  /** Open (creating if needed) the database file; the file is created owner-only (0600). sync: see DbSync. */
  static open(path: string, opts: { sync?: DbSync } = {}): SqliteStore {
    const sync = opts.sync ?? 'normal';
    if (path !== ':memory:') {
      try {
        mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
        closeSync(openSync(path, 'a', 0o600));
      } catch (e) {
        throw new AjarError('bad_db', `cannot create the database ${path}: ${(e as Error).message}`);
      }
    }
    let db: Database.Database;
    let migrated: Migrated;
    try {
      db = new Database(path);
      db.pragma('journal_mode = WAL');
      // NOTE: FULL syncs the WAL on every commit (an fsync on the event loop: 2-8 ms on this project's disks, and every
      // request waits behind it). NORMAL commits to the WAL in the OS's cache (a crash of this process loses nothing)
      // and the checkpointer thread syncs it once a second (a power cut loses at most that second).
      db.pragma(`synchronous = ${sync === 'full' ? 'FULL' : 'NORMAL'}`);
      db.pragma('busy_timeout = 5000');
      migrated = db.transaction(() => {
        const version = db.pragma('user_version', { simple: true }) as number;
        if (version > SCHEMA_VERSION) {
          throw new AjarError('bad_db', `${path} was written by a newer ajar (schema ${version}); upgrade ajar`);
        }
        db.exec(SCHEMA);
        if (version < 3) db.exec(ROLLUPS);
        db.pragma(`user_version = ${SCHEMA_VERSION}`);
        return {
          version: SCHEMA_VERSION,
          applied: SQLITE_MIGRATIONS.map((name, i) => ({ version: i + 1, name })).filter((m) => m.version > version),
        };
      }).immediate();
    } catch (e) {
      if (e instanceof AjarError) throw e;
      const message = (e as Error).message.split('\n')[0];
      if (/bindings file|\.node\b|NODE_MODULE_VERSION/.test(message)) {
        throw new AjarError('sqlite_unavailable', `the SQLite store's native module (better-sqlite3) did not build at install (${message}); `
          + 'rebuild it with: npm rebuild better-sqlite3');
      }
      throw new AjarError('bad_db', `cannot open the database ${path}: ${message}`);
    }
    return new SqliteStore(db, path, sync, migrated);
  }

  /** With sync 'normal', from the first usage record on: the thread that syncs the WAL (sqlite-checkpointer.ts). */
  private startCheckpointer(): void {
    if (this.checkpointer !== undefined || this.sync !== 'normal' || this.path === ':memory:') return;
    try {
      this.checkpointer = new Worker(new URL('./sqlite-checkpointer.js', import.meta.url),
        { workerData: { path: this.path, everyMs: CHECKPOINT_EVERY_MS } });
    } catch {
      return; // NOTE: without it, SQLite's own automatic checkpoints still sync the WAL (on the event loop).
    }
    this.checkpointer.unref();
    this.checkpointer.on('error', () => {});
    // The checkpointer now does the syncing; the writer's own automatic checkpoints would fsync on the event loop.
    this.db.pragma('wal_autocheckpoint = 0');
  }

  async createKey(k: KeyRecord): Promise<void> {
    this.stmts.insertKey.run({
      id: k.id, name: k.name, hash: k.hash, created_at: k.createdAt, rotated_at: k.rotatedAt,
      revoked_at: k.revokedAt, expires_at: k.expiresAt, rpm: k.rpm, tpm: k.tpm, quota_tokens: k.quotaTokens,
      quota_period: k.quotaPeriod, models: k.models === null ? null : JSON.stringify(k.models),
    });
  }

  async getKey(id: string): Promise<KeyRecord | undefined> {
    const row = this.stmts.getKey.get(id) as KeyRow | undefined;
    return row ? keyFromRow(row) : undefined;
  }

  async listKeys(): Promise<KeyRecord[]> {
    return (this.stmts.listKeys.all() as KeyRow[]).map(keyFromRow);
  }

  async revokeKey(id: string, at: number): Promise<boolean> {
    return this.stmts.revokeKey.run(at, id).changes > 0;
  }

  async replaceKeyHash(id: string, hash: Buffer, at: number): Promise<boolean> {
    return this.stmts.replaceHash.run(hash, at, id).changes > 0;
  }

  private readonly record = (u: UsageRecord): void => {
    if (this.stmts.insertUsage.run(usageParams(u)).changes > 0) {
      // NOTE: only a record actually inserted counts in its day's rollup (a repeated request id is in neither twice).
      this.stmts.rollup.run(u.keyId ?? `anon:${u.client ?? 'unknown'}`, utcDay(u.ts), u.promptTokens, u.completionTokens);
    }
    if (u.requestId !== null) {
      this.stmts.unjournal.run(u.requestId);
      this.stmts.unhold.run(u.requestId);
    }
  };

  async reserveQuota(r: QuotaRequest): Promise<{ granted: number; left: number }> {
    // NOTE: IMMEDIATE takes the write lock first, so two processes cannot both read the same "left" and both hold it.
    return this.db.transaction(() => {
      this.stmts.expireHolds.run(r.now);
      const used = this.usedSince(r.keyId, r.since);
      const held = (this.stmts.holdsOf.get(r.keyId, r.now) as { n: number }).n;
      const left = r.quota - used - held;
      if (left < r.min) return { granted: 0, left };
      const granted = Math.min(r.want, left);
      this.stmts.hold.run(r.requestId, r.keyId, granted, r.expiresAt);
      return { granted, left };
    }).immediate();
  }

  async releaseQuota(requestId: string): Promise<void> {
    this.stmts.unhold.run(requestId);
  }

  async recordUsage(u: UsageRecord): Promise<void> {
    // NOTE: no group commit here: better-sqlite3 commits synchronously, so there is never a commit in flight for
    // other records to join; with synchronous=NORMAL a commit costs tens of microseconds.
    this.startCheckpointer();
    this.db.transaction(this.record)(u);
  }

  async journalUsage(j: JournalEntry): Promise<void> {
    this.stmts.journal.run({ ...usageParams(j), owner: j.owner, heartbeat: j.heartbeat });
  }

  async listJournal(): Promise<JournalEntry[]> {
    return (this.stmts.listJournal.all() as Array<UsageRow & { owner: string; heartbeat: number }>).map((r) => ({
      ...usageFromRow(r), requestId: r.request_id!, owner: r.owner, heartbeat: r.heartbeat,
    }));
  }

  async closeJournal(records: UsageRecord[]): Promise<void> {
    this.db.transaction((rs: UsageRecord[]) => rs.forEach(this.record))(records);
  }

  /** NOTE: from a UTC midnight on (every quota period starts at one), the daily rollups give the sum in a few rows. */
  private usedSince(keyId: string, since: number): number {
    if (since % DAY_MS === 0) return (this.stmts.tokensSinceDay.get(keyId, utcDay(since)) as { n: number }).n;
    return (this.stmts.tokensSince.get(keyId, since) as { n: number }).n;
  }

  async tokensUsedSince(keyId: string, since: number): Promise<number> {
    return this.usedSince(keyId, since);
  }

  async usageSummary(filter: UsageFilter): Promise<UsageSummaryRow[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    if (filter.keyId !== undefined) {
      where.push('key_id = ?');
      args.push(filter.keyId);
    }
    if (filter.since !== undefined) {
      where.push('ts >= ?');
      args.push(filter.since);
    }
    const sql = `SELECT COALESCE(key_id, 'anon:' || COALESCE(client, 'unknown')) AS key_id,
        strftime('%Y-%m-%d', ts / 1000, 'unixepoch') AS day,
        COUNT(*) AS requests, SUM(prompt_tokens) AS prompt_tokens, SUM(completion_tokens) AS completion_tokens
      FROM usage ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
      GROUP BY 1, 2 ORDER BY 2, 1`;
    return this.db.prepare(sql).all(...args) as UsageSummaryRow[];
  }

  async dailyUsage(filter: UsageFilter): Promise<UsageSummaryRow[]> {
    const key = filter.keyId ?? null;
    return this.stmts.daily.all(key, key, filter.since === undefined ? '' : utcDay(filter.since)) as UsageSummaryRow[];
  }

  async listUsage(filter: UsageFilter): Promise<Array<UsageRecord & { id: number }>> {
    const rows = this.db.prepare(`SELECT * FROM (SELECT * FROM usage WHERE (? IS NULL OR key_id = ?) AND ts >= ?
      ORDER BY id DESC LIMIT ?) ORDER BY id`).all(filter.keyId ?? null, filter.keyId ?? null, filter.since ?? 0,
      filter.limit ?? -1) as UsageRow[];
    return rows.map((r) => ({ id: r.id, ...usageFromRow(r) }));
  }

  private readonly audit = (e: AuditEntry): void => {
    this.stmts.insertAudit.run({
      ts: e.ts, actor: e.actor, action: e.action, key_id: e.keyId, key_prefix: e.keyPrefix, remote: e.remote,
      detail: e.detail === null ? null : JSON.stringify(e.detail),
    });
  };

  async appendAudit(e: AuditEntry): Promise<void> {
    this.audit(e);
  }

  async appendAudits(entries: AuditEntry[]): Promise<void> {
    this.db.transaction((es: AuditEntry[]) => es.forEach(this.audit))(entries);
  }

  async listAudit(filter: AuditFilter): Promise<AuditEntry[]> {
    const since = filter.since ?? 0;
    // The newest `limit` entries, shown oldest first.
    const limit = filter.limit ?? -1;
    const rows = this.db.prepare(`SELECT * FROM (SELECT * FROM audit WHERE ts >= ? ORDER BY id DESC LIMIT ?)
      ORDER BY id`).all(since, limit) as AuditRow[];
    return rows.map((r) => ({
      id: r.id, ts: r.ts, actor: r.actor, action: r.action, keyId: r.key_id, keyPrefix: r.key_prefix,
      remote: r.remote, detail: r.detail === null ? null : (JSON.parse(r.detail) as Record<string, unknown>),
    }));
  }

  async ping(): Promise<void> {
    this.db.prepare('SELECT 1').get();
  }

  async close(): Promise<void> {
    const worker = this.checkpointer;
    this.checkpointer = undefined;
    if (worker) {
      const exited = new Promise((resolve) => worker.once('exit', resolve));
      worker.ref(); // held until its last checkpoint is done
      worker.postMessage('stop');
      await exited;
    }
    if (this.db.open) this.db.close();
  }
}
