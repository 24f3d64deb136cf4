// The usage journal: a generation in flight has a row (store.journalUsage) brought up to date at most a second
// apart, and replaced by its usage record when it ends. A process killed outright (kill -9, power loss) leaves rows
// behind; the next start turns each into a usage record with finish reason `interrupted`, so what was delivered is
// billed, up to the last second's tokens.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { JournalEntry, Store } from './store.js';

/** An entry from another host counts as dead after this long without an update (its owner cannot be asked). */
export const FOREIGN_STALE_MS = 10 * 60_000;

/** This process's name in the journal: host, pid and a random part (a pid can be reused after a restart). */
export function journalOwner(): string {
  return `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whether the process that wrote the entry is gone. */
export function isOrphan(e: JournalEntry, self: string, now: number): boolean {
  if (e.owner === self) return false;
  const [host, pidText] = e.owner.split(':');
  const pid = Number(pidText);
  if (host === hostname() && Number.isSafeInteger(pid)) {
    // NOTE: our own pid under another owner is a predecessor whose pid this process was given.
    return pid === process.pid || !pidAlive(pid);
  }
  return now - e.heartbeat > FOREIGN_STALE_MS;
}

/**
 * Turn the journal entries of dead processes into usage records (status 500, finish reason `interrupted`,
 * latency up to their last update). Returns how many; run it at start.
 */
export async function reconcileJournal(store: Store, self: string, now: number): Promise<number> {
  const orphans = (await store.listJournal()).filter((e) => isOrphan(e, self, now));
  if (orphans.length === 0) return 0;
  await store.closeJournal(orphans.map((e) => ({
    ts: e.ts, keyId: e.keyId, client: e.client, model: e.model, endpoint: e.endpoint, promptTokens: e.promptTokens,
    completionTokens: e.completionTokens, latencyMs: Math.max(0, e.heartbeat - e.ts), status: 500,
    finishReason: 'interrupted', user: e.user, requestId: e.requestId,
  })));
  return orphans.length;
}
