// Reading files ajar did not write (model folders, releases, bundles, adapters, hub snapshots, llama2.c files):
// each is read only as a regular file, its real path kept inside its folder, and up to a limit fitting its kind.
import { createHash } from 'node:crypto';
import {
  closeSync, constants as fsConstants, fstatSync, lstatSync, openSync, readSync, realpathSync, statSync, type Stats,
} from 'node:fs';
import { basename, dirname, isAbsolute, relative, sep } from 'node:path';
import { AjarError } from '../tensor/errors.js';

const MiB = 1024 * 1024;

/**
 * The most bytes ajar reads from each kind of file. NOTE: tokenizer.json of a 256k-token vocabulary is ~35 MB;
 * the largest real config/index files are well under 1 MB; a safetensors header is limited by the spec to 100 MB
 * (safetensors.ts checks it) and its data by the file's size; sealed bundle files by the size the manifest states.
 */
export const READ_LIMITS = {
  config: 4 * MiB, // config.json, generation_config.json, adapter_config.json, ajar_head_config.json, hub refs
  index: 16 * MiB, // model.safetensors.index.json, a bundle's manifest.json, SHA256SUMS
  tokenizer: 64 * MiB, // tokenizer.json, vocab.json, merges.txt, tokenizer.model, tokenizer_config.json, chat_template.jinja
  // NOTE: readFileSync, and so any whole-file read, stops at 2 GiB; larger files are read in pieces (safetensors).
  whole: 2 * 1024 * MiB - 1, // files read whole: llama2.c checkpoints, sealed bundle files, files hashed for a release
  weights: Number.MAX_SAFE_INTEGER, // safetensors, read in pieces: the header has its own limit, the data the file's size
} as const;

export type FileKind = keyof typeof READ_LIMITS;

export interface SafeReadOptions {
  /** The AjarError code of every refusal ('bad_config', 'bad_tokenizer', ...). */
  code: string;
  /** Which limit applies (READ_LIMITS), unless maxBytes says otherwise. */
  kind: FileKind;
  maxBytes?: number;
  /** What maxBytes is, for the message ('the size the manifest states'); the kind's files by default. */
  limitOf?: string;
  /**
   * The folder the file came from: its real path (symlinks resolved) must stay inside trustedRoot(root). Leave it
   * out only for a file the user named themselves.
   */
  root?: string;
}

/** Escape control characters (a JSON parse message quotes the file, newlines included) so a message is one line. */
export function oneLine(s: string): string {
  let out = '';
  for (const c of s) {
    const code = c.charCodeAt(0);
    const control = code < 0x20 || code === 0x7f || code === 0x2028 || code === 0x2029;
    out += control ? `\\u${code.toString(16).padStart(4, '0')}` : c;
  }
  return out;
}

function fail(code: string, message: string): AjarError {
  return new AjarError(code, oneLine(message));
}

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function tooLarge(path: string, size: number, max: number, opts: SafeReadOptions): AjarError {
  return fail(opts.code, `${path} is ${size} bytes, over ajar's ${max}-byte limit for ${opts.limitOf ?? `${opts.kind} files`}`);
}

/** What a non-regular file is, for messages. */
function typeName(st: Stats): string {
  if (st.isDirectory()) return 'a folder';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  return 'not a regular file';
}

/**
 * The folder a model folder's files may point into: the folder itself, or for a huggingface_hub snapshot
 * (<cache>/models--org--name/snapshots/<commit>) the repo's cache folder, whose snapshots link to ../../blobs/<etag>.
 */
export function trustedRoot(dir: string): string {
  let real: string;
  try {
    real = realpathSync(dir);
  } catch {
    return dir;
  }
  const snapshots = dirname(real);
  const repo = dirname(snapshots);
  if (basename(snapshots) === 'snapshots' && basename(repo).startsWith('models--')) return repo;
  return real;
}

function isInside(path: string, root: string): boolean {
  const rel = relative(root, path);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel));
}

/** Resolve `path` and check it: inside its root, a regular file, within its size limit. Nothing is opened. */
function checkPath(path: string, opts: SafeReadOptions): { real: string; st: Stats; max: number } {
  let real: string;
  try {
    real = realpathSync(path);
  } catch (e) {
    const errno = (e as NodeJS.ErrnoException).code;
    let dangling = false;
    try {
      dangling = lstatSync(path).isSymbolicLink();
    } catch {
      dangling = false;
    }
    if (dangling) throw fail(opts.code, `${path} is a symbolic link to a file that does not exist`);
    if (errno === 'ENOENT') throw fail(opts.code, `${path} does not exist`);
    throw fail(opts.code, `cannot open ${path} (${describe(e)})`);
  }
  if (opts.root !== undefined) {
    const root = trustedRoot(opts.root);
    if (!isInside(real, root)) {
      throw fail(opts.code, `${path} is a link to ${real}, outside ${root}; a model folder's files must lie inside it `
        + '(copy the file into the folder)');
    }
  }
  let st: Stats;
  try {
    st = statSync(real);
  } catch (e) {
    throw fail(opts.code, `cannot open ${path} (${describe(e)})`);
  }
  if (!st.isFile()) throw fail(opts.code, `${path} is ${typeName(st)}, not a regular file`);
  const max = opts.maxBytes ?? READ_LIMITS[opts.kind];
  if (st.size > max) throw tooLarge(path, st.size, max, opts);
  return { real, st, max };
}

// NOTE: O_NONBLOCK so that a file swapped for a FIFO between the stat and the open cannot block the open;
// O_NOFOLLOW because the path is already resolved. Both are 0 where the platform lacks them (Windows).
const OPEN_FLAGS = fsConstants.O_RDONLY | (fsConstants.O_NONBLOCK ?? 0) | (fsConstants.O_NOFOLLOW ?? 0);

/**
 * Open a file for reading after the checks of readRegularFile, stat before open (opening a FIFO would block):
 * the caller reads with readSync and closes the descriptor. `size` is what fstat saw on the open descriptor.
 */
export function openRegularFile(path: string, opts: SafeReadOptions): { fd: number; size: number; max: number } {
  const { real, st, max } = checkPath(path, opts);
  let fd: number;
  try {
    fd = openSync(real, OPEN_FLAGS);
  } catch (e) {
    throw fail(opts.code, `cannot open ${path} (${describe(e)})`);
  }
  const now = fstatSync(fd);
  if (!now.isFile() || now.ino !== st.ino || now.dev !== st.dev) {
    closeSync(fd);
    throw fail(opts.code, `${path} changed while it was being opened; try again`);
  }
  return { fd, size: now.size, max };
}

/**
 * Run `f` on an open descriptor of a regular file (openRegularFile's checks) and its size, closing it after;
 * any failure that is not an AjarError becomes AjarError(opts.code) naming the file.
 */
function withRegularFile<T>(path: string, opts: SafeReadOptions, f: (fd: number, size: number) => T): T {
  const { fd, size, max } = openRegularFile(path, opts);
  try {
    if (size > max) throw tooLarge(path, size, max, opts);
    return f(fd, size);
  } catch (e) {
    if (e instanceof AjarError) throw e;
    throw fail(opts.code, `cannot read ${path} (${describe(e)})`);
  } finally {
    closeSync(fd);
  }
}

/**
 * Pass the first `size` bytes of an open file to `take`, in pieces of at most `chunk` bytes; returns the bytes
 * read (fewer when the file shrank). NOTE: never more than `size`, so a file growing while read cannot run on.
 */
function readPieces(fd: number, size: number, chunk: Buffer, take: (piece: Buffer, at: number) => void): number {
  let at = 0;
  while (at < size) {
    const k = readSync(fd, chunk, 0, Math.min(chunk.length, size - at), at);
    if (k === 0) break;
    take(chunk.subarray(0, k), at);
    at += k;
  }
  return at;
}

/** Read a file whole: a regular file (never a FIFO, device or socket), inside opts.root, at most its limit. */
export function readRegularFile(path: string, opts: SafeReadOptions): Buffer {
  return withRegularFile(path, opts, (fd, size) => {
    const buf = Buffer.allocUnsafe(size);
    const got = readPieces(fd, size, Buffer.allocUnsafe(Math.min(16 * MiB, Math.max(size, 1))), (piece, at) => piece.copy(buf, at));
    return got === size ? buf : buf.subarray(0, got);
  });
}

/** SHA-256 (hex) of a regular file, read in 16 MiB pieces so a file of any size within the limit is hashed. */
export function sha256OfRegularFile(path: string, opts: SafeReadOptions): string {
  return withRegularFile(path, opts, (fd, size) => {
    const h = createHash('sha256');
    readPieces(fd, size, Buffer.allocUnsafe(Math.min(16 * MiB, Math.max(size, 1))), (piece) => h.update(piece));
    return h.digest('hex');
  });
}

/** readRegularFile as UTF-8 text. */
export function readRegularText(path: string, opts: SafeReadOptions): string {
  return readRegularFile(path, opts).toString('utf8');
}

/** readRegularFile parsed as JSON; invalid JSON is AjarError(opts.code) naming the file. */
export function readRegularJson(path: string, opts: SafeReadOptions): unknown {
  const text = readRegularText(path, opts);
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw fail(opts.code, `${path} is not valid JSON (${describe(e)})`);
  }
}

/** Whether anything (a file, link, FIFO, ...) is at `path`: so a FIFO is refused by the reader, not taken for absent. */
export function entryExists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}
