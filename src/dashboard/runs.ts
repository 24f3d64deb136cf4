// Training runs for the dashboard: every folder under --runs holding a metrics.jsonl (ajar train's log, one JSON
// object per line), read incrementally from a byte offset so a page can follow a run while it trains.
import { closeSync, readdirSync, readSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { openRegularFile, readRegularJson } from '../io/safe-read.js';
import { describeRun } from '../plan/index.js';
import { readPrivacy, readTrainingArgs } from '../release/results.js';
import type { RunChunk, RunSource, RunSummary } from '../serve/dashboard/index.js';
import { AjarError } from '../tensor/errors.js';

export const METRICS_FILE = 'metrics.jsonl';
/** Folders below --runs searched for runs, and runs listed at most. */
const MAX_DEPTH = 3;
const MAX_RUNS = 500;
/** The most of a metrics file one read returns (the page asks again for the rest). */
const MAX_CHUNK = 8 * 1024 * 1024;

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** Run folders under root, nearest first; hidden folders and node_modules are skipped. */
function runDirs(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string, depth: number): void => {
    if (out.length >= MAX_RUNS) return;
    if (isFile(join(dir, METRICS_FILE))) out.push(dir);
    if (depth >= MAX_DEPTH) return;
    let names: string[];
    try {
      names = readdirSync(dir).sort();
    } catch {
      return;
    }
    for (const name of names) {
      if (name.startsWith('.') || name === 'node_modules') continue;
      const full = join(dir, name);
      try {
        if (statSync(full).isDirectory()) walk(full, depth + 1);
      } catch {
        // vanished or unreadable: not a run
      }
    }
  };
  walk(root, 0);
  return out;
}

function optional<T>(read: () => T): T | null {
  try {
    return read();
  } catch {
    return null;
  }
}

function runId(root: string, dir: string): string {
  const rel = relative(root, dir);
  return rel === '' ? '.' : rel.split(sep).join('/');
}

export function runSource(root: string): RunSource {
  const find = (id: string): string => {
    const dir = runDirs(root).find((d) => runId(root, d) === id);
    if (dir === undefined) throw new AjarError('not_found', `no run '${id}' under ${root}`);
    return dir;
  };
  return {
    list(): RunSummary[] {
      return runDirs(root).map((dir) => {
        const st = statSync(join(dir, METRICS_FILE));
        return {
          id: runId(root, dir),
          kind: describeRun(join(dir, METRICS_FILE)),
          bytes: st.size,
          updated: st.mtime.toISOString(),
          config: optional(() => readRegularJson(join(dir, 'config.json'), { code: 'bad_run', kind: 'config', root: dir }) as Record<string, unknown>),
          training_args: optional(() => readTrainingArgs(dir)),
          privacy: optional(() => readPrivacy(dir)),
        };
      });
    },

    read(id: string, offset: number): RunChunk {
      const dir = find(id);
      const { fd, size } = openRegularFile(join(dir, METRICS_FILE), { code: 'bad_run', kind: 'whole', root: dir });
      try {
        const reset = offset > size;
        const from = reset ? 0 : offset;
        const want = Math.min(size - from, MAX_CHUNK);
        const buf = Buffer.alloc(want);
        let got = 0;
        while (got < want) {
          const k = readSync(fd, buf, got, want - got, from + got);
          if (k === 0) break;
          got += k;
        }
        // NOTE: only whole lines; a line the trainer is still writing is read next time.
        const end = buf.subarray(0, got).lastIndexOf(0x0a) + 1;
        const rows: Array<Record<string, unknown>> = [];
        for (const line of buf.subarray(0, end).toString('utf8').split('\n')) {
          if (line.trim() === '') continue;
          try {
            const v: unknown = JSON.parse(line);
            if (v !== null && typeof v === 'object' && !Array.isArray(v)) rows.push(v as Record<string, unknown>);
          } catch {
            // a damaged line is skipped; the rest of the run still shows
          }
        }
        return { offset: from + end, rows, reset };
      } finally {
        closeSync(fd);
      }
    },
  };
}
