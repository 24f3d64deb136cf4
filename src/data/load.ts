// loadDataset: a data file + the model's tokenizer -> a token stream (language modelling) or a list of examples
// (instruct, classification, regression), read from the ids cache beside the file when file, spec and tokenizer match.
import { createHash } from 'node:crypto';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { AjarError } from '../tensor/errors.js';
import { CACHE_SUFFIX, cachePathFor, readCache, writeCache } from './cache.js';
import { badData, decodeUtf8, formatOf, parseDataFile, readDataBytes } from './read.js';
import type { DataRecord, ParsedFile } from './read.js';
import { IdBuffer, encodeAt, encodeLongText, tokenizerFingerprint } from './tokenize.js';
import { IGNORE_INDEX } from './types.js';
import type { DataFormat, DataSpec, Dataset, Documents, Example, ExampleData, LoadOptions, StreamData, Task, TokenizerLike } from './types.js';

const TASKS: readonly Task[] = ['lm', 'instruct', 'classification', 'regression'];
const DOCUMENTS: readonly Documents[] = ['line', 'paragraph', 'file', 'record'];
/** Bumped when the way ids are built changes, so old caches miss. */
const BUILD_VERSION = 1;

/** A spec with every default filled in. */
interface Resolved {
  path: string;
  format: DataFormat;
  task: Task | null; // null: infer
  textField: string;
  labelField: string;
  promptField: string;
  completionField: string;
  labels: string[] | null;
  documents: Documents | null; // null: a stream
}

function resolveSpec(spec: DataSpec): Resolved {
  if (typeof spec.path !== 'string' || spec.path === '') throw new AjarError('bad_config', 'the data spec needs a path');
  if (spec.task !== undefined && !TASKS.includes(spec.task)) {
    throw new AjarError('bad_config', `unknown task ${JSON.stringify(spec.task)} for ${spec.path}; use one of ${TASKS.join(', ')}`);
  }
  const field = (name: 'textField' | 'labelField' | 'promptField' | 'completionField', dflt: string): string => {
    const v = spec[name];
    if (v === undefined) return dflt;
    if (typeof v !== 'string' || v === '') throw new AjarError('bad_config', `${name} for ${spec.path} must be a non-empty field name`);
    return v;
  };
  let labels: string[] | null = null;
  if (spec.labels !== undefined) {
    if (!Array.isArray(spec.labels) || spec.labels.some((l) => typeof l !== 'string')) {
      throw new AjarError('bad_config', `labels for ${spec.path} must be a list of strings`);
    }
    const dup = spec.labels.find((l, i) => spec.labels!.indexOf(l) !== i);
    if (dup !== undefined) throw new AjarError('bad_config', `labels for ${spec.path} name ${JSON.stringify(dup)} twice`);
    if (spec.labels.length < 2) throw new AjarError('bad_config', `labels for ${spec.path} must name at least two classes, got ${JSON.stringify(spec.labels)}`);
    labels = [...spec.labels];
  }
  if (spec.documents !== undefined && !DOCUMENTS.includes(spec.documents)) {
    throw new AjarError('bad_config', `unknown document unit ${JSON.stringify(spec.documents)} for ${spec.path}; use one of ${DOCUMENTS.join(', ')}`);
  }
  return {
    path: spec.path,
    format: formatOf(spec.path, spec.format),
    task: spec.task ?? null,
    textField: field('textField', 'text'),
    labelField: field('labelField', 'label'),
    promptField: field('promptField', 'prompt'),
    completionField: field('completionField', 'completion'),
    labels,
    documents: spec.documents ?? null,
  };
}

/**
 * Loads a data file for training or evaluation. Plain text is one text (bos first when the tokenizer's addBos);
 * JSONL/CSV records each become bos? + ids (+ eos after each lm text, after each completion). See DataSpec for the task.
 */
export function loadDataset(spec: DataSpec, tok: TokenizerLike, opts: LoadOptions = {}): Dataset {
  const r = resolveSpec(spec);
  // A folder of files, one document each (not cached: there is no single file to put the cache beside).
  if (r.documents === 'file' && isFolder(r.path)) return folderDocuments(r, tok, opts.onProgress);
  const bytes = readDataBytes(r.path);
  if (opts.cache === false) return build(parseDataFile(bytes, r.path, r.format), r, tok, opts.onProgress);

  const dataSha256 = createHash('sha256').update(bytes).digest('hex');
  const key = createHash('sha256')
    .update(JSON.stringify({
      build: BUILD_VERSION,
      data: dataSha256,
      spec: { ...r, path: undefined },
      tokenizer: tokenizerFingerprint(tok),
    }))
    .digest('hex');
  const cachePath = cachePathFor(r.path, key);
  const cached = readCache(cachePath, key, tok.vocabSize, r.path);
  if (cached !== null) {
    cached.cache = { path: cachePath, hit: true };
    return cached;
  }
  const ds = build(parseDataFile(bytes, r.path, r.format), r, tok, opts.onProgress);
  const written = writeCache(cachePath, key, dataSha256, ds);
  ds.cache = { path: written ? cachePath : null, hit: false };
  return ds;
}

function build(parsed: ParsedFile, r: Resolved, tok: TokenizerLike, onProgress?: (done: number, total: number) => void): Dataset {
  if (parsed.format === 'text') {
    const task = r.task ?? 'lm';
    if (task !== 'lm') {
      throw new AjarError('bad_config', `${r.path} is plain text, which holds only language-modelling data; for the ${task} task use a JSONL or CSV file with the fields ${requiredFields(task, r).join(', ')}`);
    }
    if (r.documents === 'record') {
      throw new AjarError('bad_config', `${r.path} is plain text, which has no records: choose its documents (the unit of privacy under --dp) with --dp-unit line, paragraph or file (each line, each blank-line-separated paragraph, or each file of a --data folder)`);
    }
    if (r.documents !== null) return textDocuments([{ text: parsed.text, line: 1 }], r.documents, r.path, tok, onProgress);
    return textStream(parsed.text, r.path, tok, onProgress);
  }
  const { records } = parsed;
  const noun = parsed.format === 'csv' ? 'column' : 'field';
  if (parsed.columns !== undefined) {
    const task = r.task ?? inferTask(records[0], r, noun, parsed.columns);
    for (const c of requiredFields(task, r)) {
      if (!parsed.columns.includes(c)) {
        throw badData(`${r.path}:1: the header has no column ${JSON.stringify(c)} (columns: ${parsed.columns.join(', ')}); the ${task} task needs ${requiredFields(task, r).join(', ')}${fieldHint(c, r)}`);
      }
    }
    return buildRecords(records, task, r, tok, noun, onProgress);
  }
  const task = r.task ?? inferTask(records[0], r, noun);
  return buildRecords(records, task, r, tok, noun, onProgress);
}

function requiredFields(task: Task, r: Resolved): string[] {
  switch (task) {
    case 'lm':
      return [r.textField];
    case 'instruct':
      return [r.promptField, r.completionField];
    case 'classification':
    case 'regression':
      return [r.textField, r.labelField];
  }
}

function fieldHint(missing: string, r: Resolved): string {
  const option = missing === r.textField ? 'text' : missing === r.labelField ? 'label' : missing === r.promptField ? 'prompt' : 'completion';
  return `; rename it in the data, or give the name the data uses with --${option}-field (DataSpec.${option}Field)`;
}

function present(rec: DataRecord): string {
  const keys = Object.keys(rec.fields);
  return keys.length === 0 ? 'none' : keys.join(', ');
}

function inferTask(first: DataRecord, r: Resolved, noun: string, columns?: string[]): Task {
  const has = (f: string): boolean => (columns !== undefined ? columns.includes(f) : first.fields[f] !== undefined);
  if (has(r.promptField) && has(r.completionField)) return 'instruct';
  if (has(r.textField) && has(r.labelField)) return 'classification';
  if (has(r.textField)) return 'lm';
  const where = columns !== undefined ? `${r.path}:1` : `${r.path}:${first.line}`;
  const seen = columns !== undefined ? columns.join(', ') : present(first);
  throw badData(`${where}: cannot tell the task from the ${noun}s (${seen}); expected ${JSON.stringify(r.textField)} for language modelling, ${JSON.stringify(r.textField)} + ${JSON.stringify(r.labelField)} for classification, or ${JSON.stringify(r.promptField)} + ${JSON.stringify(r.completionField)} for instruction tuning; rename them, or name them with --text-field, --label-field, --prompt-field, --completion-field and set the task`);
}

/** The string in field f of rec; an error naming the line when it is missing or not a string. */
function stringField(rec: DataRecord, f: string, r: Resolved, noun: string): string {
  const v = rec.fields[f];
  if (v === undefined) throw badData(`${r.path}:${rec.line}: missing ${noun} ${JSON.stringify(f)} (this record has: ${present(rec)})${fieldHint(f, r)}`);
  if (typeof v !== 'string') throw badData(`${r.path}:${rec.line}: ${noun} ${JSON.stringify(f)} must be a string, got ${v === null ? 'null' : Array.isArray(v) ? 'an array' : `a ${typeof v}`}`);
  return v;
}

/** A label as a string: strings as they are, numbers and booleans as JSON writes them. */
function labelField(rec: DataRecord, r: Resolved, noun: string): string {
  const f = r.labelField;
  const v = rec.fields[f];
  if (v === undefined) throw badData(`${r.path}:${rec.line}: missing ${noun} ${JSON.stringify(f)} (this record has: ${present(rec)})${fieldHint(f, r)}`);
  if (typeof v === 'string') {
    if (v.trim() === '') throw badData(`${r.path}:${rec.line}: ${noun} ${JSON.stringify(f)} is empty; give every record a label`);
    return v;
  }
  if ((typeof v === 'number' && Number.isFinite(v)) || typeof v === 'boolean') return String(v);
  throw badData(`${r.path}:${rec.line}: ${noun} ${JSON.stringify(f)} must be a string or a number, got ${JSON.stringify(v)}`);
}

function bosPrefix(tok: TokenizerLike): number[] {
  return tok.addBos && tok.bosTokenId !== null ? [tok.bosTokenId] : [];
}

/** Progress every ~1/1000 of the records, and at the end. */
function progressEvery(total: number): number {
  return Math.max(1, Math.floor(total / 1000));
}

function textStream(text: string, path: string, tok: TokenizerLike, onProgress?: (done: number, total: number) => void): StreamData {
  const out = new IdBuffer(Math.ceil(text.length / 3) + 1);
  for (const id of bosPrefix(tok)) out.push(id);
  const before = out.length;
  encodeLongText(tok, text, out, path, onProgress);
  if (out.length === before) throw badData(`${path}: the text tokenises to no tokens`);
  return { kind: 'stream', task: 'lm', ids: out.toArray(), source: path };
}

function buildRecords(records: DataRecord[], task: Task, r: Resolved, tok: TokenizerLike, noun: string, onProgress?: (done: number, total: number) => void): Dataset {
  switch (task) {
    case 'lm':
      return recordStream(records, r, tok, noun, onProgress);
    case 'instruct':
      return instructExamples(records, r, tok, noun, onProgress);
    case 'classification':
      return classificationExamples(records, r, tok, noun, onProgress);
    case 'regression':
      return regressionExamples(records, r, tok, noun, onProgress);
  }
}

function recordStream(records: DataRecord[], r: Resolved, tok: TokenizerLike, noun: string, onProgress?: (done: number, total: number) => void): Dataset {
  if (r.documents !== null && r.documents !== 'record') {
    throw new AjarError('bad_config', `${r.path}: each ${noun === 'column' ? 'CSV row' : 'JSONL record'} is one document already; --dp-unit ${r.documents} applies to plain text only (leave it out)`);
  }
  if (r.documents === 'record') {
    return lmDocuments(records.map((rec) => ({ ids: encodeText(rec, r, tok, noun), line: rec.line })), r.path, tok, onProgress);
  }
  const out = new IdBuffer();
  const bos = bosPrefix(tok);
  const every = progressEvery(records.length);
  records.forEach((rec, i) => {
    const ids = encodeText(rec, r, tok, noun);
    out.pushAll(bos);
    out.pushAll(ids);
    if (tok.eosTokenId !== null) out.push(tok.eosTokenId);
    if ((i + 1) % every === 0 || i + 1 === records.length) onProgress?.(i + 1, records.length);
  });
  return { kind: 'stream', task: 'lm', ids: out.toArray(), source: r.path };
}

function isFolder(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** Every visible regular file of a folder (name order), each one document. */
function folderDocuments(r: Resolved, tok: TokenizerLike, onProgress?: (done: number, total: number) => void): ExampleData {
  const names = readdirSync(r.path).filter((n) => !n.startsWith('.') && !n.endsWith(CACHE_SUFFIX)).sort()
    .filter((n) => statSync(join(r.path, n)).isFile());
  if (names.length === 0) throw badData(`${r.path} is a folder with no files; put one text file per document in it`);
  const texts = names.map((n) => {
    const path = join(r.path, n);
    const bytes = readDataBytes(path);
    return { text: decodeUtf8(bytes, path), line: 1, source: path };
  });
  return textDocuments(texts, 'file', r.path, tok, onProgress);
}

/**
 * Plain text cut into documents: each non-blank line, each run of non-blank lines (a paragraph), or each text
 * whole; every document bos? + ids + eos, remembering the line it starts on.
 */
function textDocuments(texts: { text: string; line: number; source?: string }[], unit: Documents, path: string, tok: TokenizerLike,
  onProgress?: (done: number, total: number) => void): ExampleData {
  const docs: { text: string; line: number; where: string }[] = [];
  for (const t of texts) {
    const where = t.source ?? path;
    if (unit === 'file') {
      if (t.text.trim() !== '') docs.push({ text: t.text, line: t.line, where: `${where}:${t.line}` });
      continue;
    }
    const lines = t.text.split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
    let start = -1;
    lines.forEach((l, i) => {
      const blank = l.trim() === '';
      if (unit === 'line') {
        if (!blank) docs.push({ text: l, line: t.line + i, where: `${where}:${t.line + i}` });
        return;
      }
      if (!blank && start < 0) start = i;
      if ((blank || i === lines.length - 1) && start >= 0) {
        const end = blank ? i : i + 1;
        docs.push({ text: lines.slice(start, end).join('\n'), line: t.line + start, where: `${where}:${t.line + start}` });
        start = -1;
      }
    });
  }
  if (docs.length === 0) throw badData(`${path} holds no text to cut into documents`);
  return lmDocuments(docs.map((d) => ({ ids: encodeAt(tok, d.text, d.where), line: d.line })), path, tok, onProgress);
}

/** Language-modelling documents as examples: bos? + ids + eos each; documents that leave nothing to predict are dropped. */
function lmDocuments(docs: { ids: number[]; line: number }[], path: string, tok: TokenizerLike, onProgress?: (done: number, total: number) => void): ExampleData {
  const bos = bosPrefix(tok);
  const examples: Example[] = [];
  const every = progressEvery(docs.length);
  docs.forEach((d, i) => {
    const ids = [...bos, ...d.ids];
    if (tok.eosTokenId !== null) ids.push(tok.eosTokenId);
    if (ids.length >= 2) examples.push({ ids: Int32Array.from(ids), line: d.line });
    if ((i + 1) % every === 0 || i + 1 === docs.length) onProgress?.(i + 1, docs.length);
  });
  if (examples.length === 0) throw badData(`${path}: no document has two tokens or more (a token and the one after it to predict)`);
  return { kind: 'examples', task: 'lm', examples, source: path };
}

/** The ids of rec's text field; an error when the text gives no tokens. */
function encodeText(rec: DataRecord, r: Resolved, tok: TokenizerLike, noun: string): number[] {
  const where = `${r.path}:${rec.line}`;
  const ids = encodeAt(tok, stringField(rec, r.textField, r, noun), where);
  if (ids.length === 0) throw badData(`${where}: ${noun} ${JSON.stringify(r.textField)} is empty (it tokenises to no tokens); remove the record or give it text`);
  return ids;
}

function instructExamples(records: DataRecord[], r: Resolved, tok: TokenizerLike, noun: string, onProgress?: (done: number, total: number) => void): ExampleData {
  const every = progressEvery(records.length);
  const examples = records.map((rec, i): Example => {
    const where = `${r.path}:${rec.line}`;
    const ex = instructExample(tok, stringField(rec, r.promptField, r, noun), stringField(rec, r.completionField, r, noun), where,
      `the ${noun} ${JSON.stringify(r.completionField)}`);
    if ((i + 1) % every === 0 || i + 1 === records.length) onProgress?.(i + 1, records.length);
    return { ...ex, line: rec.line };
  });
  return { kind: 'examples', task: 'instruct', examples, source: r.path };
}

/**
 * One instruction example: bos? + prompt + completion + eos?, the loss on the completion only. `completionName` names
 * the completion in the error when nothing would be learnt.
 */
export function instructExample(tok: TokenizerLike, promptText: string, completionText: string, where: string, completionName = 'the completion'): Example {
  const prompt = [...bosPrefix(tok), ...encodeAt(tok, promptText, where)];
  const completion = encodeAt(tok, completionText, where);
  if (tok.eosTokenId !== null) completion.push(tok.eosTokenId);
  const ids = Int32Array.from([...prompt, ...completion]); // (L,)
  // targets[t] = ids[t + 1] where that next token is part of the completion: the loss falls on the completion only.
  const targets = new Int32Array(ids.length).fill(IGNORE_INDEX); // (L,)
  for (let t = Math.max(0, prompt.length - 1); t + 1 < ids.length; t++) targets[t] = ids[t + 1];
  if (!targets.some((v) => v !== IGNORE_INDEX)) {
    const why = completion.length === 0
      ? `${completionName} is empty and the tokenizer has no eos token to end it`
      : `the prompt is empty and the completion is one token, so no position predicts it`;
    throw badData(`${where}: nothing to learn: ${why}; give each record a completion`);
  }
  return { ids, targets };
}

/** One language-modelling text as an example of its own: bos? + ids + eos?, every token after the first predicted. */
export function textExample(tok: TokenizerLike, text: string, where: string): Example {
  return lmExample(tok, encodeAt(tok, text, where));
}

/** bos? + ids + eos? with next-token targets (the last position takes no loss). */
function lmExample(tok: TokenizerLike, textIds: number[]): Example {
  const ids = Int32Array.from([...bosPrefix(tok), ...textIds, ...(tok.eosTokenId !== null ? [tok.eosTokenId] : [])]); // (L,)
  const targets = new Int32Array(ids.length).fill(IGNORE_INDEX); // (L,)
  targets.set(ids.subarray(1), 0);
  return { ids, targets };
}

function isNumeric(s: string): boolean {
  return s.trim() !== '' && Number.isFinite(Number(s));
}

/** Distinct labels, sorted numerically when all are numbers ("2" before "10"), else by code unit. */
export function sortedLabels(labels: Iterable<string>): string[] {
  const distinct = [...new Set(labels)];
  if (distinct.every(isNumeric)) return distinct.sort((a, b) => Number(a) - Number(b) || (a < b ? -1 : a > b ? 1 : 0));
  return distinct.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

function classificationExamples(records: DataRecord[], r: Resolved, tok: TokenizerLike, noun: string, onProgress?: (done: number, total: number) => void): ExampleData {
  const raw = records.map((rec) => labelField(rec, r, noun));
  let labels: string[];
  if (r.labels !== null) {
    labels = r.labels;
    const set = new Set(labels);
    raw.forEach((l, i) => {
      if (!set.has(l)) {
        throw badData(`${r.path}:${records[i].line}: label ${JSON.stringify(l)} is not in the label set (${labels.map((x) => JSON.stringify(x)).join(', ')}); fix the record, or add the label to the set (a validation file's set comes from the training data)`);
      }
    });
  } else {
    labels = sortedLabels(raw);
    if (labels.length < 2) throw badData(`${r.path}: every record has the label ${JSON.stringify(labels[0])}; classification needs at least two classes`);
  }
  const index = new Map(labels.map((l, i) => [l, i]));
  const bos = bosPrefix(tok);
  const every = progressEvery(records.length);
  const examples = records.map((rec, i): Example => {
    const ids = Int32Array.from([...bos, ...encodeText(rec, r, tok, noun)]);
    if ((i + 1) % every === 0 || i + 1 === records.length) onProgress?.(i + 1, records.length);
    return { ids, label: index.get(raw[i])!, line: rec.line };
  });
  return { kind: 'examples', task: 'classification', examples, labels, source: r.path };
}

function regressionExamples(records: DataRecord[], r: Resolved, tok: TokenizerLike, noun: string, onProgress?: (done: number, total: number) => void): ExampleData {
  const values = records.map((rec) => {
    const v = rec.fields[r.labelField];
    if (v === undefined) throw badData(`${r.path}:${rec.line}: missing ${noun} ${JSON.stringify(r.labelField)} (this record has: ${present(rec)})${fieldHint(r.labelField, r)}`);
    if (typeof v === 'number' && Number.isFinite(v)) return v;
    if (typeof v === 'string' && isNumeric(v)) return Number(v);
    throw badData(`${r.path}:${rec.line}: ${noun} ${JSON.stringify(r.labelField)} is ${JSON.stringify(v)}, not a number; a regression target must be a finite number`);
  });
  const bos = bosPrefix(tok);
  const every = progressEvery(records.length);
  const examples = records.map((rec, i): Example => {
    const ids = Int32Array.from([...bos, ...encodeText(rec, r, tok, noun)]);
    if ((i + 1) % every === 0 || i + 1 === records.length) onProgress?.(i + 1, records.length);
    return { ids, value: values[i], line: rec.line };
  });
  return { kind: 'examples', task: 'regression', examples, source: r.path };
}

/**
 * A language-modelling file as one example per record, for per-example measurements (a privacy audit): plain text
 * gives one example per non-empty line, JSONL/CSV records with a text field one example each, prompt + completion
 * records instruction examples (as loadDataset reads them). No cache: audit files are small.
 */
export function loadRecordExamples(spec: DataSpec, tok: TokenizerLike): ExampleData {
  const r = resolveSpec(spec);
  const parsed = parseDataFile(readDataBytes(r.path), r.path, r.format);
  if (parsed.format === 'text') {
    const examples: Example[] = [];
    parsed.text.split('\n').forEach((line, i) => {
      const text = line.replace(/\r$/, '');
      if (text.trim() !== '') examples.push({ ...textExample(tok, text, `${r.path}:${i + 1}`), line: i + 1 });
    });
    if (examples.length === 0) throw badData(`${r.path}: no non-empty lines; give one example per line`);
    return { kind: 'examples', task: 'lm', examples, source: r.path };
  }
  const noun = parsed.format === 'csv' ? 'column' : 'field';
  const task = r.task ?? inferTask(parsed.records[0], r, noun, parsed.columns);
  if (task === 'instruct') return instructExamples(parsed.records, r, tok, noun);
  if (task === 'classification') return classificationExamples(parsed.records, r, tok, noun);
  if (task === 'regression') return regressionExamples(parsed.records, r, tok, noun);
  const examples = parsed.records.map((rec): Example => ({ ...lmExample(tok, encodeText(rec, r, tok, noun)), line: rec.line }));
  return { kind: 'examples', task: 'lm', examples, source: r.path };
}
