// A Hugging Face hub on 127.0.0.1 (port 0) for tests: the model-info API, HEAD/GET of /resolve/ with the headers
// the real hub sends (ETag, X-Repo-Commit; LFS files: 302 to a CDN path with X-Linked-Etag and X-Linked-Size),
// Range requests (206), error codes (X-Error-Code), and injected faults: a dropped connection, corrupt bytes.
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { goldenPath } from './golden.js';

export interface MockRevision {
  commit: string; // 40 hex
  files: Record<string, Buffer>;
}

export interface MockRepo {
  id: string; // 'org/name'
  revisions: MockRevision[];
  branches: Record<string, string>; // branch -> commit
  token?: string; // gated: requests need 'Authorization: Bearer <token>'
}

export interface LoggedRequest {
  method: string;
  path: string;
  range?: string;
  authorization?: string;
}

export interface MockFaults {
  // The next `times` CDN GETs of this sha256 send `afterBytes` bytes of the body, then the socket is destroyed.
  drop?: { sha256: string; afterBytes: number; times: number };
  // CDN GETs of this sha256 send bytes with one flipped, under the true sha256 headers.
  corrupt?: string;
}

export interface MockHub {
  url: string;
  requests: LoggedRequest[];
  faults: MockFaults;
  close: () => Promise<void>;
}

export function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

/** The git blob id of `b` (git's object format: sha1 of 'blob <len>\0' + bytes), the hub's ETag for a plain file. */
export function gitBlobSha1(b: Buffer): string {
  return createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');
}

/** Files stored with git-lfs on the hub (its default .gitattributes covers *.safetensors). */
export function isLfs(name: string): boolean {
  return name.endsWith('.safetensors');
}

function send(res: ServerResponse, status: number, headers: Record<string, string>, body?: Buffer | string): void {
  res.writeHead(status, headers);
  res.end(body);
}

function errorReply(res: ServerResponse, status: number, code: string, message: string): void {
  send(res, status, { 'content-type': 'application/json', 'x-error-code': code }, JSON.stringify({ error: message }));
}

/** Serve `body` honouring a `Range: bytes=N-` header; `dropAfter` cuts the connection after that many bytes. */
function serveBytes(req: IncomingMessage, res: ServerResponse, body: Buffer, headers: Record<string, string>, dropAfter?: number): void {
  const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  let status = 200;
  let slice = body;
  const h: Record<string, string> = { ...headers, 'accept-ranges': 'bytes', 'content-type': 'application/octet-stream' };
  if (m) {
    const start = Number(m[1]);
    if (start >= body.length) {
      send(res, 416, { 'content-range': `bytes */${body.length}` });
      return;
    }
    status = 206;
    slice = body.subarray(start);
    h['content-range'] = `bytes ${start}-${body.length - 1}/${body.length}`;
  }
  h['content-length'] = String(slice.length);
  if (req.method === 'HEAD') {
    send(res, status, h);
    return;
  }
  if (dropAfter !== undefined && dropAfter < slice.length) {
    res.writeHead(status, h);
    res.write(slice.subarray(0, dropAfter), () => res.socket?.destroy());
    return;
  }
  send(res, status, h, slice);
}

export async function startMockHub(repos: MockRepo[]): Promise<MockHub> {
  const requests: LoggedRequest[] = [];
  const faults: MockFaults = {};
  const blobsBySha = new Map<string, Buffer>();
  for (const r of repos) for (const rev of r.revisions) for (const b of Object.values(rev.files)) blobsBySha.set(sha256(b), b);
  let base = '';

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', base);
    const path = decodeURIComponent(url.pathname);
    requests.push({ method: req.method ?? '', path, range: req.headers.range, authorization: req.headers.authorization });

    const cdn = /^\/cdn\/([0-9a-f]{64})$/.exec(url.pathname);
    if (cdn) {
      const sha = cdn[1];
      const blob = blobsBySha.get(sha);
      if (blob === undefined || req.method !== 'GET') return errorReply(res, 404, 'EntryNotFound', 'no such object');
      let body = blob;
      if (faults.corrupt === sha) {
        body = Buffer.from(blob);
        body[body.length >> 1] ^= 0xff;
      }
      let dropAfter: number | undefined;
      if (faults.drop && faults.drop.sha256 === sha && faults.drop.times > 0) {
        faults.drop.times--;
        dropAfter = faults.drop.afterBytes;
      }
      return serveBytes(req, res, body, { etag: `"${sha}"` }, dropAfter);
    }

    const api = /^\/api\/models\/([^/]+\/[^/]+)\/revision\/([^/]+)$/.exec(url.pathname);
    const resolve = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    const match = api ?? resolve;
    if (!match) return errorReply(res, 404, 'NotFound', 'no such route');
    const repo = repos.find((r) => r.id === match[1]);
    if (!repo) return errorReply(res, 404, 'RepoNotFound', 'Repository not found');
    if (repo.token !== undefined && req.headers.authorization !== `Bearer ${repo.token}`) {
      return errorReply(res, 401, 'GatedRepo', 'Access to this model is restricted');
    }
    const revName = decodeURIComponent(match[2]);
    const commit = repo.branches[revName] ?? revName;
    const rev = repo.revisions.find((r) => r.commit === commit);
    if (!rev) return errorReply(res, 404, 'RevisionNotFound', 'Invalid rev id');

    if (api) {
      if (req.method !== 'GET') return errorReply(res, 405, 'MethodNotAllowed', 'GET only');
      const body = { id: repo.id, sha: rev.commit, siblings: Object.keys(rev.files).map((rfilename) => ({ rfilename })) };
      return send(res, 200, { 'content-type': 'application/json' }, JSON.stringify(body));
    }
    const name = decodeURIComponent(resolve![3]);
    const file = rev.files[name];
    if (file === undefined) return errorReply(res, 404, 'EntryNotFound', 'Entry not found');
    if (isLfs(name)) {
      const sha = sha256(file);
      // NOTE: as huggingface.co does for LFS files: a redirect to the CDN, the sha256 in X-Linked-Etag.
      return send(res, 302, {
        location: `${base}/cdn/${sha}`, 'x-linked-etag': `"${sha}"`, 'x-linked-size': String(file.length),
        'x-repo-commit': rev.commit, etag: `"${gitBlobSha1(Buffer.from(`version https://git-lfs.github.com/spec/v1\noid sha256:${sha}\nsize ${file.length}\n`))}"`,
        'content-length': '0',
      });
    }
    return serveBytes(req, res, file, { etag: `"${gitBlobSha1(file)}"`, 'x-repo-commit': rev.commit });
  };

  const server = createServer(handle);
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: base,
    requests,
    faults,
    close: () => new Promise<void>((ok) => {
      server.closeAllConnections();
      server.close(() => ok());
    }),
  };
}

/**
 * The repo the hub tests pull: test/golden/gpt2-tiny's model files plus a nested file, at two commits. 'v1' is
 * the first commit; 'main' is the second, which adds README.md (every other blob is shared between the two).
 */
export function gpt2TinyRepo(id = 'ajar-test/gpt2-tiny', token?: string): MockRepo {
  const names = ['config.json', 'generation_config.json', 'merges.txt', 'model.safetensors', 'tokenizer_config.json', 'vocab.json'];
  const files: Record<string, Buffer> = {};
  for (const n of names) files[n] = readFileSync(goldenPath(`gpt2-tiny/${n}`));
  files['extra/notes.md'] = Buffer.from('a nested file, to check the snapshot link depth\n');
  files['flax_model.msgpack'] = Buffer.from('weights for another framework, which a --model pull leaves out\n');
  const v1 = { commit: createHash('sha1').update('ajar mock commit 1').digest('hex'), files };
  const v2 = {
    commit: createHash('sha1').update('ajar mock commit 2').digest('hex'),
    files: { ...files, 'README.md': Buffer.from('---\nlicense: mit\n---\n# gpt2-tiny\n') },
  };
  return { id, revisions: [v1, v2], branches: { main: v2.commit, v1: v1.commit }, token };
}
