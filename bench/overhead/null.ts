// The "bare" arm of npm run bench:serve: a store that knows one key and writes nothing, and a limiter that always
// admits, each answering at once: the server without the cost of key lookups, limits and metering.
import { hashKey, parseKey, type Store } from '../../src/serve/index.js';
import type { Limiter } from '../../src/serve/limits.js';
import type { KeyRecord } from '../../src/serve/store.js';

/** A store that knows one key and writes nothing: every method resolves at once. */
export function nullStore(key: string): Store {
  const rec: KeyRecord = {
    id: parseKey(key)!.id, name: 'bench', hash: hashKey(key), createdAt: 0, rotatedAt: null, revokedAt: null,
    expiresAt: null, rpm: null, tpm: null, quotaTokens: null, quotaPeriod: null, models: null,
  };
  const none = async (): Promise<void> => {};
  return {
    kind: 'null',
    getKey: async (id) => (id === rec.id ? rec : undefined),
    listKeys: async () => [rec],
    createKey: none, revokeKey: async () => false, replaceKeyHash: async () => false, recordUsage: none,
    journalUsage: none, listJournal: async () => [], closeJournal: none, tokensUsedSince: async () => 0,
    reserveQuota: async (r) => ({ granted: r.want, left: r.quota }), releaseQuota: none, usageSummary: async () => [],
    dailyUsage: async () => [], listUsage: async () => [], appendAudit: none, appendAudits: none,
    listAudit: async () => [], ping: none, close: none,
  };
}

/** A limiter that always admits. */
export const nullLimiter: Limiter = {
  shared: false,
  take: async (_caller, _limits, cost) => ({ reserved: cost.tokens, settle: async () => {} }),
  headers: () => ({}),
  close: async () => {},
};

