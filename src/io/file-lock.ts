// A lock file between processes that share a folder (the hub cache): created with O_EXCL, holding "pid host", its
// mtime refreshed while held. huggingface_hub locks each blob the same way before downloading it
// (<cache>/.locks/models--org--name/<etag>.lock, through the filelock package), so two pulls of one file, by ajar or
// by Python, do not append to one partial file at once.
// A lock is stale, and taken over, when its holder on this host is no longer running, or when for `staleMs` nobody
// has refreshed it and its work has shown no progress (a holder on another host or one that froze; or Python's
// empty flock file, whose download's progress is the partial file growing).
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, statSync, utimesSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname } from 'node:path';

export interface LockOptions {
  /** Told once, when the lock is held by someone else and this call starts waiting. */
  onWait?: (holder: string) => void;
  signal?: AbortSignal;
  /** Poll interval while waiting, ms. */
  pollMs?: number;
  /** A lock not refreshed for this long is stale, ms. */
  staleMs?: number;
  /**
   * When the holder's work last showed progress (ms since the epoch; 0: never), for holders that do not refresh
   * the lock: huggingface_hub's filelock leaves an empty lock file it holds with flock, which Node cannot test.
   */
  activity?: () => number;
}

const HOST = hostname();

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whether the lock at `path` may be taken over: its holder here died, or nobody refreshed it for staleMs. */
function stale(path: string, staleMs: number, activity: () => number): boolean {
  let text: string;
  let mtime: number;
  try {
    text = readFileSync(path, 'utf8');
    mtime = statSync(path).mtimeMs;
  } catch {
    return false; // NOTE: gone between our attempts: the next attempt creates it
  }
  if (Date.now() - Math.max(mtime, activity()) > staleMs) return true;
  const [pid, host] = text.trim().split(' ');
  // NOTE: an empty file is a holder between its create and its write: wait for it.
  return host === HOST && Number(pid) > 0 && Number(pid) !== process.pid && !alive(Number(pid));
}

function holderOf(path: string): string {
  try {
    const [pid, host] = readFileSync(path, 'utf8').trim().split(' ');
    return `process ${pid} on ${host}`;
  } catch {
    return 'another process';
  }
}

/** Run fn while holding the lock file at `path` (created with its folder); the file is removed afterwards. */
export async function withFileLock<T>(path: string, fn: () => Promise<T>, opts: LockOptions = {}): Promise<T> {
  const pollMs = opts.pollMs ?? 200;
  const staleMs = opts.staleMs ?? 60_000;
  mkdirSync(dirname(path), { recursive: true });
  let told = false;
  for (;;) {
    try {
      const fd = openSync(path, 'wx');
      try {
        writeSync(fd, `${process.pid} ${HOST}\n`);
      } finally {
        closeSync(fd);
      }
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    if (stale(path, staleMs, opts.activity ?? (() => 0))) {
      rmSync(path, { force: true });
      continue;
    }
    if (!told) {
      told = true;
      opts.onWait?.(holderOf(path));
    }
    if (opts.signal?.aborted) throw opts.signal.reason;
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
  // NOTE: refreshed at a third of the stale age, so a long download is never taken for a dead one.
  const beat = setInterval(() => {
    try {
      const now = new Date();
      utimesSync(path, now, now);
    } catch {
      // the lock was removed by someone who judged it stale; finishing is still safe (the rename is atomic)
    }
  }, Math.max(50, Math.floor(staleMs / 3)));
  beat.unref();
  try {
    return await fn();
  } finally {
    clearInterval(beat);
    rmSync(path, { force: true });
  }
}
