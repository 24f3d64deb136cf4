// Text renderings of keys, usage and the audit log for the CLI: aligned tables, CSV (RFC 4180) and JSON.
import type { KeyView } from './keys.js';
import type { AuditEntry, UsageSummaryRow } from './store.js';
import { isoTime } from './time.js';

export type ReportFormat = 'table' | 'csv' | 'json';
export const REPORT_FORMATS: readonly ReportFormat[] = ['table', 'csv', 'json'];

/** Columns padded to their widest cell; numbers right-aligned. */
export function textTable(header: string[], rows: Array<Array<string | number>>): string {
  const cells = [header, ...rows.map((r) => r.map((c) => String(c)))];
  const numeric = header.map((_, j) => rows.length > 0 && rows.every((r) => typeof r[j] === 'number'));
  const widths = header.map((_, j) => Math.max(...cells.map((r) => r[j].length)));
  return cells.map((r) => r.map((c, j) => (numeric[j] ? c.padStart(widths[j]) : c.padEnd(widths[j]))).join('  ').trimEnd())
    .join('\n');
}

function csvField(v: string | number): string {
  const s = String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function csv(header: string[], rows: Array<Array<string | number>>): string {
  return [header, ...rows].map((r) => r.map(csvField).join(',')).join('\r\n');
}

const USAGE_COLUMNS = ['key_id', 'day', 'requests', 'prompt_tokens', 'completion_tokens'] as const;

/** `ajar usage`: json is the array of UsageSummaryRow (a contract); table adds a total_tokens column and a total row. */
export function formatUsage(rows: UsageSummaryRow[], format: ReportFormat): string {
  if (format === 'json') return JSON.stringify(rows);
  if (format === 'csv') return csv([...USAGE_COLUMNS], rows.map((r) => USAGE_COLUMNS.map((c) => r[c])));
  if (rows.length === 0) return 'no usage recorded';
  const body: Array<Array<string | number>> = rows.map((r) => [
    r.key_id, r.day, r.requests, r.prompt_tokens, r.completion_tokens, r.prompt_tokens + r.completion_tokens,
  ]);
  const sum = (c: 'requests' | 'prompt_tokens' | 'completion_tokens'): number => rows.reduce((s, r) => s + r[c], 0);
  body.push(['total', '', sum('requests'), sum('prompt_tokens'), sum('completion_tokens'),
    sum('prompt_tokens') + sum('completion_tokens')]);
  return textTable(['KEY', 'DAY (UTC)', 'REQUESTS', 'PROMPT', 'COMPLETION', 'TOTAL'], body);
}

export function formatKeys(keys: KeyView[]): string {
  if (keys.length === 0) return "no API keys yet: create one with 'ajar keys create --name NAME'";
  const dash = (v: unknown): string => (v === null || v === undefined ? '-' : String(v));
  return textTable(['ID', 'NAME', 'STATUS', 'RPM', 'TPM', 'QUOTA', 'EXPIRES', 'MODELS', 'CREATED'], keys.map((k) => [
    k.id, k.name, k.status, dash(k.rpm), dash(k.tpm),
    k.quota_tokens === null ? '-' : `${k.quota_tokens}/${k.quota_period}`,
    dash(k.expires_at), k.models === null ? 'all' : k.models.join(','), k.created_at,
  ]));
}

export function formatAudit(entries: AuditEntry[]): string {
  if (entries.length === 0) return 'the audit log is empty';
  return textTable(['TIME', 'ACTOR', 'ACTION', 'KEY', 'REMOTE', 'DETAIL'], entries.map((e) => [
    isoTime(e.ts), e.actor, e.action, e.keyId ?? e.keyPrefix ?? '-', e.remote ?? '-',
    e.detail === null ? '' : JSON.stringify(e.detail),
  ]));
}
