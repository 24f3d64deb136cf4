// Test helpers for the data layer: temp folders and a toy tokenizer whose ids are easy to write by hand
// (one id per character of ALPHABET, then bos and eos when asked for).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { AjarError, isAjarError } from '../../src/tensor/errors.js';
import type { TokenizerLike } from '../../src/data/index.js';

export function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'ajar-data-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Writes text to dir/name and returns the path. */
export function writeData(dir: string, name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

export const ALPHABET = 'abcdefghijklmnopqrstuvwxyz .,!?0123456789\n';

export interface ToyOptions {
  eos?: boolean;
  bos?: boolean;
  addBos?: boolean;
  /** Changes the ids (reverses the alphabet), to test cache invalidation. */
  reversed?: boolean;
  fingerprint?: string;
}

/** ids: ALPHABET's characters 0..41, then bos = 42 and eos = 43 when enabled. Unknown characters throw AjarError. */
export class ToyTokenizer implements TokenizerLike {
  readonly kind = 'toy';
  readonly vocabSize = ALPHABET.length + 2;
  readonly eosTokenId: number | null;
  readonly bosTokenId: number | null;
  readonly addBos: boolean;
  encodeCalls = 0;
  private readonly chars: string;
  private readonly fp: string | undefined;

  constructor(opts: ToyOptions = {}) {
    this.eosTokenId = opts.eos === true ? ALPHABET.length + 1 : null;
    this.bosTokenId = opts.bos === true || opts.addBos === true ? ALPHABET.length : null;
    this.addBos = opts.addBos === true;
    this.chars = opts.reversed === true ? [...ALPHABET].reverse().join('') : ALPHABET;
    this.fp = opts.fingerprint;
    if (this.fp !== undefined) {
      const fp = this.fp;
      this.fingerprint = () => fp;
    }
  }

  fingerprint?: () => string;

  encode(text: string): number[] {
    this.encodeCalls++;
    return [...text].map((c) => {
      const id = this.chars.indexOf(c);
      if (id < 0) throw new AjarError('bad_text', `character ${JSON.stringify(c)} is not in the vocabulary`);
      return id;
    });
  }
}

/** The toy ids of text (no specials). */
export function toyIds(text: string): number[] {
  return [...text].map((c) => ALPHABET.indexOf(c));
}

/** Asserts fn throws an AjarError with the code whose message matches every pattern. */
export function assertDataError(fn: () => unknown, code: string, ...patterns: RegExp[]): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught !== undefined, `expected an AjarError ${code}, nothing was thrown`);
  assert.ok(isAjarError(caught), `expected an AjarError, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  for (const p of patterns) assert.match(caught.message, p);
}
