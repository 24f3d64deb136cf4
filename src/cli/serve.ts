// ajar serve: load model folders (or closed bundles, decrypted in memory) and serve them over an OpenAI-compatible
// HTTP API until SIGINT/SIGTERM. Closed mode (the default) admits only API keys from the store; open mode admits
// anyone, limited per address.
import { statSync } from 'node:fs';
import type { Server } from 'node:http';
import { basename, resolve } from 'node:path';
import { readRegularText } from '../io/safe-read.js';
import { KEY_ENV, loadAdapterBundle, loadBundledModel, readSecret } from '../release/index.js';
import {
  buildServer, DEFAULT_LIMITS, defaultDbSpec, journalOwner, keyStatus, listenMetrics, modelSpecFromFolder, openStore,
  reconcileJournal, type AdapterSpec, type ModelSpec,
} from '../serve/index.js';
import type { RedisLimiter } from '../serve/redis-limiter.js';
import { dashboardOptions } from '../dashboard/index.js';
import { AjarError } from '../tensor/errors.js';
import { bool, num, parseFlags, str } from './args.js';
import { selectBackend } from './common.js';
import { hubIdOf, modelDirArg } from './pull.js';

const DEFAULT_GRACE_S = 10;

const HELP = `usage: ajar serve --model [ID=]DIR [--model ...] [--adapter NAME=DIR ...] [--adapter-bundle NAME=BUNDLE ...] [--bundle [ID=]BUNDLE --key-file F]
                  [--mode closed|open]
                  [--host 127.0.0.1] [--port 8080]
                  [--db sqlite:PATH|postgres://...] [--db-sync normal|full] [--admin-token-file F] [--default-rpm N] [--default-tpm N]
                  [--queue-depth N] [--timeout SECONDS] [--body-limit BYTES] [--trust-proxy]
                  [--keep-alive-timeout S] [--headers-timeout S] [--receive-timeout S]
                  [--max-connections N] [--max-connections-per-ip N] [--shutdown-grace S]
                  [--metrics-token-file F] [--metrics-listen HOST:PORT] [--redis URL] [--redis-fail closed|open]
                  [--log-level info|warn|error|silent] [--backend native|wasm|js]
                  [--dashboard [--runs DIR] [--models DIR]]

Serves POST /v1/completions, POST /v1/chat/completions, GET /v1/models, GET /health, GET /metrics,
and /admin/keys, /admin/usage, /admin/audit when an admin token is set. See docs/serving.md.
--model: a Hugging Face model folder, or ORG/NAME[@REV] from the hub (pulled when not cached; see docs/hub.md);
  its id (the request's "model") is ID, else the folder's name, or ORG/NAME. Repeatable.
--adapter: a PEFT LoRA adapter folder served as the model NAME over the base (one copy of the base in memory for
  all its adapters); clients pick it with "model": NAME and the base with its own id. With several --model, write
  NAME=BASE_ID:DIR. Repeatable; /admin/adapters loads and unloads them at run time. Scope keys with
  'ajar keys create --models'.
--adapter-bundle: NAME=BUNDLE (or NAME=BASE_ID:BUNDLE): the encrypted adapter of 'ajar release hybrid' (its
  adapter/ folder), decrypted in memory with --key-file and served as NAME over the base, like --adapter.
--bundle: a closed bundle from 'ajar release closed', decrypted in memory with the key in --key-file (else the
  ${KEY_ENV} variable); a wrong key, a missing file or a changed byte stops the server before it listens.
  Its id is ID, else the bundle folder's name. Repeatable (one key for all). See docs/release.md.
--mode: closed (default) needs an API key from 'ajar keys create'; open needs none and limits per address.
--db: the store of keys, usage and audit (default ${'$'}AJAR_HOME/ajar.db or ~/.ajar/ajar.db; now ${defaultDbSpec()}).
--db-sync: normal (default): a usage record is committed before its response ends (no process's crash loses it) and
  on disk within about a second; full: also flushed to disk before the response ends (an fsync each commit group).
--admin-token-file: a file holding the admin token (else the AJAR_ADMIN_TOKEN variable); at least 16 characters.
--default-rpm/--default-tpm: per-minute limits for keys without their own, and per address in open mode
  (default ${DEFAULT_LIMITS.defaultRpm} requests, ${DEFAULT_LIMITS.defaultTpm} tokens).
--queue-depth: requests that may wait per model behind the running one (default ${DEFAULT_LIMITS.queueDepth}); more get 503.
--timeout: seconds a request may take, queue included (default ${DEFAULT_LIMITS.requestTimeoutMs / 1000}).
--body-limit: largest request body in bytes (default ${DEFAULT_LIMITS.bodyLimit}).
--trust-proxy: take the client address from X-Forwarded-For (only behind your own reverse proxy).
--keep-alive-timeout: seconds an idle keep-alive connection is kept (default ${DEFAULT_LIMITS.keepAliveTimeoutMs / 1000}).
--headers-timeout/--receive-timeout: seconds a client has to send the request's headers (default
  ${DEFAULT_LIMITS.headersTimeoutMs / 1000}) and the whole request, body included (default ${DEFAULT_LIMITS.receiveTimeoutMs / 1000}); slower senders get 408.
--max-connections: open connections at most (default ${DEFAULT_LIMITS.maxConnections}); when full, the oldest idle one is closed.
--max-connections-per-ip: open connections per client address (default ${DEFAULT_LIMITS.maxConnectionsPerAddress}, or 0 = no cap with
  --trust-proxy, where every connection comes from the proxy); more get 429.
--shutdown-grace: on SIGTERM or Ctrl-C, seconds running generations may finish (default ${DEFAULT_GRACE_S}) before they are cut;
  a second signal cuts them at once. Every usage record is written before exit either way.
--metrics-token-file: GET /metrics needs "Authorization: Bearer <token>" from this file (at least 16 characters);
  without it and without --metrics-listen, /metrics answers only clients on this machine (loopback).
--metrics-listen: serve /metrics on its own HOST:PORT (e.g. 127.0.0.1:9464) instead of the API's port.
--redis: redis://HOST:PORT: requests and tokens per minute shared by every replica using it (else per process).
--redis-fail: when Redis stops answering, closed (default: 503 limiter_unavailable) or open (per-process limits).
--dashboard: the web dashboard at /ui beside the API (sign in with the admin token; needs --admin-token-file): runs
  under --runs DIR, model folders and releases under --models DIR, keys, usage, a playground on the served models,
  the plan. See docs/dashboard.md; 'ajar dashboard' runs it without a model.`;

function modelArg(arg: string): { id?: string; dir: string } {
  const eq = arg.indexOf('=');
  if (eq > 0 && !arg.slice(0, eq).includes('/')) return { id: arg.slice(0, eq), dir: arg.slice(eq + 1) };
  return { dir: arg };
}

/** --adapter NAME=DIR or NAME=BASE:DIR (BASE a served model id; DIR the adapter folder). */
export function parseAdapterArg(arg: string): AdapterSpec {
  const eq = arg.indexOf('=');
  if (eq <= 0 || eq === arg.length - 1) {
    throw new AjarError('bad_flag', `ajar serve: --adapter '${arg}' must be NAME=DIR (or NAME=BASE_ID:DIR), e.g. --adapter support=./support-lora`);
  }
  const id = arg.slice(0, eq);
  const rest = arg.slice(eq + 1);
  // NOTE: BASE_ID: only when the text before the first ':' is not itself a folder (a Windows drive, a path).
  const colon = rest.indexOf(':');
  if (colon > 0 && !rest.slice(0, colon).includes('/') && !rest.slice(0, colon).includes('\\') && colon > 1) {
    return { id, base: rest.slice(0, colon), dir: rest.slice(colon + 1) };
  }
  return { id, dir: rest };
}

/** A token from a file named by a flag: a regular file of at most 4 KiB, trimmed, not empty; warns when others may read it. */
export function tokenFile(flag: string, file: string, command = 'serve'): string {
  const token = readRegularText(file, { code: 'bad_flag', kind: 'config', maxBytes: 4096, limitOf: 'a token file' }).trim();
  if (token === '') throw new AjarError('bad_flag', `ajar ${command}: --${flag} ${file} is empty`);
  if (process.platform !== 'win32' && (statSync(file).mode & 0o077) !== 0) {
    console.error(`ajar ${command}: warning: ${file} is readable by other users; chmod 600 it`);
  }
  return token;
}

/** The admin token from --admin-token-file, else AJAR_ADMIN_TOKEN, else none (admin endpoints off). */
export function adminToken(file: string | undefined, command = 'serve'): string | undefined {
  if (file !== undefined) return tokenFile('admin-token-file', file, command);
  const env = process.env.AJAR_ADMIN_TOKEN;
  return env !== undefined && env.trim() !== '' ? env.trim() : undefined;
}

export async function serveCommand(argv: string[]): Promise<number> {
  const p = parseFlags('serve', argv, {
    model: { type: 'string', multiple: true }, adapter: { type: 'string', multiple: true }, bundle: { type: 'string', multiple: true }, 'key-file': { type: 'string' },
    'adapter-bundle': { type: 'string', multiple: true },
    mode: { type: 'string' }, host: { type: 'string' },
    port: { type: 'string' }, db: { type: 'string' }, 'admin-token-file': { type: 'string' },
    'default-rpm': { type: 'string' }, 'default-tpm': { type: 'string' }, 'queue-depth': { type: 'string' },
    timeout: { type: 'string' }, 'body-limit': { type: 'string' }, 'trust-proxy': { type: 'boolean' },
    'log-level': { type: 'string' }, backend: { type: 'string' }, help: { type: 'boolean', short: 'h' },
    'keep-alive-timeout': { type: 'string' }, 'headers-timeout': { type: 'string' }, 'receive-timeout': { type: 'string' },
    'max-connections': { type: 'string' }, 'max-connections-per-ip': { type: 'string' }, 'shutdown-grace': { type: 'string' },
    'metrics-token-file': { type: 'string' }, 'metrics-listen': { type: 'string' },
    redis: { type: 'string' }, 'redis-fail': { type: 'string' }, 'db-sync': { type: 'string' },
    dashboard: { type: 'boolean' }, runs: { type: 'string' }, models: { type: 'string' },
  });
  if (bool(p, 'help')) {
    console.log(HELP);
    return 0;
  }
  const dirs = (p.values.model as string[] | undefined) ?? [];
  const bundles = (p.values.bundle as string[] | undefined) ?? [];
  if (dirs.length === 0 && bundles.length === 0) {
    throw new AjarError('bad_flag', 'ajar serve: --model is required (a Hugging Face model folder), or --bundle with --key-file');
  }
  const adapterBundles = ((p.values['adapter-bundle'] as string[] | undefined) ?? []).map(parseAdapterArg);
  if (bundles.length === 0 && adapterBundles.length === 0 && str(p, 'key-file') !== undefined) {
    throw new AjarError('bad_flag', 'ajar serve: --key-file opens a --bundle or --adapter-bundle; give the bundle too');
  }
  if (adapterBundles.length > 0 && str(p, 'key-file') === undefined) {
    throw new AjarError('bad_flag', 'ajar serve: --adapter-bundle needs --key-file (the key the hybrid release was sealed with)');
  }
  const adapters: AdapterSpec[] = ((p.values.adapter as string[] | undefined) ?? []).map(parseAdapterArg);
  const mode = str(p, 'mode') ?? 'closed';
  if (mode !== 'closed' && mode !== 'open') throw new AjarError('bad_flag', `ajar serve: --mode must be closed or open, got '${mode}'`);
  const host = str(p, 'host') ?? '127.0.0.1';
  const port = num('serve', p, 'port', { int: true, min: 0, max: 65535 }) ?? 8080;
  const logLevel = str(p, 'log-level') ?? 'info';
  if (!['info', 'warn', 'error', 'silent'].includes(logLevel)) {
    throw new AjarError('bad_flag', `ajar serve: --log-level must be info, warn, error or silent, got '${logLevel}'`);
  }
  const timeout = num('serve', p, 'timeout', { min: 1 });
  const ms = (flag: string, fallback: number): number => {
    const s = num('serve', p, flag, { min: 0.001 });
    return s === undefined ? fallback : Math.round(s * 1000);
  };
  const trustProxy = bool(p, 'trust-proxy');
  const limits = {
    keepAliveTimeoutMs: ms('keep-alive-timeout', DEFAULT_LIMITS.keepAliveTimeoutMs),
    headersTimeoutMs: ms('headers-timeout', DEFAULT_LIMITS.headersTimeoutMs),
    receiveTimeoutMs: ms('receive-timeout', DEFAULT_LIMITS.receiveTimeoutMs),
    maxConnections: num('serve', p, 'max-connections', { int: true, min: 1 }) ?? DEFAULT_LIMITS.maxConnections,
    maxConnectionsPerAddress: num('serve', p, 'max-connections-per-ip', { int: true, min: 0 })
      ?? (trustProxy ? 0 : DEFAULT_LIMITS.maxConnectionsPerAddress),
    defaultRpm: num('serve', p, 'default-rpm', { int: true, min: 1 }) ?? DEFAULT_LIMITS.defaultRpm,
    defaultTpm: num('serve', p, 'default-tpm', { int: true, min: 1 }) ?? DEFAULT_LIMITS.defaultTpm,
    queueDepth: num('serve', p, 'queue-depth', { int: true, min: 0 }) ?? DEFAULT_LIMITS.queueDepth,
    requestTimeoutMs: timeout === undefined ? DEFAULT_LIMITS.requestTimeoutMs : Math.round(timeout * 1000),
    bodyLimit: num('serve', p, 'body-limit', { int: true, min: 1 }) ?? DEFAULT_LIMITS.bodyLimit,
  };
  if (limits.receiveTimeoutMs < limits.headersTimeoutMs) {
    throw new AjarError('bad_flag', `ajar serve: --receive-timeout (${limits.receiveTimeoutMs / 1000} s) must be at least --headers-timeout (${limits.headersTimeoutMs / 1000} s)`);
  }
  const graceMs = ms('shutdown-grace', DEFAULT_GRACE_S * 1000);
  const token = adminToken(str(p, 'admin-token-file'));
  const withDashboard = bool(p, 'dashboard');
  if (!withDashboard && (str(p, 'runs') !== undefined || str(p, 'models') !== undefined)) {
    throw new AjarError('bad_flag', 'ajar serve: --runs and --models are the dashboard\'s folders; add --dashboard');
  }
  if (withDashboard && token === undefined) {
    throw new AjarError('bad_flag', 'ajar serve: --dashboard needs --admin-token-file (signing in to the dashboard takes the admin token)');
  }
  const dashboard = withDashboard ? dashboardOptions({ runs: str(p, 'runs'), models: str(p, 'models') }) : undefined;
  const metricsFile = str(p, 'metrics-token-file');
  const metricsToken = metricsFile === undefined ? undefined : tokenFile('metrics-token-file', metricsFile);
  if (metricsToken !== undefined && metricsToken.length < 16) {
    throw new AjarError('bad_flag', `ajar serve: the token in --metrics-token-file ${metricsFile} is shorter than 16 characters; use a long random one`);
  }
  const metricsListen = str(p, 'metrics-listen');
  const metricsAddr = metricsListen === undefined ? undefined : hostPort(metricsListen);
  const redisUrl = str(p, 'redis');
  const dbSync = str(p, 'db-sync') ?? 'normal';
  if (dbSync !== 'normal' && dbSync !== 'full') {
    throw new AjarError('bad_flag', `ajar serve: --db-sync must be normal or full, got '${dbSync}'`);
  }
  const failMode = str(p, 'redis-fail') ?? 'closed';
  if (failMode !== 'closed' && failMode !== 'open') {
    throw new AjarError('bad_flag', `ajar serve: --redis-fail must be closed or open, got '${failMode}'`);
  }
  if (redisUrl !== undefined && !/^rediss?:\/\//.test(redisUrl)) {
    throw new AjarError('bad_flag', `ajar serve: --redis '${redisUrl}' is not a redis:// URL (e.g. redis://127.0.0.1:6379)`);
  }
  const dbSpec = str(p, 'db') ?? defaultDbSpec();

  selectBackend(str(p, 'backend'));
  const models: ModelSpec[] = [];
  for (const arg of dirs) {
    const { id, dir: given } = modelArg(arg);
    const dir = await modelDirArg(given, 'serve');
    console.error(`ajar serve: loading ${dir}`);
    models.push(modelSpecFromFolder(dir, id ?? hubIdOf(given, dir)));
  }
  // The bundle key, kept only until every bundle and adapter bundle is decrypted (in memory), then zeroed.
  const secret = bundles.length > 0 || adapterBundles.length > 0 ? readSecret(str(p, 'key-file')) : null;
  for (const w of secret?.warnings ?? []) console.error(`ajar serve: warning: ${w}`);
  for (const a of adapterBundles) {
    const bytes = secret!.bytes;
    adapters.push({ ...a, attach: (model) => loadAdapterBundle(model, a.dir, bytes) });
  }
  if (secret && bundles.length > 0) {
    try {
      for (const arg of bundles) {
        const { id, dir } = modelArg(arg);
        console.error(`ajar serve: decrypting ${dir} in memory`);
        // NOTE: every check (MAC, files, tags) runs here, before the store opens or a port is bound.
        const b = loadBundledModel(dir, secret.bytes);
        models.push({ id: id ?? basename(resolve(dir)), model: b.model, tokenizer: b.tokenizer, chatTemplate: b.chatTemplate });
      }
    } finally {
      if (adapterBundles.length === 0) secret.bytes.fill(0);
    }
  }
  for (const a of adapters) console.error(`ajar serve: loading adapter ${a.id} from ${a.dir}${a.attach ? ' (decrypting in memory)' : ''}`);
  const limiter = redisUrl === undefined ? undefined : await connectRedis(redisUrl, failMode);
  const store = await openStore(dbSpec, { sync: dbSync });
  if (limiter === undefined && !dbSpec.startsWith('sqlite:')) {
    console.error('ajar serve: requests and tokens per minute are limited per process (quotas are shared through --db); '
      + 'give --redis to share the limits between replicas');
  }
  const owner = journalOwner();
  const reconciled = await reconcileJournal(store, owner, Date.now());
  if (reconciled > 0) {
    console.error(`ajar serve: recorded ${reconciled} generation(s) an earlier server left unfinished (finish reason 'interrupted')`);
  }
  let app;
  let metricsServer: Server | undefined;
  try {
    try {
      app = buildServer({
        models, adapters, store, mode, limits, adminToken: token, trustProxy, journalOwner: owner, limiter, dashboard,
        metricsAccess: metricsAddr !== undefined ? 'off' : metricsToken !== undefined ? 'token' : 'loopback',
        metricsToken,
        logger: logLevel === 'silent' ? false : { level: logLevel, redact: ['req.headers.authorization'] },
      });
    } finally {
      secret?.bytes.fill(0);
    }
    await app.listen({ host, port });
    if (metricsAddr !== undefined) {
      metricsServer = await listenMetrics(app.ajarControl, metricsAddr, metricsToken);
      console.error(`ajar serve: metrics on http://${metricsListen}/metrics`);
    }
  } catch (e) {
    await app?.close();
    await store.close();
    await limiter?.close();
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') {
      const where = metricsAddr !== undefined && app?.server.listening ? `${metricsListen} (--metrics-listen)` : `${host}:${port}`;
      throw new AjarError('listen_failed', `ajar serve: cannot listen on ${where} (${code}); pick another port or host`);
    }
    throw e;
  }
  const addr = app.server.address();
  const where = typeof addr === 'object' && addr !== null ? `${host}:${addr.port}` : `${host}:${port}`;
  console.error(`ajar serve: listening on http://${where} (${mode} mode; models: ${models.map((m) => m.id).join(', ')}`
    + `${adapters.length > 0 ? `; adapters: ${adapters.map((a) => a.id).join(', ')}` : ''}; `
    + `db: ${dbSpec}; admin endpoints ${token === undefined ? 'off' : 'on'})`);
  if (dashboard !== undefined) console.error(`ajar serve: dashboard on http://${where}/ui`);
  if (mode === 'closed') {
    const now = Date.now();
    const active = (await store.listKeys()).filter((k) => keyStatus(k, now) === 'active').length;
    if (active === 0) {
      console.error("ajar serve: no active API keys yet, so every request gets 401: run 'ajar keys create --name NAME'"
        + (str(p, 'db') !== undefined ? ` --db ${dbSpec}` : ''));
    }
  } else if (host !== '127.0.0.1' && host !== 'localhost' && host !== '::1') {
    console.error(`ajar serve: warning: open mode on ${host} serves anyone who can reach it (limits apply per address)`);
  }
  const control = app.ajarControl;
  await new Promise<void>((resolve) => {
    let signals = 0;
    const onSignal = (sig: NodeJS.Signals): void => {
      signals++;
      if (signals === 1) {
        console.error(`ajar serve: ${sig}: shutting down; running generations get ${graceMs / 1000} s (signal again to cut them now)`);
        resolve();
      } else if (signals === 2) {
        console.error(`ajar serve: ${sig} again: cutting running generations now; writing their usage records`);
        control.hurry();
      } else {
        console.error(`ajar serve: ${sig} a third time: exiting at once (unfinished generations are in the usage journal; the next start records them)`);
        process.exit(130);
      }
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  const report = await control.shutdown(graceMs);
  metricsServer?.close();
  await store.close();
  await limiter?.close();
  console.error(`ajar serve: stopped (${report.inFlight} generation(s) in flight at the signal, ${report.cut} cut short`
    + `${report.unrecorded > 0 ? `, ${report.unrecorded} left in the usage journal` : ''})`);
  return 0;
}

async function connectRedis(url: string, failMode: 'closed' | 'open'): Promise<RedisLimiter> {
  // NOTE: the Redis client loads only when --redis asks for it.
  const { RedisLimiter } = await import('../serve/redis-limiter.js');
  const limiter = new RedisLimiter(url, {
    failMode, onFallback: (message) => console.error(`ajar serve: warning: ${message}`),
  });
  try {
    await limiter.ready();
  } catch (e) {
    await limiter.close();
    throw new AjarError('bad_flag', `ajar serve: cannot reach Redis at ${url.replace(/\/\/[^@/]*@/, '//***@')} `
      + `(${(e as Error).message}); start it or leave out --redis`);
  }
  console.error(`ajar serve: rate limits shared through Redis (fail ${failMode})`);
  return limiter;
}

function hostPort(arg: string): { host: string; port: number } {
  const m = /^(.*):(\d{1,5})$/.exec(arg);
  const port = m ? Number(m[2]) : NaN;
  if (!m || m[1] === '' || port > 65535) {
    throw new AjarError('bad_flag', `ajar serve: --metrics-listen '${arg}' must be HOST:PORT, e.g. 127.0.0.1:9464`);
  }
  return { host: m[1].replace(/^\[(.*)\]$/, '$1'), port };
}
