// Hugging Face hub client: pull a model repo into huggingface_hub's own cache layout, and resolve a `--model`
// argument (a local folder, else `org/name[@revision]`) to a snapshot folder, pulling it when absent.
//
// The cache is byte-for-byte the layout huggingface_hub documents ("Understand caching",
// https://huggingface.co/docs/huggingface_hub/guides/manage-cache), so Python and ajar share one cache:
//   <cache>/models--org--name/blobs/<etag>                     the file's bytes (sha256 for LFS, git blob sha1 else)
//   <cache>/models--org--name/snapshots/<commit>/<file>        relative symlink to ../../blobs/<etag>
//   <cache>/models--org--name/refs/<revision>                  the commit sha the revision pointed to
//   <cache>/.locks/models--org--name/<etag>.lock                held while the blob downloads (file-lock.ts)
// The HTTP protocol follows huggingface_hub's file_download.py: GET /api/models/{repo}/revision/{rev} for the commit
// and file list; HEAD /{repo}/resolve/{commit}/{file} for the etag (X-Linked-Etag else ETag, unquoted, W/ dropped)
// and size (X-Linked-Size else Content-Length), without following the LFS redirect to the CDN; then GET of the
// file (or of the redirect's Location) into blobs/<etag>.incomplete, resumed with `Range: bytes=N-`.
import { createHash } from 'node:crypto';
import {
  closeSync, copyFileSync, createReadStream, existsSync, lstatSync, mkdirSync, openSync, readFileSync, readdirSync, readlinkSync, renameSync, rmSync,
  statSync, symlinkSync, truncateSync,
} from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, dirname, isAbsolute, join, relative } from 'node:path';
import { AjarError } from '../tensor/errors.js';
import { writeFileAtomic } from './atomic.js';
import { withFileLock } from './file-lock.js';
import { readRegularJson, readRegularText } from './safe-read.js';

export const DEFAULT_ENDPOINT = 'https://huggingface.co';

/** Files a `--model org/name` pull fetches: what ajar loads (config, weights, tokenizer, template, card). */
export const MODEL_PATTERNS = ['*.json', '*.safetensors', '*.txt', '*.model', '*.jinja', '*.md', 'LICENSE*'];

/** Where and how to reach the hub; every field defaults from the environment as huggingface_hub does. */
export interface HubSettings {
  endpoint: string; // HF_ENDPOINT, else https://huggingface.co
  token?: string; // HF_TOKEN, else the file $HF_TOKEN_PATH or $HF_HOME/token ('huggingface-cli login')
  cacheDir: string; // HF_HUB_CACHE, else $HF_HOME/hub, HF_HOME defaulting to $XDG_CACHE_HOME/huggingface or ~/.cache/huggingface
  offline: boolean; // HF_HUB_OFFLINE=1: the cache only
}

export interface PullOptions extends Partial<HubSettings> {
  include?: string[]; // fnmatch patterns on the repo path ('*' crosses '/', as huggingface_hub's allow_patterns)
  concurrency?: number; // files downloaded at once (default 4)
  retries?: number; // resumed attempts after a dropped connection, per file (default 3)
  stallMs?: number; // abort a request that receives nothing for this long (default 60 s)
  onProgress?: (doneBytes: number, totalBytes: number) => void;
  log?: (line: string) => void;
}

export interface HubRef {
  repoId: string; // 'org/name'
  revision: string; // a branch, tag or 40-hex commit; 'main' when not given
}

export interface PulledFile {
  name: string; // path inside the repo
  etag: string;
  size: number;
  downloaded: boolean; // false when the snapshot already had it, or its blob was in the cache
}

export interface PullResult {
  repoId: string;
  revision: string;
  commit: string;
  snapshotDir: string;
  files: PulledFile[];
  downloadedBytes: number;
}

const REPO_PART = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const COMMIT = /^[0-9a-f]{40}$/;
const SAFE_ETAG = /^[A-Za-z0-9._-]+$/;
const SHA256 = /^[0-9a-f]{64}$/;

function truthy(v: string | undefined): boolean {
  return v !== undefined && ['1', 'on', 'yes', 'true'].includes(v.trim().toLowerCase());
}

/** The settings huggingface_hub would use in this environment, overridden by any field of `over`. */
export function hubSettings(over: Partial<HubSettings> = {}, env: NodeJS.ProcessEnv = process.env): HubSettings {
  const hfHome = env.HF_HOME || join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'huggingface');
  let token = env.HF_TOKEN || undefined;
  if (token === undefined) {
    const tokenPath = env.HF_TOKEN_PATH || join(hfHome, 'token');
    try {
      token = readFileSync(tokenPath, 'utf8').trim() || undefined;
    } catch {
      token = undefined; // NOTE: no token file is the common case, not an error.
    }
  }
  return {
    endpoint: (over.endpoint ?? (env.HF_ENDPOINT || DEFAULT_ENDPOINT)).replace(/\/+$/, ''),
    token: over.token ?? token,
    cacheDir: over.cacheDir ?? (env.HF_HUB_CACHE || join(hfHome, 'hub')),
    offline: over.offline ?? truthy(env.HF_HUB_OFFLINE),
  };
}

/**
 * `org/name[@revision]` as a hub reference, or null when `s` is not shaped like one (a path starting with
 * '.', '/' or '~', more than one '/', characters the hub refuses in ids, or huggingface_hub's '--' and '..').
 */
export function parseHubRef(s: string): HubRef | null {
  const at = s.indexOf('@');
  const id = at >= 0 ? s.slice(0, at) : s;
  const revision = at >= 0 ? s.slice(at + 1) : 'main';
  const parts = id.split('/');
  if (parts.length !== 2 || !parts.every((p) => REPO_PART.test(p))) return null;
  if (id.includes('--') || id.includes('..') || id.length > 96) return null;
  if (revision === '' || /\s/.test(revision) || revision.split('/').some((seg) => seg === '' || seg === '.' || seg === '..')) return null;
  return { repoId: id, revision };
}

/** The repo's folder in the cache: models--org--name. */
export function repoFolder(cacheDir: string, repoId: string): string {
  return join(cacheDir, `models--${repoId.split('/').join('--')}`);
}

/** The cached snapshot folder of `ref` (through refs/<revision> unless it is a commit), or null if not cached. */
export function cachedSnapshot(cacheDir: string, ref: HubRef): string | null {
  const repo = repoFolder(cacheDir, ref.repoId);
  let commit: string | undefined;
  if (COMMIT.test(ref.revision) && existsSync(join(repo, 'snapshots', ref.revision))) {
    commit = ref.revision;
  } else {
    try {
      commit = readRegularText(join(repo, 'refs', ref.revision), { code: 'bad_cache', kind: 'config', root: repo }).trim();
    } catch {
      return null; // NOTE: a missing, oversized or non-regular ref is a snapshot not cached: pulling rewrites it
    }
  }
  if (!COMMIT.test(commit)) return null;
  const dir = join(repo, 'snapshots', commit);
  return existsSync(dir) ? dir : null;
}

/** huggingface_hub's _normalize_etag: drop a weak 'W/' prefix and the quotes. */
export function normalizeEtag(etag: string | null): string | null {
  if (etag === null) return null;
  const t = etag.trim();
  return (t.startsWith('W/') ? t.slice(2) : t).replace(/^"|"$/g, '');
}

/** fnmatch as Python's fnmatch.fnmatch on a posix path: '*' and '?' cross '/', [seq] and [!seq] classes. */
export function fnmatch(name: string, pattern: string): boolean {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end < 0) {
        re += '\\[';
        continue;
      }
      let body = pattern.slice(i + 1, end);
      if (body.startsWith('!')) body = `^${body.slice(1)}`;
      re += `[${body.replace(/\\/g, '\\\\')}]`;
      i = end;
    } else re += c.replace(/[.+^${}()|\\/]/g, '\\$&');
  }
  return new RegExp(`^${re}$`, 's').test(name);
}

/** huggingface_hub's filter_repo_objects: a pattern ending in '/' means everything under that folder. */
export function matchesAny(name: string, patterns: string[] | undefined): boolean {
  if (patterns === undefined || patterns.length === 0) return true;
  return patterns.some((p) => fnmatch(name, p.endsWith('/') ? `${p}*` : p));
}

// ---------------------------------------------------------------------------------------------------------------
// HTTP

interface Ctx {
  settings: HubSettings;
  ref: HubRef;
  stallMs: number;
  abort: AbortController; // aborts every request of this pull after the first failure
}

function userAgent(): string {
  return `ajar/0.1.0; node/${process.versions.node}`;
}

function headersFor(ctx: Ctx, url: string, extra: Record<string, string> = {}): Record<string, string> {
  const h: Record<string, string> = { 'user-agent': userAgent(), 'accept-encoding': 'identity', ...extra };
  // NOTE: the token goes to the endpoint only, never to the CDN a redirect names (requests drops it there too).
  if (ctx.settings.token && new URL(url).origin === new URL(ctx.settings.endpoint).origin) {
    h.authorization = `Bearer ${ctx.settings.token}`;
  }
  return h;
}

/** A signal that fires when `ms` pass without `kick()`, or when the pull is aborted. */
function stallSignal(ms: number, parent: AbortSignal): { signal: AbortSignal; kick: () => void; clear: () => void } {
  const c = new AbortController();
  const onParent = (): void => c.abort(parent.reason);
  parent.addEventListener('abort', onParent, { once: true });
  let timer = setTimeout(() => c.abort(new Error(`no data for ${ms / 1000} s`)), ms);
  return {
    signal: c.signal,
    kick: () => {
      clearTimeout(timer);
      timer = setTimeout(() => c.abort(new Error(`no data for ${ms / 1000} s`)), ms);
    },
    clear: () => {
      clearTimeout(timer);
      parent.removeEventListener('abort', onParent);
    },
  };
}

function causeOf(e: unknown): string {
  const err = e as { cause?: { code?: string; message?: string }; message?: string };
  return err.cause?.code ?? err.cause?.message ?? err.message ?? String(e);
}

function networkError(ctx: Ctx, e: unknown): AjarError {
  return new AjarError('hub_network', `cannot reach the hub at ${ctx.settings.endpoint} (${causeOf(e)}); check the network, `
    + 'HF_ENDPOINT, or set HF_HUB_OFFLINE=1 to use the cache only');
}

async function request(ctx: Ctx, method: 'GET' | 'HEAD', url: string, extra: Record<string, string> = {},
  redirect: RequestRedirect = 'follow'): Promise<{ res: Response; stall: ReturnType<typeof stallSignal> }> {
  const stall = stallSignal(ctx.stallMs, ctx.abort.signal);
  try {
    const res = await fetch(url, { method, headers: headersFor(ctx, url, extra), redirect, signal: stall.signal });
    return { res, stall };
  } catch (e) {
    stall.clear();
    throw networkError(ctx, e);
  }
}

/** One line for an HTTP failure; the token is never part of it. */
function statusError(ctx: Ctx, res: Response, what: string): AjarError {
  const code = res.headers.get('x-error-code') ?? '';
  const repo = ctx.ref.repoId;
  if (code === 'GatedRepo' || ((res.status === 401 || res.status === 403) && code !== 'RepoNotFound')) {
    const tokenNote = ctx.settings.token
      ? 'HF_TOKEN was sent but has no access: request access on the model page, or use a token that has it'
      : 'gated or private: set HF_TOKEN to a token with access';
    return new AjarError('hub_unauthorized', `${repo}: HTTP ${res.status} from ${ctx.settings.endpoint}, ${tokenNote}`);
  }
  if (code === 'RepoNotFound') {
    return new AjarError('hub_not_found', `repository ${repo} not found on ${ctx.settings.endpoint} (if it is private, set HF_TOKEN)`);
  }
  if (code === 'RevisionNotFound') {
    return new AjarError('hub_not_found', `revision '${ctx.ref.revision}' of ${repo} not found on ${ctx.settings.endpoint}`);
  }
  if (code === 'EntryNotFound' || (res.status === 404 && what !== 'repo')) {
    return new AjarError('hub_not_found', `${what} not found in ${repo}@${ctx.ref.revision} on ${ctx.settings.endpoint}`);
  }
  if (res.status === 404) {
    return new AjarError('hub_not_found', `repository ${repo} or revision '${ctx.ref.revision}' not found on ${ctx.settings.endpoint}`);
  }
  return new AjarError('hub_http', `${ctx.settings.endpoint} answered HTTP ${res.status} for ${what} of ${repo}; try again later`);
}

interface RepoInfo {
  commit: string;
  files: string[];
}

function safeRepoPath(name: string): boolean {
  if (name === '' || isAbsolute(name) || name.includes('\\') || name.includes('\0')) return false;
  return name.split('/').every((seg) => seg !== '' && seg !== '.' && seg !== '..');
}

/** GET /api/models/{repo}/revision/{rev}: the commit sha and the file list (huggingface_hub's repo_info). */
async function repoInfo(ctx: Ctx): Promise<RepoInfo> {
  const url = `${ctx.settings.endpoint}/api/models/${ctx.ref.repoId}/revision/${encodeURIComponent(ctx.ref.revision)}`;
  const { res, stall } = await request(ctx, 'GET', url, { accept: 'application/json' });
  let body: unknown;
  try {
    if (!res.ok) throw statusError(ctx, res, 'repo');
    body = await res.json();
  } catch (e) {
    if (e instanceof AjarError) throw e;
    throw new AjarError('hub_bad_response', `${ctx.settings.endpoint} sent a model info for ${ctx.ref.repoId} that is not JSON (${causeOf(e)})`);
  } finally {
    stall.clear();
  }
  const info = body as { sha?: unknown; siblings?: unknown };
  if (typeof info.sha !== 'string' || !COMMIT.test(info.sha) || !Array.isArray(info.siblings)) {
    throw new AjarError('hub_bad_response', `${ctx.settings.endpoint}'s model info for ${ctx.ref.repoId} lacks a commit 'sha' or 'siblings'`);
  }
  const files: string[] = [];
  for (const s of info.siblings as { rfilename?: unknown }[]) {
    const name = s?.rfilename;
    if (typeof name !== 'string' || !safeRepoPath(name)) {
      throw new AjarError('hub_bad_response', `${ctx.settings.endpoint} listed an unsafe file name in ${ctx.ref.repoId}: ${JSON.stringify(name)}`);
    }
    files.push(name);
  }
  return { commit: info.sha, files };
}

interface FileMeta {
  name: string;
  etag: string;
  size: number;
  url: string; // where the bytes are: the resolve URL, or the CDN location it redirects to
  sha256?: string; // set for LFS files (X-Linked-Etag), checked after download
}

function resolveUrl(ctx: Ctx, commit: string, name: string): string {
  const path = name.split('/').map(encodeURIComponent).join('/');
  return `${ctx.settings.endpoint}/${ctx.ref.repoId}/resolve/${commit}/${path}`;
}

/** HEAD of the resolve URL, following relative redirects only (renamed repos), as get_hf_file_metadata does. */
async function fileMeta(ctx: Ctx, commit: string, name: string): Promise<FileMeta> {
  let url = resolveUrl(ctx, commit, name);
  for (let hop = 0; hop < 5; hop++) {
    const { res, stall } = await request(ctx, 'HEAD', url, {}, 'manual');
    stall.clear();
    const location = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && location !== null && !/^[a-z][a-z0-9+.-]*:/i.test(location)) {
      url = new URL(location, url).toString();
      continue;
    }
    if (!(res.ok || (res.status >= 300 && res.status < 400))) throw statusError(ctx, res, `file ${name}`);
    const linked = normalizeEtag(res.headers.get('x-linked-etag'));
    const etag = linked ?? normalizeEtag(res.headers.get('etag'));
    const sizeText = res.headers.get('x-linked-size') ?? res.headers.get('content-length');
    const size = sizeText === null ? NaN : Number(sizeText);
    if (etag === null || !SAFE_ETAG.test(etag) || !Number.isSafeInteger(size) || size < 0) {
      throw new AjarError('hub_bad_response', `${ctx.settings.endpoint} sent no usable ETag or size for ${name} in ${ctx.ref.repoId}`);
    }
    const commitHeader = res.headers.get('x-repo-commit');
    if (commitHeader !== null && commitHeader !== commit) {
      throw new AjarError('hub_bad_response', `${ctx.settings.endpoint} served ${name} from commit ${commitHeader}, not ${commit}; pull again`);
    }
    return {
      name, etag, size,
      url: location !== null && res.status >= 300 ? new URL(location, url).toString() : url,
      sha256: linked !== null && SHA256.test(linked) ? linked : undefined,
    };
  }
  throw new AjarError('hub_bad_response', `${ctx.settings.endpoint} redirected ${name} more than 5 times`);
}

// ---------------------------------------------------------------------------------------------------------------
// Disk

/** fs errors as one line; a full disk says so. */
export function diskError(e: unknown, path: string): Error {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC') {
    return new AjarError('disk_full', `no space left on the device writing ${path}; free some, or point HF_HOME or --cache-dir elsewhere`);
  }
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
    return new AjarError('cache_not_writable', `cannot write ${path} (${code}); point HF_HOME or --cache-dir at a writable folder`);
  }
  return e instanceof Error ? e : new Error(String(e));
}

/** Append `chunk` to the open file, mapping a full disk to a clear error. */
export async function appendChunk(fh: FileHandle, chunk: Uint8Array, path: string): Promise<void> {
  try {
    await fh.write(chunk);
  } catch (e) {
    throw diskError(e, path);
  }
}

function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Point snapshots/<commit>/<name> at blobs/<etag> with a relative symlink (a copy where symlinks are refused). */
function linkPointer(blob: string, pointer: string): void {
  const tmp = `${pointer}.${process.pid}.tmp`;
  try {
    mkdirSync(dirname(pointer), { recursive: true });
    rmSync(tmp, { force: true });
    try {
      symlinkSync(relative(dirname(pointer), blob), tmp);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw e;
      // NOTE: huggingface_hub copies the blob when the filesystem refuses symlinks (Windows without developer mode).
      copyFileSync(blob, tmp);
    }
    renameSync(tmp, pointer);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw diskError(e, pointer);
  }
}

/**
 * Download `meta` to blobs/<etag>: bytes go to blobs/<etag>.incomplete, a dropped connection is resumed with a
 * Range request (at most `retries` times; a later pull resumes too), and the finished file is checked for size
 * and, for LFS files, sha256 before the rename. Calls `onBytes` with each chunk's length (negative when bytes
 * counted earlier are thrown away).
 */
async function downloadBlob(ctx: Ctx, meta: FileMeta, blob: string, retries: number, onBytes: (n: number) => void): Promise<void> {
  const part = `${blob}.incomplete`;
  try {
    closeSync(openSync(part, 'a')); // NOTE: so an empty file, too, has a partial to rename
  } catch (e) {
    throw diskError(e, part);
  }
  let counted = 0; // bytes of this file reported to onBytes, so a restart can take them back
  const report = (n: number): void => {
    if (n === 0) return;
    counted += n;
    onBytes(n);
  };
  // NOTE: bounded: the last attempt's failure throws; a completed body ends the loop on the next pass (have === size).
  for (let attempt = 0; attempt <= retries; attempt++) {
    let have = sizeOf(part);
    if (have > meta.size) {
      truncateSync(part, 0);
      have = 0;
    }
    report(have - counted);
    if (have === meta.size) break;
    const extra: Record<string, string> = have > 0 ? { range: `bytes=${have}-` } : {};
    const { res, stall } = await request(ctx, 'GET', meta.url, extra);
    let fh: FileHandle | undefined;
    try {
      if (res.status === 200 && have > 0) {
        // NOTE: the server ignored the Range header and sends the whole file: start over.
        truncateSync(part, 0);
        report(-have);
        have = 0;
      } else if (res.status === 206) {
        const range = res.headers.get('content-range') ?? '';
        if (!range.startsWith(`bytes ${have}-`)) {
          throw new AjarError('hub_bad_response', `${new URL(meta.url).origin} answered Range bytes=${have}- with '${range}' for ${meta.name}`);
        }
      } else if (!res.ok) {
        throw statusError(ctx, res, `file ${meta.name}`);
      }
      if (res.body === null) throw new AjarError('hub_bad_response', `${new URL(meta.url).origin} sent no body for ${meta.name}`);
      try {
        fh = await open(part, 'a');
      } catch (e) {
        throw diskError(e, part);
      }
      const reader = res.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        stall.kick();
        await appendChunk(fh, value, part);
        report(value.length);
      }
    } catch (e) {
      if (e instanceof AjarError || (e as NodeJS.ErrnoException).code === 'ENOSPC' || ctx.abort.signal.aborted) throw e;
      const got = sizeOf(part);
      if (attempt >= retries) {
        throw new AjarError('hub_network', `download of ${meta.name} from ${new URL(meta.url).origin} broke off at ${got} of ${meta.size} bytes `
          + `(${causeOf(e)}); run the same command again to resume`);
      }
      continue; // resume with a Range request
    } finally {
      stall.clear();
      await fh?.close();
    }
  }
  const got = sizeOf(part);
  const digest = meta.sha256 !== undefined ? await sha256File(part) : undefined;
  if (got !== meta.size || (digest !== undefined && digest !== meta.sha256)) {
    rmSync(part, { force: true });
    onBytes(-counted);
    const what = got !== meta.size ? `${got} bytes, expected ${meta.size}` : `sha256 ${digest}, expected ${meta.sha256}`;
    throw new AjarError('hub_checksum', `${meta.name} from ${ctx.ref.repoId} is corrupt (${what}); the partial file was deleted, pull again`);
  }
  try {
    renameSync(part, blob);
  } catch (e) {
    throw diskError(e, blob);
  }
}

/** Run `fn` over `items` with at most `n` in flight; the first failure aborts the rest and is rethrown. */
async function pool<T, R>(items: T[], n: number, abort: AbortController, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  let failure: unknown;
  const worker = async (): Promise<void> => {
    while (next < items.length && failure === undefined) {
      const i = next++;
      try {
        out[i] = await fn(items[i]);
      } catch (e) {
        if (failure === undefined) {
          failure = e;
          abort.abort(e);
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(n, items.length)) }, worker));
  if (failure !== undefined) throw failure;
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Pull and resolve

/**
 * Bring `ref` into the cache: every file of the revision (or those matching `include`) ends up in
 * snapshots/<commit>/ as a link to its blob, and refs/<revision> holds the commit. Files the snapshot already has
 * cost no request; blobs already cached are linked, not downloaded. Offline, answers from the cache or fails.
 */
export async function pull(ref: HubRef, opts: PullOptions = {}): Promise<PullResult> {
  const settings = hubSettings(opts);
  const repo = repoFolder(settings.cacheDir, ref.repoId);
  if (settings.offline) {
    const dir = cachedSnapshot(settings.cacheDir, ref);
    if (dir === null) {
      throw new AjarError('hub_offline', `HF_HUB_OFFLINE is set and ${ref.repoId}@${ref.revision} is not in the cache at ${settings.cacheDir}; `
        + 'unset HF_HUB_OFFLINE and pull it first');
    }
    const files = listSnapshot(dir).filter((f) => matchesAny(f, opts.include));
    return { repoId: ref.repoId, revision: ref.revision, commit: basename(dir), snapshotDir: dir,
      files: files.map((name) => ({ name, etag: blobName(join(dir, name)), size: sizeOf(join(dir, name)), downloaded: false })),
      downloadedBytes: 0 };
  }
  const ctx: Ctx = { settings, ref, stallMs: opts.stallMs ?? 60_000, abort: new AbortController() };
  const info = await repoInfo(ctx);
  const wanted = info.files.filter((f) => matchesAny(f, opts.include));
  if (opts.include !== undefined && opts.include.length > 0 && wanted.length === 0) {
    throw new AjarError('hub_not_found', `no file of ${ref.repoId}@${ref.revision} matches --include ${opts.include.join(' ')} `
      + `(it has ${info.files.slice(0, 8).join(', ')}${info.files.length > 8 ? ', ...' : ''})`);
  }
  const snapshot = join(repo, 'snapshots', info.commit);
  try {
    mkdirSync(join(repo, 'blobs'), { recursive: true });
    mkdirSync(snapshot, { recursive: true });
    if (ref.revision !== info.commit) {
      mkdirSync(dirname(join(repo, 'refs', ref.revision)), { recursive: true });
      writeFileAtomic(join(repo, 'refs', ref.revision), info.commit);
    }
  } catch (e) {
    throw diskError(e, repo);
  }
  const concurrency = opts.concurrency ?? 4;
  // NOTE: a file already in the snapshot is trusted without a request, as hf_hub_download does for a commit revision.
  const missing = wanted.filter((name) => !existsSync(join(snapshot, name)));
  const present: PulledFile[] = wanted.filter((name) => !missing.includes(name)).map((name) => ({
    name, etag: blobName(join(snapshot, name)), size: sizeOf(join(snapshot, name)), downloaded: false,
  }));
  const metas = await pool(missing, concurrency, ctx.abort, (name) => fileMeta(ctx, info.commit, name));
  const toFetch = metas.filter((m) => !existsSync(join(repo, 'blobs', m.etag)));
  const total = toFetch.reduce((s, m) => s + m.size, 0);
  let done = 0;
  if (toFetch.length > 0) opts.log?.(`downloading ${toFetch.length} file(s), ${total} bytes, from ${settings.endpoint}`);
  await pool(toFetch, concurrency, ctx.abort, async (m) => {
    const blob = join(repo, 'blobs', m.etag);
    // NOTE: huggingface_hub's lock path, so ajar and Python pulling the same file take turns; whoever comes second
    // finds the blob there and downloads nothing.
    const lock = join(settings.cacheDir, '.locks', basename(repo), `${m.etag}.lock`);
    await withFileLock(lock, async () => {
      if (existsSync(blob)) {
        done += m.size;
        opts.onProgress?.(done, total);
        return;
      }
      await downloadBlob(ctx, m, blob, opts.retries ?? 3, (n) => {
        done += n;
        opts.onProgress?.(done, total);
      });
    }, {
      signal: ctx.abort.signal,
      onWait: (holder) => opts.log?.(`waiting for ${holder}, which is downloading ${m.name} into the same cache`),
      activity: () => {
        try {
          return statSync(`${blob}.incomplete`).mtimeMs;
        } catch {
          return 0;
        }
      },
    });
  });
  for (const m of metas) linkPointer(join(repo, 'blobs', m.etag), join(snapshot, m.name));
  const fetched = new Set(toFetch.map((m) => m.name));
  const files = [...present, ...metas.map((m) => ({ name: m.name, etag: m.etag, size: m.size, downloaded: fetched.has(m.name) }))]
    .sort((a, b) => a.name.localeCompare(b.name));
  return { repoId: ref.repoId, revision: ref.revision, commit: info.commit, snapshotDir: snapshot, files, downloadedBytes: total };
}

/** The blob name a snapshot entry points at (its etag), or the entry's own name when it is a copy. */
function blobName(pointer: string): string {
  try {
    if (lstatSync(pointer).isSymbolicLink()) return basename(readlinkSync(pointer));
  } catch {
    // fall through
  }
  return basename(pointer);
}

/** Every file under a snapshot folder, as repo paths with '/'. */
function listSnapshot(dir: string): string[] {
  const out: string[] = [];
  const walk = (sub: string, depth: number): void => {
    if (depth > 32) return;
    for (const e of readdirSync(join(dir, sub), { withFileTypes: true })) {
      const rel = sub === '' ? e.name : `${sub}/${e.name}`;
      if (e.isDirectory()) walk(rel, depth + 1);
      else out.push(rel);
    }
  };
  walk('', 0);
  return out.sort();
}

/** A snapshot ajar can load: config.json and its weights (every shard the index names). */
function snapshotLoadable(dir: string): boolean {
  if (!existsSync(join(dir, 'config.json'))) return false;
  if (existsSync(join(dir, 'model.safetensors'))) return true;
  try {
    const path = join(dir, 'model.safetensors.index.json');
    const index = readRegularJson(path, { code: 'bad_cache', kind: 'index', root: dir }) as { weight_map?: Record<string, string> };
    const shards = new Set(Object.values(index.weight_map ?? {}));
    return shards.size > 0 && [...shards].every((s) => existsSync(join(dir, s)));
  } catch {
    return false;
  }
}

/**
 * The folder a `--model` (or `--init-from`) argument names: a path that exists locally as given; else
 * `org/name[@revision]` from the cache when its snapshot is loadable, else pulled (MODEL_PATTERNS) and then
 * returned. Anything else is returned unchanged, for the loader's own 'not found' error.
 */
export async function resolveModelDir(arg: string, opts: PullOptions = {}): Promise<string> {
  if (existsSync(arg)) return arg;
  const ref = parseHubRef(arg);
  if (ref === null) return arg;
  const settings = hubSettings(opts);
  const cached = cachedSnapshot(settings.cacheDir, ref);
  if (cached !== null && snapshotLoadable(cached)) return cached;
  if (settings.offline) {
    throw new AjarError('hub_offline', `${arg} is neither a local folder nor in the cache at ${settings.cacheDir}, and HF_HUB_OFFLINE is set; `
      + 'pull it online first (ajar pull), or give a model folder');
  }
  opts.log?.(`${arg} is not a local folder: pulling it from ${settings.endpoint}`);
  try {
    const r = await pull(ref, { include: MODEL_PATTERNS, ...opts });
    return r.snapshotDir;
  } catch (e) {
    if (e instanceof AjarError && e.code === 'hub_not_found') {
      throw new AjarError('hub_not_found', `${e.message}; and no local folder ${arg} exists`);
    }
    throw e;
  }
}
