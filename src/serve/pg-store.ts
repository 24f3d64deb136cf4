// The shared store for several `ajar serve` replicas: PostgreSQL through node-postgres (`pg`), behind the same Store
// interface as SQLite. Versioned migrations run at open under an advisory lock (replicas starting together apply
// each once). Usage and audit are append-only (triggers); a usage record is unique per request id, so a retried
// write cannot bill twice; quota holds are checked and taken under a per-key advisory lock in one transaction.
import pg from 'pg';
import { AjarError } from '../tensor/errors.js';
import type {
  AuditEntry, AuditFilter, DbSync, JournalEntry, KeyRecord, Migrated, QuotaRequest, Store, UsageFilter, UsageRecord,
  UsageSummaryRow,
} from './store.js';
import { GroupCommit } from './group-commit.js';
import type { QuotaPeriod } from './time.js';
import { utcDay } from './time.js';

/** The rollup's key: the key id, or "anon:<address>" for open-mode callers (as usageSummary groups them). */
const ROLLUP_KEY = "COALESCE(key_id, 'anon:' || COALESCE(client, 'unknown'))";
/** A record's UTC day, YYYY-MM-DD, from its epoch-ms ts. */
const DAY_OF_TS = "to_char(to_timestamp(ts / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD')";
/** NOTIFY channel of api_keys changes (payload: the key id); every replica's key cache listens. */
export const KEY_CHANNEL = 'ajar_keys';

/** Each migration runs once, in order, in its own transaction. NOTE: append new ones; never edit an applied one. */
export const PG_MIGRATIONS: Array<{ name: string; sql: string }> = [{ name: 'keys, usage, audit, usage journal, quota holds', sql:
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
}, { name: 'daily usage rollups per key; key change notifications', sql:
  `CREATE TABLE usage_daily (
    key_id TEXT NOT NULL, day TEXT NOT NULL, requests BIGINT NOT NULL, prompt_tokens BIGINT NOT NULL,
    completion_tokens BIGINT NOT NULL, PRIMARY KEY (key_id, day));
  INSERT INTO usage_daily SELECT ${ROLLUP_KEY}, ${DAY_OF_TS}, COUNT(*), SUM(prompt_tokens), SUM(completion_tokens)
    FROM usage GROUP BY 1, 2;
  CREATE FUNCTION ajar_key_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN PERFORM pg_notify('${KEY_CHANNEL}', COALESCE(NEW.id, OLD.id)); RETURN NULL; END $$;
  CREATE TRIGGER api_keys_changed AFTER INSERT OR UPDATE OR DELETE ON api_keys FOR EACH ROW EXECUTE FUNCTION ajar_key_changed();`,
}, { name: 'quota reservation in one call', sql:
  // NOTE: the steps reserveQuota took in a transaction of seven round trips, now one call: a request with a quota
  // waits one round trip for it, and the key's lock is held for the work alone, not for six trips over the network.
  // p_day: the UTC day of p_since when that is a midnight (the rollups then give the sum), else NULL (the records).
  `CREATE FUNCTION ajar_reserve_quota(p_key TEXT, p_request TEXT, p_quota BIGINT, p_since BIGINT, p_day TEXT,
    p_min BIGINT, p_want BIGINT, p_now BIGINT, p_expires BIGINT, OUT granted BIGINT, OUT lft BIGINT)
  LANGUAGE plpgsql AS $$
  DECLARE used BIGINT; held BIGINT;
  BEGIN
    -- One lock per key, released at commit: two replicas cannot both read the same "left" and both hold it.
    PERFORM pg_advisory_xact_lock(hashtext(p_key));
    DELETE FROM quota_holds WHERE key_id = p_key AND expires_at <= p_now;
    IF p_day IS NOT NULL THEN
      SELECT COALESCE(SUM(prompt_tokens + completion_tokens), 0) INTO used FROM usage_daily
        WHERE key_id = p_key AND day >= p_day;
    ELSE
      SELECT COALESCE(SUM(prompt_tokens + completion_tokens), 0) INTO used FROM usage WHERE key_id = p_key AND ts >= p_since;
    END IF;
    SELECT COALESCE(SUM(tokens), 0) INTO held FROM quota_holds WHERE key_id = p_key;
    lft := p_quota - used - held;
    IF lft < p_min THEN
      granted := 0;
      RETURN;
    END IF;
    granted := LEAST(p_want, lft);
    INSERT INTO quota_holds (request_id, key_id, tokens, expires_at) VALUES (p_request, p_key, granted, p_expires)
      ON CONFLICT (request_id) DO UPDATE SET tokens = EXCLUDED.tokens, expires_at = EXCLUDED.expires_at;
  END $$;`,
}];

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

const DAY_MS = 86_400_000;

/** Connections that write usage records: as many batches can be in flight at once (group-commit.ts). */
const METER_CONNECTIONS = 2;

/** PostgreSQL's codes for a transaction to retry: serialization failure, deadlock. */
const RETRY_CODES = new Set(['40001', '40P01']);

/** Writes a batch of usage records, their rollups and the end of their journal entries and quota holds: one statement. */
const RECORD_BATCH = `WITH r AS (
    SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int[], $7::int[], $8::int[],
      $9::int[], $10::text[], $11::text[], $12::text[])
      AS r(ts, key_id, client, model, endpoint, prompt_tokens, completion_tokens, latency_ms, status, finish_reason,
        "user", request_id)),
  ins AS (
    INSERT INTO usage (${USAGE_COLUMNS}) SELECT ${USAGE_COLUMNS} FROM r
    ON CONFLICT (request_id) WHERE request_id IS NOT NULL DO NOTHING
    RETURNING ts, key_id, client, prompt_tokens, completion_tokens),
  -- NOTE: only records this statement inserted count in the rollup (a retried record is in neither twice); the rows
  -- are locked in key order, so concurrent batches from other replicas cannot deadlock on them.
  roll AS (
    INSERT INTO usage_daily (key_id, day, requests, prompt_tokens, completion_tokens)
    SELECT ${ROLLUP_KEY}, ${DAY_OF_TS}, COUNT(*), SUM(prompt_tokens), SUM(completion_tokens)
    FROM ins GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (key_id, day) DO UPDATE SET requests = usage_daily.requests + EXCLUDED.requests,
      prompt_tokens = usage_daily.prompt_tokens + EXCLUDED.prompt_tokens,
      completion_tokens = usage_daily.completion_tokens + EXCLUDED.completion_tokens),
  j AS (DELETE FROM usage_journal WHERE request_id = ANY($12::text[])),
  h AS (DELETE FROM quota_holds WHERE request_id = ANY($12::text[]))
  SELECT 1`;

function summaryRows(rows: Row[]): UsageSummaryRow[] {
  return rows.map((x) => ({
    key_id: x.key_id as string, day: x.day as string, requests: Number(x.requests),
    prompt_tokens: Number(x.prompt_tokens), completion_tokens: Number(x.completion_tokens),
  }));
}

/** The URL with a server setting added to libpq's options= (which may already hold a search_path). */
function withOption(url: string, option: string): string {
  const u = new URL(url);
  const have = u.searchParams.get('options');
  u.searchParams.set('options', have === null ? option : `${have} ${option}`);
  return u.toString();
}

/** The URL without its password, for messages. */
function safeUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}

export class PgStore implements Store {
  readonly kind = 'postgres';
  /** What open() found and did (ajar db migrate reports it). */
  migrated: Migrated = { version: 0, applied: [] };
  private readonly usage: GroupCommit<UsageRecord>;

  /** pool: everything; meter: usage writes, with the durability `sync` asks for. */
  private constructor(private readonly pool: pg.Pool, private readonly meter: pg.Pool, private readonly url: string) {
    this.usage = new GroupCommit((batch) => this.retrying(() => this.writeUsage(this.meter, batch)), 256, METER_CONNECTIONS);
  }

  /** Connect and migrate. `url` is a postgres:// URL (libpq's options= for a search_path is honoured). */
  static async open(url: string, opts: { sync?: DbSync } = {}): Promise<PgStore> {
    // NOTE: `min` connections stay open however long the server idles (pg closes others after 10 s idle): the first
    // requests after a quiet spell must not wait for a connection to be made (a backend forked, authenticated, its
    // catalog caches and our prepared statements built again), which costs tens of milliseconds.
    const pool = new pg.Pool({ connectionString: url, max: 10, min: 2, types, connectionTimeoutMillis: 5_000 });
    // The commit is acknowledged once in PostgreSQL's memory (any replica may crash after it), before the disk flush.
    const meterUrl = (opts.sync ?? 'normal') === 'normal' ? withOption(url, '-c synchronous_commit=off') : url;
    const meter = new pg.Pool({
      connectionString: meterUrl, max: METER_CONNECTIONS, min: METER_CONNECTIONS, types, connectionTimeoutMillis: 5_000,
    });
    // NOTE: an idle client's error (the server restarted) must not crash the process; the next query reconnects.
    pool.on('error', () => {});
    meter.on('error', () => {});
    const store = new PgStore(pool, meter, url);
    try {
      store.migrated = await store.migrate();
      await store.warm();
    } catch (e) {
      await pool.end();
      await meter.end();
      throw new AjarError('bad_db', `cannot open the PostgreSQL database ${safeUrl(url)}: ${(e as Error).message}`);
    }
    return store;
  }

  /**
   * Open every metering connection and prepare the usage statement on it (a batch of no records writes nothing),
   * and a second connection of the main pool, so the first requests find them ready.
   */
  private async warm(): Promise<void> {
    const meter = await Promise.all(Array.from({ length: METER_CONNECTIONS }, () => this.meter.connect()));
    const main = await Promise.all([this.pool.connect(), this.pool.connect()]);
    try {
      await Promise.all(meter.map((c) => this.writeUsage(c, [])));
    } finally {
      for (const c of [...meter, ...main]) c.release();
    }
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

  /** Run f again (up to 5 times, after a short random pause) when PostgreSQL asks for a retry. */
  private async retrying<T>(f: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await f();
      } catch (e) {
        if (attempt >= 5 || !RETRY_CODES.has((e as { code?: string }).code ?? '')) throw e;
        await new Promise((r) => setTimeout(r, Math.random() * 10 * attempt));
      }
    }
  }

  /** Apply the migrations this database lacks. */
  async migrate(): Promise<Migrated> {
    return this.tx(async (c) => {
      await c.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      await c.query('CREATE TABLE IF NOT EXISTS ajar_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)');
      const have = Number((await c.query('SELECT COALESCE(MAX(version), 0) AS v FROM ajar_migrations')).rows[0].v);
      if (have > PG_MIGRATIONS.length) {
        throw new AjarError('bad_db', `the database was migrated by a newer ajar (version ${have}); upgrade ajar`);
      }
      const applied: Migrated['applied'] = [];
      for (let v = have + 1; v <= PG_MIGRATIONS.length; v++) {
        await c.query(PG_MIGRATIONS[v - 1].sql);
        await c.query('INSERT INTO ajar_migrations (version, applied_at) VALUES ($1, $2)', [v, Date.now()]);
        applied.push({ version: v, name: PG_MIGRATIONS[v - 1].name });
      }
      return { version: PG_MIGRATIONS.length, applied };
    });
  }

  async createKey(k: KeyRecord): Promise<void> {
    await this.pool.query(`INSERT INTO api_keys (id, name, hash, created_at, rotated_at, revoked_at, expires_at, rpm, tpm,
      quota_tokens, quota_period, models) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`, [
      k.id, k.name, k.hash, k.createdAt, k.rotatedAt, k.revokedAt, k.expiresAt, k.rpm, k.tpm, k.quotaTokens,
      k.quotaPeriod, k.models === null ? null : JSON.stringify(k.models)]);
  }

  async getKey(id: string): Promise<KeyRecord | undefined> {
    // NOTE: named, so each connection parses and plans it once (the hot path of every request without a cache).
    const r = await this.pool.query({ name: 'ajar_get_key', text: 'SELECT * FROM api_keys WHERE id = $1', values: [id] });
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

  /**
   * Tell onChange the id of every key created, changed or deleted by any process on this database (NOTIFY from a
   * trigger), and null whenever notifications may have been missed (the listening connection dropped: it reconnects).
   * onState(true/false) says whether notifications are flowing. Resolves after the first try to listen; returns the
   * stop function.
   */
  async watchKeys(onChange: (id: string | null) => void, onState: (up: boolean) => void = () => {}): Promise<() => Promise<void>> {
    let stopped = false;
    let client: pg.Client | undefined;
    let retry: NodeJS.Timeout | undefined;
    const connect = async (): Promise<void> => {
      const c = new pg.Client({ connectionString: this.url, connectionTimeoutMillis: 5_000 });
      const lost = (): void => {
        if (client !== c) return;
        client = undefined;
        onState(false);
        onChange(null);
        c.end().catch(() => {});
        if (!stopped) retry = setTimeout(() => void connect().catch(lost), 500);
      };
      c.on('error', lost);
      c.on('end', lost);
      c.on('notification', (n) => {
        if (n.channel === KEY_CHANNEL && n.payload !== undefined) onChange(n.payload);
      });
      client = c;
      try {
        await c.connect();
        await c.query(`LISTEN ${KEY_CHANNEL}`);
      } catch (e) {
        lost();
        throw e;
      }
      if (stopped) {
        await c.end().catch(() => {});
        return;
      }
      // Anything may have changed while no one listened.
      onChange(null);
      onState(true);
    };
    // NOTE: a first connection that fails retries like a lost one; until one listens, onState stays false.
    await connect().catch(() => {});
    return async () => {
      stopped = true;
      clearTimeout(retry);
      const c = client;
      client = undefined;
      await c?.end().catch(() => {});
    };
  }

  private async writeUsage(c: pg.Pool | pg.PoolClient, batch: UsageRecord[]): Promise<void> {
    // NOTE: ON CONFLICT: a record written twice for one request (a retry after a lost reply) bills once.
    const cols: unknown[][] = Array.from({ length: 12 }, () => []);
    for (const u of batch) usageValues(u).forEach((v, i) => cols[i].push(v));
    await c.query({ name: 'ajar_record_usage', text: RECORD_BATCH, values: cols });
  }

  async recordUsage(u: UsageRecord): Promise<void> {
    await this.usage.add(u);
  }

  async journalUsage(j: JournalEntry): Promise<void> {
    await this.pool.query({ name: 'ajar_journal', text: `INSERT INTO usage_journal (request_id, owner, heartbeat,
      ${USAGE_COLUMNS.replace(', request_id', '')}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
      ON CONFLICT (request_id) DO UPDATE SET heartbeat = EXCLUDED.heartbeat, completion_tokens = EXCLUDED.completion_tokens,
        latency_ms = EXCLUDED.latency_ms, prompt_tokens = EXCLUDED.prompt_tokens`,
    values: [j.requestId, j.owner, j.heartbeat, ...usageValues(j).slice(0, 11)] });
  }

  async listJournal(): Promise<JournalEntry[]> {
    const rows = (await this.pool.query('SELECT * FROM usage_journal ORDER BY ts, request_id')).rows as Row[];
    return rows.map((r) => ({ ...usageFromRow(r), requestId: r.request_id as string, owner: r.owner as string, heartbeat: Number(r.heartbeat) }));
  }

  async closeJournal(records: UsageRecord[]): Promise<void> {
    if (records.length > 0) await this.retrying(() => this.writeUsage(this.pool, records));
  }

  /** NOTE: from a UTC midnight on (every quota period starts at one), the daily rollups give the sum in a few rows. */
  private async usedSince(c: pg.Pool | pg.PoolClient, keyId: string, since: number): Promise<number> {
    const r = since % DAY_MS === 0
      ? await c.query({ name: 'ajar_used_since_day', text: `SELECT COALESCE(SUM(prompt_tokens + completion_tokens), 0) AS n
          FROM usage_daily WHERE key_id = $1 AND day >= $2`, values: [keyId, utcDay(since)] })
      : await c.query({ name: 'ajar_used_since', text: `SELECT COALESCE(SUM(prompt_tokens + completion_tokens), 0) AS n
          FROM usage WHERE key_id = $1 AND ts >= $2`, values: [keyId, since] });
    return Number(r.rows[0].n);
  }

  async tokensUsedSince(keyId: string, since: number): Promise<number> {
    return this.usedSince(this.pool, keyId, since);
  }

  async reserveQuota(q: QuotaRequest): Promise<{ granted: number; left: number }> {
    const r = await this.pool.query({
      name: 'ajar_reserve_quota', text: 'SELECT granted, lft FROM ajar_reserve_quota($1, $2, $3, $4, $5, $6, $7, $8, $9)',
      values: [q.keyId, q.requestId, q.quota, q.since, q.since % DAY_MS === 0 ? utcDay(q.since) : null, q.min, q.want,
        q.now, q.expiresAt],
    });
    return { granted: Number(r.rows[0].granted), left: Number(r.rows[0].lft) };
  }

  async releaseQuota(requestId: string): Promise<void> {
    await this.pool.query({ name: 'ajar_quota_release', text: 'DELETE FROM quota_holds WHERE request_id = $1', values: [requestId] });
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
    const r = await this.pool.query(`SELECT ${ROLLUP_KEY} AS key_id, ${DAY_OF_TS} AS day,
        COUNT(*) AS requests, SUM(prompt_tokens) AS prompt_tokens, SUM(completion_tokens) AS completion_tokens
      FROM usage ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} GROUP BY 1, 2 ORDER BY 2, 1`, args);
    return summaryRows(r.rows as Row[]);
  }

  async dailyUsage(filter: UsageFilter): Promise<UsageSummaryRow[]> {
    const r = await this.pool.query(`SELECT key_id, day, requests, prompt_tokens, completion_tokens FROM usage_daily
      WHERE ($1::text IS NULL OR key_id = $1) AND day >= $2 ORDER BY day, key_id`,
    [filter.keyId ?? null, filter.since === undefined ? '' : utcDay(filter.since)]);
    return summaryRows(r.rows as Row[]);
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
    await this.usage.idle();
    await this.pool.end().catch(() => {});
    await this.meter.end().catch(() => {});
  }
}
