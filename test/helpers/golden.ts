// Paths to committed golden fixtures, resolved from the compiled test file (dist/test/...) to the source tree.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Absolute path of a file under test/golden/. */
export function goldenPath(rel: string): string {
  return fileURLToPath(new URL(`../../../test/golden/${rel}`, import.meta.url));
}

export function readGoldenJson<T = unknown>(rel: string): T {
  return JSON.parse(readFileSync(goldenPath(rel), 'utf8')) as T;
}

/** Largest |a - b| / max(1, |b|) over two arrays (asserts equal length). */
export function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]) / Math.max(1, Math.abs(b[i])));
  return m;
}
