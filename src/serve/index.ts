// Serving: an OpenAI-compatible HTTP app (buildServer) with API keys, limits, metering and an audit log,
// over a Store (SQLite by default). See docs/serving.md.
export { buildServer, DEFAULT_LIMITS } from './app.js';
export type { AdapterSpec, ModelSpec, ServerOptions } from './app.js';
export { AdapterHost, withAdapter } from './adapters.js';
export type { ServedAdapter } from './adapters.js';
export { modelSpecFromFolder } from './folder.js';
export { DEFAULT_CONNECTION_LIMITS } from './connections.js';
export type { ConnectionLimits } from './connections.js';
export { journalOwner, reconcileJournal } from './journal.js';
export { listenMetrics, ServerControl } from './lifecycle.js';
export { PROMETHEUS_CONTENT_TYPE } from './metrics.js';
export { RateLimiter } from './limits.js';
export type { Limiter } from './limits.js';
export type { ShutdownReport } from './lifecycle.js';
export { ChatFormat, fallbackChatText, FALLBACK_STOPS, loadChatTemplate } from './chat.js';
export type { ChatMessage, ChatPrompt } from './chat.js';
export type { ResolvedLimits, ServeMode, ServeTokenizer } from './context.js';
export { ERROR_CATALOG, errorBody, ServeError } from './errors.js';
export type { OpenAIErrorType, ServeErrorCode } from './errors.js';
export {
  createApiKey, hashKey, keyStatus, keyView, parseKey, revokeApiKey, rotateApiKey, KEY_PREFIX,
} from './keys.js';
export type { Actor, KeyStatus, KeyView, NewKeySpec } from './keys.js';
export { dataDir, defaultDbSpec, openMigrated, openStore, parseDbSpec } from './store.js';
export type {
  AuditEntry, AuditFilter, DbSync, JournalEntry, KeyRecord, Migrated, OpenOptions, Store, UsageFilter, UsageRecord,
  UsageSummaryRow,
} from './store.js';
export { KeyCache } from './key-cache.js';
// NOTE: SqliteStore's class is reached through openStore(), which loads the native better-sqlite3 only when called.
export type { SqliteStore } from './sqlite-store.js';
export { isoTime, parseDate, periodEnd, periodStart } from './time.js';
export type { QuotaPeriod } from './time.js';
export { csv, formatAudit, formatKeys, formatUsage, REPORT_FORMATS, textTable } from './report.js';
export type { ReportFormat } from './report.js';
export {
  CONTENT_SECURITY_POLICY, dashboardRoutes, DEFAULT_SESSION_LIMITS, PAGES, SessionStore,
} from './dashboard/index.js';
export type {
  DashboardOptions, DashboardSources, PlanRequest, RunChunk, RunSource, RunSummary, SessionLimits,
} from './dashboard/index.js';
