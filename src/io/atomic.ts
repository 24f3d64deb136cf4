// Atomic file writes shared by every writer in ajar: a temp file in the same folder, fsync, rename over the
// target (readers never see half a file), and a best-effort fsync of the folder to make the rename durable.
import { closeSync, existsSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { randomBytes } from 'node:crypto';

/** Writes text to path via a temp file in the same folder and a rename, so readers never see half a file. */
export function writeFileAtomic(path: string, text: string): void {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    const fd = openSync(tmp, 'w');
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

/** Make a rename into `dir` durable (best effort: some platforms cannot open or fsync a folder). */
export function syncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // NOTE: not fatal; the files were fsynced before the rename.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * Put the finished folder `tmp` in place of `target` (same parent): an existing target is renamed to `old`
 * first (put back if the second rename fails) and removed once the new folder is in place. A crash between the
 * two renames leaves the previous folder at `old`, where a reader that knows the name can still find it.
 */
export function replaceDir(tmp: string, target: string, old: string): void {
  rmSync(old, { recursive: true, force: true });
  if (existsSync(target)) {
    renameSync(target, old);
    try {
      renameSync(tmp, target);
    } catch (e) {
      renameSync(old, target);
      throw e;
    }
    rmSync(old, { recursive: true, force: true });
  } else {
    renameSync(tmp, target);
  }
  syncDir(dirname(target));
}
