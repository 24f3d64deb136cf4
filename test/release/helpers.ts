// Fixtures for the release tests: temp folders, a copy of the tiny GPT-2 (releases append records beside the model,
// so tests never release the committed fixture itself), and an exact finder of common byte runs between files.
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AjarError } from '../../src/tensor/errors.js';
import { goldenPath } from '../helpers/golden.js';

export const GPT2_FILES = ['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer_config.json', 'vocab.json', 'merges.txt'];

export function tempDir(prefix = 'ajar-release-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** A copy of test/golden/gpt2-tiny's model files in dir (created). */
export function copyGpt2Tiny(dir: string): string {
  mkdirSync(dir, { recursive: true });
  for (const f of GPT2_FILES) copyFileSync(goldenPath(`gpt2-tiny/${f}`), join(dir, f));
  return dir;
}

/** Every plain file under dir, recursively. */
export function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...filesUnder(p));
    else out.push(p);
  }
  return out;
}

const BASE = 0x01000193; // the FNV prime, as the rolling hash's base

function hashAt(b: Uint8Array, at: number, len: number): number {
  let h = 0;
  for (let i = 0; i < len; i++) h = (Math.imul(h, BASE) + b[at + i]) >>> 0;
  return h;
}

export interface CommonRun {
  plainAt: number;
  hayAt: number;
  length: number;
}

/**
 * Finds any run of at least `run` bytes that two buffers share, exactly (hashes only pick candidates; bytes decide).
 * NOTE: why indexing only the plaintext's chunks at multiples of run/2 is exact: a shared run [s, s+run) of the
 * plaintext contains the chunk starting at the first multiple m of run/2 at or after s (m <= s + run/2 - 1), so the
 * haystack holds that chunk too; every haystack window of run/2 bytes is looked up, and from a matching chunk the
 * match is extended both ways and reported when it reaches `run` bytes.
 */
export class RunFinder {
  private readonly chunk: number;
  private readonly index = new Map<number, number[]>();
  private readonly filter = new Uint8Array(1 << 21); // a bitmap over hash & (2^24 - 1): most windows stop here

  constructor(private readonly plain: Uint8Array, private readonly run = 64) {
    this.chunk = run / 2;
    for (let m = 0; m + this.chunk <= plain.length; m += this.chunk) {
      const h = hashAt(plain, m, this.chunk);
      const list = this.index.get(h);
      if (list) list.push(m);
      else this.index.set(h, [m]);
      this.filter[(h & 0xffffff) >>> 3] |= 1 << (h & 7);
    }
  }

  /** The first shared run of at least `run` bytes, or null. */
  find(hay: Uint8Array): CommonRun | null {
    const c = this.chunk;
    if (hay.length < this.run) return null;
    let top = 1; // BASE^(c-1) mod 2^32
    for (let i = 0; i < c - 1; i++) top = Math.imul(top, BASE) >>> 0;
    let h = hashAt(hay, 0, c);
    for (let q = 0; ; q++) {
      if ((this.filter[(h & 0xffffff) >>> 3] & (1 << (h & 7))) !== 0) {
        const hit = this.check(hay, q, this.index.get(h));
        if (hit) return hit;
      }
      if (q + c >= hay.length) return null;
      h = (Math.imul((h - Math.imul(hay[q], top)) >>> 0, BASE) + hay[q + c]) >>> 0;
    }
  }

  private check(hay: Uint8Array, q: number, candidates: number[] | undefined): CommonRun | null {
    const { plain, chunk: c } = this;
    for (const m of candidates ?? []) {
      let same = true;
      for (let i = 0; i < c && same; i++) same = plain[m + i] === hay[q + i];
      if (!same) continue;
      let left = 0;
      while (m - left > 0 && q - left > 0 && plain[m - left - 1] === hay[q - left - 1]) left++;
      let right = 0;
      while (m + c + right < plain.length && q + c + right < hay.length && plain[m + c + right] === hay[q + c + right]) right++;
      if (left + c + right >= this.run) return { plainAt: m - left, hayAt: q - left, length: left + c + right };
    }
    return null;
  }
}

/** The AjarError that f throws (a refusal); fails the test when f returns or throws anything else. */
export function refusal(f: () => unknown): AjarError {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof AjarError, `expected an AjarError, got ${String(e)}`);
    return e;
  }
  assert.fail('expected a refusal');
}
