// Reading data files into records: the format from the extension, UTF-8 text, JSON Lines (one object per line) and CSV
// (a header row naming the columns; RFC 4180 quoting via csv-parse). Every error names the file and the line.
import { readFileSync, statSync } from 'node:fs';
import { extname } from 'node:path';
import { parse as parseCsv } from 'csv-parse/sync';
import { AjarError } from '../tensor/errors.js';
import type { DataFormat } from './types.js';

/** One JSONL object or CSV row, with the 1-based line it starts on. CSV values are strings. */
export interface DataRecord {
  line: number;
  fields: Record<string, unknown>;
}

export type ParsedFile =
  | { format: 'text'; text: string }
  | { format: 'jsonl' | 'csv'; records: DataRecord[]; /** CSV: the header's columns */ columns?: string[] };

export function badData(message: string): AjarError {
  return new AjarError('bad_data', message);
}

/** The format a path is read as: the one given, else from its extension. */
export function formatOf(path: string, given?: DataFormat): DataFormat {
  if (given !== undefined) {
    if (given !== 'text' && given !== 'jsonl' && given !== 'csv') {
      throw new AjarError('bad_config', `unknown data format ${JSON.stringify(given)} for ${path}; use text, jsonl or csv`);
    }
    return given;
  }
  const ext = extname(path).toLowerCase();
  if (ext === '.jsonl' || ext === '.json-lines' || ext === '.ndjson') return 'jsonl';
  if (ext === '.csv') return 'csv';
  if (ext === '.json') {
    // NOTE: a .json file is usually one JSON document; read as text it would silently train on the JSON syntax.
    throw badData(`${path}: a .json file is not a data format ajar reads; write one JSON object per line as a .jsonl file, or set the format to text to train on the file as plain text`);
  }
  return 'text';
}

/** The file's bytes; a clear error when it is missing or not a file. */
export function readDataBytes(path: string): Buffer {
  let isFile: boolean;
  try {
    isFile = statSync(path).isFile();
  } catch {
    throw badData(`data file not found: ${path}`);
  }
  if (!isFile) throw badData(`${path} is not a file; give the path of a .txt, .jsonl or .csv data file`);
  try {
    return readFileSync(path);
  } catch (e) {
    throw badData(`cannot read ${path}: ${(e as Error).message}`);
  }
}

const utf8Strict = new TextDecoder('utf-8', { fatal: true }); // strips a leading BOM

export function decodeUtf8(bytes: Uint8Array, path: string): string {
  try {
    return utf8Strict.decode(bytes);
  } catch {
    throw badData(`${path} is not valid UTF-8 text; convert it to UTF-8 (is it a binary file?)`);
  }
}

export function parseDataFile(bytes: Uint8Array, path: string, format: DataFormat): ParsedFile {
  if (bytes.length === 0) throw badData(`${path} is empty; a data file needs at least one record`);
  const text = decodeUtf8(bytes, path);
  switch (format) {
    case 'text':
      if (text.trim() === '') throw badData(`${path} holds only whitespace; a text data file needs some text`);
      return { format, text };
    case 'jsonl':
      return { format, records: parseJsonl(text, path) };
    case 'csv':
      return { format, ...parseCsvRecords(text, path) };
  }
}

function describeJson(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return `a ${typeof v}`;
}

export function parseJsonl(text: string, path: string): DataRecord[] {
  const lines = text.split('\n');
  const records: DataRecord[] = [];
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i].endsWith('\r') ? lines[i].slice(0, -1) : lines[i];
    if (raw.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(raw) as unknown;
    } catch (e) {
      throw badData(`${path}:${i + 1}: invalid JSON (${(e as Error).message}); each line must be one JSON object, like {"text": "..."}`);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw badData(`${path}:${i + 1}: expected a JSON object, like {"text": "..."}, got ${describeJson(value)}`);
    }
    records.push({ line: i + 1, fields: value as Record<string, unknown> });
  }
  if (records.length === 0) throw badData(`${path} has no records (only blank lines); write one JSON object per line`);
  return records;
}

interface CsvInfo {
  lines: number;
  empty_lines: number;
}

export function parseCsvRecords(text: string, path: string): { records: DataRecord[]; columns: string[] } {
  let rows: Array<{ record: string[]; info: CsvInfo }>;
  try {
    rows = parseCsv(text, { info: true, skip_empty_lines: true, bom: true }) as unknown as Array<{ record: string[]; info: CsvInfo }>;
  } catch (e) {
    const err = e as Error & { lines?: number };
    const where = typeof err.lines === 'number' ? `${path}:${err.lines}` : path;
    throw badData(`${where}: invalid CSV (${err.message}); every row needs as many fields as the header, and quotes must be closed`);
  }
  if (rows.length === 0) throw badData(`${path} is empty; a CSV data file needs a header row naming its columns, then one row per record`);
  const columns = rows[0].record;
  const seen = new Set<string>();
  for (const c of columns) {
    if (seen.has(c)) throw badData(`${path}:1: the header names column ${JSON.stringify(c)} twice`);
    seen.add(c);
  }
  if (rows.length === 1) throw badData(`${path} has a header (${columns.join(', ')}) but no rows`);
  const records: DataRecord[] = [];
  // NOTE: csv-parse reports the line a record ENDS on (a quoted field may span lines) and a running count of the
  // empty lines it skipped; a record starts one line after the previous one ended, plus the empty lines between.
  let prevEnd = rows[0].info.lines;
  let prevEmpty = rows[0].info.empty_lines;
  for (let r = 1; r < rows.length; r++) {
    const { record, info } = rows[r];
    const line = prevEnd + 1 + (info.empty_lines - prevEmpty);
    prevEnd = info.lines;
    prevEmpty = info.empty_lines;
    const fields: Record<string, unknown> = {};
    columns.forEach((c, k) => {
      fields[c] = record[k];
    });
    records.push({ line, fields });
  }
  return { records, columns };
}
