// Fixtures for the serve tests: the tiny GPT-2 loaded once per test file, a fresh SQLite store in a temp folder,
// an app with captured logs and a movable clock, small readers for SSE bodies and stored bytes, and the CLI run in
// this process with its output captured.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import {
  buildServer, createApiKey, modelSpecFromFolder, type ModelSpec, type NewKeySpec, type ServerOptions,
} from '../../src/serve/index.js';
import { main } from '../../src/cli/main.js';
import { SqliteStore } from '../../src/serve/sqlite-store.js';
import { useReferenceBackend } from '../helpers/backends.js';
import { goldenPath } from '../helpers/golden.js';

export const MODEL_ID = 'gpt2-tiny';
export const ADMIN_TOKEN = 'test-admin-token-0123456789abcdef';

let cached: ModelSpec | undefined;

/** The tiny GPT-2 (128-token context, GPT-2's vocabulary) as a ModelSpec without a chat template. */
export function tinyModel(): ModelSpec {
  if (!cached) {
    useReferenceBackend();
    cached = modelSpecFromFolder(goldenPath('gpt2-tiny'), MODEL_ID);
  }
  return cached;
}

export interface Harness {
  app: FastifyInstance;
  store: SqliteStore;
  /** The folder of the database files (empty when the store is in memory). */
  dir: string;
  dbPath: string;
  logs: string[];
  /** The app's clock; tests move it forward. */
  now: { t: number };
  key(spec?: Partial<NewKeySpec>): Promise<{ id: string; key: string }>;
  close(): Promise<void>;
}

/**
 * A fresh app over a fresh store; options override the defaults (closed mode, admin token set, logs captured).
 * The store is in memory unless onDisk (for tests that read the database files).
 */
export async function harness(opts: Partial<ServerOptions> = {}, onDisk = false): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'ajar-serve-'));
  const dbPath = join(dir, 'ajar.db');
  const store = SqliteStore.open(onDisk ? dbPath : ':memory:');
  const logs: string[] = [];
  const now = { t: Date.UTC(2026, 0, 15, 12, 0, 0) };
  const app = buildServer({
    models: [tinyModel()],
    store,
    adminToken: ADMIN_TOKEN,
    clock: () => now.t,
    logger: { level: 'info', stream: { write: (line: string) => { logs.push(line); } } },
    ...opts,
  });
  await app.ready();
  return {
    app, store, dir, dbPath, logs, now,
    key: async (spec = {}) => {
      const { record, key } = await createApiKey(store, { name: 'test', ...spec }, { actor: 'test' }, now.t);
      return { id: record.id, key };
    },
    close: async () => {
      await app.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function bearer(key: string): Record<string, string> {
  return { authorization: `Bearer ${key}` };
}

/** The JSON payloads of an SSE body, and whether it ended with [DONE]. */
export function sseEvents(body: string): { events: unknown[]; done: boolean } {
  const datas = body.split('\n\n').map((b) => b.trim()).filter((b) => b !== '').map((b) => {
    if (!b.startsWith('data: ')) throw new Error(`not an SSE data line: ${b}`);
    return b.slice('data: '.length);
  });
  const done = datas.at(-1) === '[DONE]';
  return { events: datas.filter((d) => d !== '[DONE]').map((d) => JSON.parse(d) as unknown), done };
}

/** Every byte the store holds on disk (the database, its WAL and shared memory), as latin1 text for searching. */
export function storeBytes(dir: string): string {
  return readdirSync(dir).filter((f) => f.startsWith('ajar.db'))
    .map((f) => readFileSync(join(dir, f)).toString('latin1')).join('\n');
}

/** Poll until f() is truthy (for records written after a socket closes). */
export async function waitFor<T>(f: () => Promise<T | undefined | null | false>, ms = 3000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}

export interface CliRun {
  code: number;
  out: string;
  err: string;
}

/** Run `ajar ...args` in this process, capturing stdout and stderr (one run at a time: the capture is global). */
export async function runCli(...args: string[]): Promise<CliRun> {
  const out: string[] = [];
  const err: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  const writeErr = process.stderr.write.bind(process.stderr);
  // NOTE: only strings are the command's; the test runner reports through the same stdout with Buffers.
  process.stdout.write = ((s: string | Uint8Array, ...rest: never[]) => (typeof s === 'string' ? out.push(s) > 0
    : write(s, ...rest))) as typeof process.stdout.write;
  process.stderr.write = ((s: string | Uint8Array, ...rest: never[]) => (typeof s === 'string' ? err.push(s) > 0
    : writeErr(s, ...rest))) as typeof process.stderr.write;
  try {
    const code = await main(args);
    return { code, out: out.join(''), err: err.join('') };
  } finally {
    process.stdout.write = write;
    process.stderr.write = writeErr;
  }
}
