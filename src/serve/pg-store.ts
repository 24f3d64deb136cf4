// The shared store for several `ajar serve` replicas: PostgreSQL through node-postgres (`pg`), behind the same Store
// interface as SQLite. Versioned migrations run at open under an advisory lock (replicas starting together apply
// each once). Usage and audit are append-only (triggers); a usage record is unique per request id, so a retried
// write cannot bill twice; quota holds are checked and taken under a per-key advisory lock in one transaction.
import pg from 'pg';
import { AjarError } from '../tensor/errors.js';
import type {
  AuditEntry, AuditFilter, JournalEntry, KeyRecord, QuotaRequest, Store, UsageFilter, UsageRecord, UsageSummaryRow,
} from './store.js';
import type { QuotaPeriod } from './time.js';

/** Each migration runs once, in order, in its own transaction. NOTE: append new ones; never edit an applied one. */
const MIGRATIONS: string[] = [
  `CREATE TABLE api_keys (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, hash BYTEA NOT NULL, created_at BIGINT NOT NULL, rotated_at BIGINT,
    revoked_at BIGINT, expires_at BIGINT, rpm INTEGER, tpm INTEGER, quota_tokens BIGINT,
    quota_period TEXT CHECK (quota_period IN ('day', 'month')), models TEXT);
  CREATE TABLE usage (
    id BIGSERIAL PRIMARY KEY, ts BIGINT NOT NULL, key_id TEXT, client TEXT, model TEXT, endpoint TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL, latency_ms INTEGER NOT NULL,
    status INTEGER NOT NULL, finish_reason TEXT, "user" TEXT, request_id TEXT);
  CREATE UNIQUE INDEX usage_request ON usage (request_id) WHERE request_id IS NOT NULL;
  CREATE INDEX usage_key_ts ON usage (key_id, ts);
  CREATE INDEX usage_ts ON usage (ts);
  CREATE TABLE audit (
    id BIGSERIAL PRIMARY KEY, ts BIGINT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL, key_id TEXT,
    key_prefix TEXT, remote TEXT, detail TEXT);
  CREATE INDEX audit_ts ON audit (ts);
  CREATE TABLE usage_journal (
    request_id TEXT PRIMARY KEY, owner TEXT NOT NULL, heartbeat BIGINT NOT NULL, ts BIGINT NOT NULL, key_id TEXT,
    client TEXT, model TEXT, endpoint TEXT NOT NULL, prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL,
    latency_ms INTEGER NOT NULL, status INTEGER NOT NULL, finish_reason TEXT, "user" TEXT);
  CREATE TABLE quota_holds (
    request_id TEXT PRIMARY KEY, key_id TEXT NOT NULL, tokens BIGINT NOT NULL, expires_at BIGINT NOT NULL);
  CREATE INDEX quota_holds_key ON quota_holds (key_id);
  CREATE FUNCTION ajar_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$;
  CREATE TRIGGER usage_append_only BEFORE UPDATE OR DELETE ON usage FOR EACH ROW EXECUTE FUNCTION ajar_append_only();
  CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit FOR EACH ROW EXECUTE FUNCTION ajar_append_only();`,
];

/** Any advisory-lock key of ours: the migration lock. */
const MIGRATION_LOCK = 7_311_992_001;

const USAGE_COLUMNS = 'ts, key_id, client, model, endpoint, prompt_tokens, completion_tokens, latency_ms, status, finish_reason, "user", request_id';

function usageValues(u: UsageRecord): unknown[] {
  return [u.ts, u.keyId, u.client, u.model, u.endpoint, u.promptTokens, u.completionTokens, Math.round(u.latencyMs),
    u.status, u.finishReason, u.user, u.requestId];
}

interface Row { [k: string]: unknown }

function usageFromRow(r: Row): UsageRecord {
  return {
    ts: Number(r.ts), keyId: r.key_id as string | null, client: r.client as string | null, model: r.model as string | null,
    endpoint: r.endpoint as string, promptTokens: Number(r.prompt_tokens), completionTokens: Number(r.completion_tokens),
    latencyMs: Number(r.latency_ms), status: Number(r.status), finishReason: r.finish_reason as string | null,
    user: r.user as string | null, requestId: r.request_id as string | null,
  };
}

const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

function keyFromRow(r: Row): KeyRecord {
  return {
    id: r.id as string, name: r.name as string, hash: Buffer.from(r.hash as Buffer), createdAt: Number(r.created_at),
    rotatedAt: num(r.rotated_at), revokedAt: num(r.revoked_at), expiresAt: num(r.expires_at), rpm: num(r.rpm),
    tpm: num(r.tpm), quotaTokens: num(r.quota_tokens), quotaPeriod: r.quota_period as QuotaPeriod | null,
    models: r.models === null ? null : (JSON.parse(r.models as string) as string[]),
  };
}

/** BIGINT and NUMERIC (SUM) as JS numbers: token counts and epoch ms stay far below 2^53. */
const types = {
  getTypeParser: (oid: number, format?: string) => (oid === 20 || oid === 1700
    ? (v: string) => Number(v)
    : pg.types.getTypeParser(oid, format as 'text')),
};

export class PgStore implements Store {
  readonly kind = 'postgres';

  private constructor(private readonly pool: pg.Pool) {}

  /** Connect and migrate. `url` is a postgres:// URL (libpq's options= for a search_path is honoured). */
  static async open(url: string): Promise<PgStore> {
    const pool = new pg.Pool({ connectionString: url, max: 10, types, connectionTimeoutMillis: 5_000 });
    // NOTE: an idle client's error (the server restarted) must not crash the process; the next query reconnects.
    pool.on('error', () => {});
    const store = new PgStore(pool);
    try {
      await store.migrate();
    } catch (e) {
      await pool.end();
      const where = url.replace(/\/\/[^@/]*@/, '//***@');
      throw new AjarError('bad_db', `cannot open the PostgreSQL database ${where}: ${(e as Error).message}`);
    }
    return store;
  }

  private async tx<T>(f: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const c = await this.pool.connect();
    try {
      await c.query('BEGIN');
      const out = await f(c);
      await c.query('COMMIT');
      return out;
    } catch (e) {
      await c.query('ROLLBACK').catch(() => {});
      throw e;
    } finally {
      c.release();
    }
  }

  /** Apply the migrations this database lacks; returns how many ran. */
  async migrate(): Promise<number> {
    return this.tx(async (c) => {
      await c.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      await c.query('CREATE TABLE IF NOT EXISTS ajar_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)');
      const have = Number((await c.query('SELECT COALESCE(MAX(version), 0) AS v FROM ajar_migrations')).rows[0].v);
      if (have > MIGRATIONS.length) {
        throw new AjarError('bad_db', `the database was migrated by a newer ajar (version ${have}); upgrade ajar`);
      }
      for (let v = have + 1; v <= MIGRATIONS.length; v++) {
        await c.query(MIGRATIONS[v - 1]);
        await c.query('INSERT INTO ajar_migrations (version, applied_at) VALUES ($1, $2)', [v, Date.now()]);
      }
      return MIGRATIONS.length - have;
    });
  }

  async createKey(k: KeyRecord): Promise<void> {
    await this.pool.query(`INSERT INTO api_keys (id, name, hash, created_at, rotated_at, revoked_at, expires_at, rpm, tpm,
      quota_tokens, quota_period, models) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`, [
      k.id, k.name, k.hash, k.createdAt, k.rotatedAt, k.revokedAt, k.expiresAt, k.rpm, k.tpm, k.quotaTokens,
      k.quotaPeriod, k.models === null ? null : JSON.stringify(k.models)]);
  }

  async getKey(id: string): Promise<KeyRecord | undefined> {
    const r = await this.pool.query('SELECT * FROM api_keys WHERE id = $1', [id]);
    return r.rows.length > 0 ? keyFromRow(r.rows[0] as Row) : undefined;
  }

  async listKeys(): Promise<KeyRecord[]> {
    return (await this.pool.query('SELECT * FROM api_keys ORDER BY created_at, id')).rows.map((r) => keyFromRow(r as Row));
  }

  async revokeKey(id: string, at: number): Promise<boolean> {
    const r = await this.pool.query('UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2', [at, id]);
    return (r.rowCount ?? 0) > 0;
  }

  async replaceKeyHash(id: string, hash: Buffer, at: number): Promise<boolean> {
    const r = await this.pool.query('UPDATE api_keys SET hash = $1, rotated_at = $2 WHERE id = $3', [hash, at, id]);
    return (r.rowCount ?? 0) > 0;
  }

  private async record(c: pg.PoolClient, u: UsageRecord): Promise<void> {
    // NOTE: ON CONFLICT: a record written twice for one request (a retry after a lost reply) bills once.
    await c.query(`INSERT INTO usage (${USAGE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
      ON CONFLICT (request_id) WHERE request_id IS NOT NULL DO NOTHING`, usageValues(u));
    if (u.requestId !== null) {
      await c.query('DELETE FROM usage_journal WHERE request_id = $1', [u.requestId]);
      await c.query('DELETE FROM quota_holds WHERE request_id = $1', [u.requestId]);
    }
  }

  async recordUsage(u: UsageRecord): Promise<void> {
    await this.tx((c) => this.record(c, u));
  }

  async journalUsage(j: JournalEntry): Promise<void> {
    await this.pool.query(`INSERT INTO usage_journal (request_id, owner, heartbeat, ${USAGE_COLUMNS.replace(', request_id', '')})
      VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
      ON CONFLICT (request_id) DO UPDATE SET heartbeat = EXCLUDED.heartbeat, completion_tokens = EXCLUDED.completion_tokens,
        latency_ms = EXCLUDED.latency_ms, prompt_tokens = EXCLUDED.prompt_tokens`,
    [j.requestId, j.owner, j.heartbeat, ...usageValues(j).slice(0, 11)]);
  }

  async listJournal(): Promise<JournalEntry[]> {
    const rows = (await this.pool.query('SELECT * FROM usage_journal ORDER BY ts, request_id')).rows as Row[];
    return rows.map((r) => ({ ...usageFromRow(r), requestId: r.request_id as string, owner: r.owner as string, heartbeat: Number(r.heartbeat) }));
  }

  async closeJournal(records: UsageRecord[]): Promise<void> {
    await this.tx(async (c) => {
      for (const u of records) await this.record(c, u);
    });
  }

  async tokensUsedSince(keyId: string, since: number): Promise<number> {
    const r = await this.pool.query(`SELECT COALESCE(SUM(prompt_tokens + completion_tokens), 0) AS n FROM usage
      WHERE key_id = $1 AND ts >= $2`, [keyId, since]);
    return Number(r.rows[0].n);
  }

  async reserveQuota(q: QuotaRequest): Promise<{ granted: number; left: number }> {
    return this.tx(async (c) => {
      // NOTE: one lock per key, released at commit: two replicas cannot both read the same "left" and both hold it.
      await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [q.keyId]);
      await c.query('DELETE FROM quota_holds WHERE key_id = $1 AND expires_at <= $2', [q.keyId, q.now]);
      const used = Number((await c.query(`SELECT COALESCE(SUM(prompt_tokens + completion_tokens), 0) AS n FROM usage
        WHERE key_id = $1 AND ts >= $2`, [q.keyId, q.since])).rows[0].n);
      const held = Number((await c.query('SELECT COALESCE(SUM(tokens), 0) AS n FROM quota_holds WHERE key_id = $1',
        [q.keyId])).rows[0].n);
      const left = q.quota - used - held;
      if (left < q.min) return { granted: 0, left };
      const granted = Math.min(q.want, left);
      await c.query(`INSERT INTO quota_holds (request_id, key_id, tokens, expires_at) VALUES ($1, $2, $3, $4)
        ON CONFLICT (request_id) DO UPDATE SET tokens = EXCLUDED.tokens, expires_at = EXCLUDED.expires_at`,
      [q.requestId, q.keyId, granted, q.expiresAt]);
      return { granted, left };
    });
  }

  async releaseQuota(requestId: string): Promise<void> {
    await this.pool.query('DELETE FROM quota_holds WHERE request_id = $1', [requestId]);
  }

  async usageSummary(filter: UsageFilter): Promise<UsageSummaryRow[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    if (filter.keyId !== undefined) {
      args.push(filter.keyId);
      where.push(`key_id = $${args.length}`);
    }
    if (filter.since !== undefined) {
      args.push(filter.since);
      where.push(`ts >= $${args.length}`);
    }
    const r = await this.pool.query(`SELECT COALESCE(key_id, 'anon:' || COALESCE(client, 'unknown')) AS key_id,
        to_char(to_timestamp(ts / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day,
        COUNT(*) AS requests, SUM(prompt_tokens) AS prompt_tokens, SUM(completion_tokens) AS completion_tokens
      FROM usage ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} GROUP BY 1, 2 ORDER BY 2, 1`, args);
    return (r.rows as Row[]).map((x) => ({
      key_id: x.key_id as string, day: x.day as string, requests: Number(x.requests),
      prompt_tokens: Number(x.prompt_tokens), completion_tokens: Number(x.completion_tokens),
    }));
  }

  async listUsage(filter: UsageFilter): Promise<Array<UsageRecord & { id: number }>> {
    const r = await this.pool.query(`SELECT * FROM (SELECT * FROM usage WHERE ($1::text IS NULL OR key_id = $1) AND ts >= $2
      ORDER BY id DESC LIMIT $3) AS recent ORDER BY id`, [filter.keyId ?? null, filter.since ?? 0, filter.limit ?? null]);
    return (r.rows as Row[]).map((x) => ({ id: Number(x.id), ...usageFromRow(x) }));
  }

  private async audit(c: pg.Pool | pg.PoolClient, e: AuditEntry): Promise<void> {
    await c.query(`INSERT INTO audit (ts, actor, action, key_id, key_prefix, remote, detail) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
      [e.ts, e.actor, e.action, e.keyId, e.keyPrefix, e.remote, e.detail === null ? null : JSON.stringify(e.detail)]);
  }

  async appendAudit(e: AuditEntry): Promise<void> {
    await this.audit(this.pool, e);
  }

  async appendAudits(entries: AuditEntry[]): Promise<void> {
    await this.tx(async (c) => {
      for (const e of entries) await this.audit(c, e);
    });
  }

  async listAudit(filter: AuditFilter): Promise<AuditEntry[]> {
    const r = await this.pool.query(`SELECT * FROM (SELECT * FROM audit WHERE ts >= $1 ORDER BY id DESC LIMIT $2) AS recent
      ORDER BY id`, [filter.since ?? 0, filter.limit ?? null]);
    return (r.rows as Row[]).map((x) => ({
      id: Number(x.id), ts: Number(x.ts), actor: x.actor as string, action: x.action as AuditEntry['action'],
      keyId: x.key_id as string | null, keyPrefix: x.key_prefix as string | null, remote: x.remote as string | null,
      detail: x.detail === null ? null : (JSON.parse(x.detail as string) as Record<string, unknown>),
    }));
  }

  async ping(): Promise<void> {
    await this.pool.query('SELECT 1');
  }

  async close(): Promise<void> {
    await this.pool.end().catch(() => {});
  }
}
