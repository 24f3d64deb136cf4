// Dates and periods for keys, quotas and usage reports. All calendar arithmetic is in UTC, so a "day" or a
// "month" of quota and of `ajar usage` is the same for every operator whatever the server's time zone.
import { AjarError } from '../tensor/errors.js';

export type QuotaPeriod = 'day' | 'month';

export const QUOTA_PERIODS: readonly QuotaPeriod[] = ['day', 'month'];

const DAY_MS = 86_400_000;
const DATE_ONLY = /^(\d{4})-(\d{2})-(\d{2})$/;
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/;

/**
 * A date given by a user: `YYYY-MM-DD` (a UTC day) or an ISO 8601 time with a zone (`2026-01-31T12:00:00Z`).
 * `edge` picks which end of a bare day is meant: 'start' (00:00 UTC, for --since) or 'end' (the next midnight,
 * for --expires: a key that expires on 2026-01-31 works through that whole day, UTC).
 * Returns epoch milliseconds; anything else is AjarError('bad_date') naming `what`.
 */
export function parseDate(text: string, what: string, edge: 'start' | 'end' = 'start'): number {
  const s = text.trim();
  const d = DATE_ONLY.exec(s);
  if (d) {
    const [y, m, day] = [Number(d[1]), Number(d[2]), Number(d[3])];
    const t = Date.UTC(y, m - 1, day);
    const back = new Date(t);
    if (back.getUTCFullYear() !== y || back.getUTCMonth() !== m - 1 || back.getUTCDate() !== day) {
      throw new AjarError('bad_date', `${what} '${text}' is not a real calendar date`);
    }
    return edge === 'end' ? t + DAY_MS : t;
  }
  if (DATE_TIME.test(s)) {
    const t = Date.parse(s);
    if (Number.isFinite(t)) return t;
  }
  throw new AjarError('bad_date',
    `${what} '${text}' is not a date: use YYYY-MM-DD (UTC) or an ISO 8601 time with a zone, like 2026-01-31T12:00:00Z`);
}

/** Start of the UTC day or month holding `now` (epoch ms). */
export function periodStart(period: QuotaPeriod, now: number): number {
  const d = new Date(now);
  if (period === 'day') return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
}

/** Start of the next UTC day or month after `now`. */
export function periodEnd(period: QuotaPeriod, now: number): number {
  const d = new Date(now);
  if (period === 'day') return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
}

/** `YYYY-MM-DDTHH:MM:SSZ` (seconds precision) for tables and JSON. */
export function isoTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** The UTC day of an epoch-ms time: YYYY-MM-DD. */
export function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}
