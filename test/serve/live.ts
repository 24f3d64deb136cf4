// For the tests that need a real `ajar serve` process: a model slow enough to interrupt (a random GPT-2 with a
// character vocabulary and a 1024-token context), a key in an on-disk store, and the server started as a child
// process that tells its port.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { CharTokenizer } from '../../src/io/tokenizer/index.js';
import { buildModel, saveModelFolder, type CausalLM } from '../../src/models/index.js';
import { createApiKey, type NewKeySpec } from '../../src/serve/index.js';
import { SqliteStore } from '../../src/serve/sqlite-store.js';
import { Rng } from '../../src/tensor/index.js';
import { useReferenceBackend } from '../helpers/backends.js';
import { repoRoot } from '../helpers/cli.js';

export const SLOW_ID = 'slow';
export const SLOW_TEXT = 'abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ.,;:!?\n';

/** A random GPT-2 (1024 positions, 256 wide, 4 layers) over the characters of SLOW_TEXT, on the reference backend. */
export function slowModel(): { model: CausalLM; tokenizer: CharTokenizer } {
  useReferenceBackend();
  const tokenizer = CharTokenizer.fromText(SLOW_TEXT);
  const model = buildModel({
    architectures: ['GPT2LMHeadModel'], model_type: 'gpt2', vocab_size: tokenizer.vocabSize, n_positions: 1024,
    n_embd: 256, n_layer: 4, n_head: 4, activation_function: 'gelu_new', resid_pdrop: 0, embd_pdrop: 0, attn_pdrop: 0,
    layer_norm_epsilon: 1e-5,
  }) as CausalLM;
  model.initWeights(new Rng(7));
  return { model, tokenizer };
}

/** slowModel() saved as a model folder in dir. */
export function slowModelFolder(dir: string): string {
  mkdirSync(dir, { recursive: true });
  const { model, tokenizer } = slowModel();
  saveModelFolder(dir, model, tokenizer);
  return dir;
}

export async function makeKey(dbPath: string, spec: Partial<NewKeySpec> = {}): Promise<{ id: string; key: string }> {
  const store = SqliteStore.open(dbPath);
  try {
    const { record, key } = await createApiKey(store, { name: 'live', ...spec }, { actor: 'test' }, Date.now());
    return { id: record.id, key };
  } finally {
    await store.close();
  }
}

export interface Live {
  proc: ChildProcess;
  port: number;
  url: string;
  stderr: () => string;
  /** Resolves with the exit code (or the signal's name) when the process ends. */
  exited: Promise<number | string>;
}

/** `ajar serve --model slow=DIR --db sqlite:DB --port 0 --log-level silent ...args`, resolved once it listens. */
export function startServe(modelDir: string, dbPath: string, args: string[] = []): Promise<Live> {
  return spawnServe(['--model', `${SLOW_ID}=${modelDir}`, '--db', `sqlite:${dbPath}`, '--port', '0', '--log-level', 'silent', ...args]);
}

/** `ajar serve ...args`, resolved once it prints where it listens. */
export async function spawnServe(args: string[]): Promise<Live> {
  const proc = spawn(process.execPath, [join(repoRoot, 'bin/ajar.js'), 'serve', ...args], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  proc.stdout!.resume();
  const exited = new Promise<number | string>((resolve) => proc.once('exit', (code, sig) => resolve(code ?? sig ?? -1)));
  const port = await new Promise<number>((resolve, reject) => {
    proc.stderr!.on('data', (b: Buffer) => {
      err += b.toString();
      const m = /listening on http:\/\/[^:\s]+:(\d+)/.exec(err);
      if (m) resolve(Number(m[1]));
    });
    void exited.then((code) => reject(new Error(`ajar serve exited (${code}) before listening:\n${err}`)));
  });
  return { proc, port, url: `http://127.0.0.1:${port}`, stderr: () => err, exited };
}

/** A streamed completion read as it arrives: tokens so far, the request id, and the whole body once it ends. */
export interface LiveStream {
  requestId: string;
  tokens: () => number;
  /** Resolves with the raw SSE body when the response ends (or the connection breaks). */
  done: Promise<string>;
  /** Seconds since the first token, and tokens since then, at this moment. */
  rate: () => number;
  /** Closes the connection, as a client that gives up would; done then resolves with what arrived. */
  abort: () => void;
}

export async function openStream(url: string, key: string, prompt: string, maxTokens: number,
  extraHeaders: Record<string, string> = {}): Promise<LiveStream> {
  const controller = new AbortController();
  const res = await fetch(`${url}/v1/completions`, {
    method: 'POST',
    signal: controller.signal,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, ...extraHeaders },
    body: JSON.stringify({ model: SLOW_ID, prompt, max_tokens: maxTokens, temperature: 0, stream: true }),
  });
  if (res.status !== 200) throw new Error(`stream refused: ${res.status} ${await res.text()}`);
  let count = 0;
  let first = 0;
  let body = '';
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  const done = (async () => {
    try {
      for (;;) {
        const { value, done: end } = await reader.read();
        if (end) break;
        const text = decoder.decode(value, { stream: true });
        body += text;
        const n = (text.match(/"finish_reason":null/g) ?? []).length;
        if (n > 0 && count === 0) first = performance.now();
        count += n;
      }
    } catch {
      // the connection broke (the server was killed): what arrived is the answer
    }
    return body;
  })();
  return {
    requestId: res.headers.get('x-request-id')!,
    tokens: () => count,
    done,
    rate: () => (count > 1 ? (count - 1) / ((performance.now() - first) / 1000) : 0),
    abort: () => controller.abort(),
  };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Resolves when cond() holds, polling every 20 ms; rejects after ms. */
export async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}
