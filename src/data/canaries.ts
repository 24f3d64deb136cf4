// Canaries (Carlini et al. 2019, "The Secret Sharer"): random secrets of a format such as "my PIN is {digits:6}",
// planted in the training data a chosen number of times, and the canary file that keeps them for `ajar audit`.
import { writeFileAtomic } from '../io/atomic.js';
import { readRegularJson } from '../io/safe-read.js';
import { AjarError } from '../tensor/errors.js';
import { Rng } from '../tensor/random.js';
import { deriveSeed } from './batch.js';
import { instructExample, textExample } from './load.js';
import { badData } from './read.js';
import type { Dataset, Example, ExampleData, StreamData, TokenizerLike } from './types.js';

/** The alphabets a placeholder {NAME:LENGTH} draws from, each character uniformly. */
const ALPHABETS: Record<string, string> = {
  digits: '0123456789',
  letters: 'abcdefghijklmnopqrstuvwxyz',
};

/** The stream of deriveSeed the canaries' draws come from (independent of the batches'). */
const CANARY_STREAM = 0xca7a41;

export const DEFAULT_CANARY_FORMAT = 'my PIN is {digits:6}';

type Part = { literal: string } | { alphabet: string; length: number };

export interface CanaryFormat {
  /** The format as given. */
  text: string;
  parts: Part[];
  /** |R|: the number of distinct secrets (the product of alphabet size ^ length over the placeholders). */
  spaceSize: number;
  /** The literal text before the first placeholder (an instruction canary's prompt). */
  prefix: string;
}

/** Parse "literal {digits:6} literal {letters:3}": at least one placeholder; no other braces. */
export function parseCanaryFormat(text: string): CanaryFormat {
  const parts: Part[] = [];
  const re = /\{([a-z]+):(\d+)\}/g;
  let last = 0;
  let spaceSize = 1;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    if (m.index > last) parts.push({ literal: text.slice(last, m.index) });
    const alphabet = ALPHABETS[m[1]];
    if (alphabet === undefined) {
      throw new AjarError('bad_config', `canary format ${JSON.stringify(text)}: unknown placeholder {${m[1]}:...}; use ${Object.keys(ALPHABETS).map((k) => `{${k}:N}`).join(' or ')}`);
    }
    const length = Number(m[2]);
    if (length < 1 || length > 32) throw new AjarError('bad_config', `canary format ${JSON.stringify(text)}: {${m[1]}:${m[2]}} needs a length from 1 to 32`);
    parts.push({ alphabet, length });
    spaceSize *= alphabet.length ** length;
    last = m.index + m[0].length;
  }
  if (last < text.length) parts.push({ literal: text.slice(last) });
  if (parts.every((p) => 'literal' in p)) {
    throw new AjarError('bad_config', `canary format ${JSON.stringify(text)} has no placeholder; put the secret where {digits:N} or {letters:N} stands, e.g. ${JSON.stringify(DEFAULT_CANARY_FORMAT)}`);
  }
  if (parts.some((p) => 'literal' in p && /[{}]/.test(p.literal))) {
    throw new AjarError('bad_config', `canary format ${JSON.stringify(text)}: a brace outside a placeholder; placeholders are {digits:N} and {letters:N}`);
  }
  if (spaceSize > Number.MAX_SAFE_INTEGER) {
    throw new AjarError('bad_config', `canary format ${JSON.stringify(text)} has more than 2^53 secrets; use shorter placeholders`);
  }
  const first = parts[0];
  return { text, parts, spaceSize, prefix: 'literal' in first ? first.literal : '' };
}

/** A uniformly random secret of the format, as its full text. */
export function drawCanary(format: CanaryFormat, rng: Rng): string {
  return format.parts.map((p) => ('literal' in p ? p.literal : Array.from({ length: p.length }, () => p.alphabet[rng.int(p.alphabet.length)]).join(''))).join('');
}

/** The secret of a canary text: its placeholder characters, joined. */
export function secretOf(format: CanaryFormat, text: string): string {
  let at = 0;
  let secret = '';
  for (const p of format.parts) {
    if ('literal' in p) {
      at += p.literal.length;
    } else {
      secret += text.slice(at, at + p.length);
      at += p.length;
    }
  }
  return secret;
}

/** Whether text is a secret of this format (its literals in place, placeholder characters from their alphabets). */
export function matchesFormat(format: CanaryFormat, text: string): boolean {
  let at = 0;
  for (const p of format.parts) {
    if ('literal' in p) {
      if (!text.startsWith(p.literal, at)) return false;
      at += p.literal.length;
    } else {
      for (let i = 0; i < p.length; i++) if (!p.alphabet.includes(text[at + i] ?? '')) return false;
      at += p.length;
    }
  }
  return at === text.length;
}

/** Every character a canary of this format can hold (a character vocabulary built from the data must include them). */
export function canaryCharacters(format: CanaryFormat): string {
  return format.parts.map((p) => ('literal' in p ? p.literal : p.alphabet)).join('');
}

/** The secret with index i of 0..|R|-1 (mixed radix, the last placeholder character fastest). */
function nthCandidate(format: CanaryFormat, i: number): string {
  const out: string[] = [];
  let rest = i;
  for (let k = format.parts.length - 1; k >= 0; k--) {
    const p = format.parts[k];
    if ('literal' in p) {
      out.push(p.literal);
      continue;
    }
    const chars: string[] = [];
    for (let j = 0; j < p.length; j++) {
      chars.push(p.alphabet[rest % p.alphabet.length]);
      rest = Math.floor(rest / p.alphabet.length);
    }
    out.push(chars.reverse().join(''));
  }
  return out.reverse().join('');
}

/**
 * Reference secrets to rank canaries among, none of them a canary: all the others when |R| - canaries <= limit
 * ("enumerate"), else `limit` distinct ones drawn uniformly ("sample").
 */
export function referenceCandidates(format: CanaryFormat, canaries: readonly string[], limit: number, rng: Rng): { method: 'enumerate' | 'sample'; texts: string[] } {
  const exclude = new Set(canaries);
  if (format.spaceSize - exclude.size <= limit) {
    const texts: string[] = [];
    for (let i = 0; i < format.spaceSize; i++) {
      const t = nthCandidate(format, i);
      if (!exclude.has(t)) texts.push(t);
    }
    return { method: 'enumerate', texts };
  }
  const seen = new Set<string>();
  while (seen.size < limit) {
    const t = drawCanary(format, rng);
    if (!exclude.has(t)) seen.add(t);
  }
  return { method: 'sample', texts: [...seen] };
}

/** What `ajar train --canaries` keeps beside the run folder (never inside it), for `ajar audit --canaries`. */
export interface CanaryFile {
  format: string;
  repeats: number;
  space_size: number;
  seed: number;
  /** The training data the canaries were planted in, and the run folder trained on it. */
  data: string;
  model: string;
  canaries: Array<{ text: string; secret: string }>;
}

/** The canary file of a run folder: OUT.canaries.json beside it (a release of OUT never sees it). */
export function canaryFilePath(outDir: string): string {
  return `${outDir.replace(/[\\/]+$/, '')}.canaries.json`;
}

/** Draw n distinct canaries of the format, seeded by the run's seed. */
export function drawCanaries(format: CanaryFormat, n: number, seed: number): string[] {
  if (n > format.spaceSize / 2) {
    throw new AjarError('bad_config', `--canaries ${n}: the format ${JSON.stringify(format.text)} has only ${format.spaceSize} secrets; plant at most half of them so each can be ranked`);
  }
  const rng = new Rng(deriveSeed(seed, CANARY_STREAM, 0));
  const out = new Set<string>();
  while (out.size < n) out.add(drawCanary(format, rng));
  return [...out];
}

export function writeCanaryFile(path: string, file: CanaryFile): void {
  try {
    writeFileAtomic(path, `${JSON.stringify(file, null, 2)}\n`);
  } catch (e) {
    throw new AjarError('write_failed', `cannot write the canary file ${path} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

/** Read and check a canary file: a known format, and every canary a secret of it. */
export function readCanaryFile(path: string): CanaryFile & { parsed: CanaryFormat } {
  const raw = readRegularJson(path, { code: 'bad_canaries', kind: 'index' }) as Partial<CanaryFile> | null;
  const bad = (why: string): never => {
    throw new AjarError('bad_canaries', `${path}: ${why} (write it with 'ajar train --canaries N', which keeps OUT.canaries.json beside the run folder)`);
  };
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return bad('not a JSON object');
  if (typeof raw.format !== 'string') return bad('no "format" string');
  if (!Array.isArray(raw.canaries) || raw.canaries.length === 0) return bad('no "canaries" list');
  let parsed: CanaryFormat;
  try {
    parsed = parseCanaryFormat(raw.format);
  } catch (e) {
    return bad((e as Error).message);
  }
  raw.canaries.forEach((c, i) => {
    if (c === null || typeof c !== 'object' || typeof c.text !== 'string' || !matchesFormat(parsed, c.text)) {
      bad(`canary ${i} is not a text of the format ${JSON.stringify(raw.format)}`);
    }
  });
  return {
    format: raw.format, repeats: typeof raw.repeats === 'number' ? raw.repeats : 1, space_size: parsed.spaceSize,
    seed: typeof raw.seed === 'number' ? raw.seed : 0, data: String(raw.data ?? ''), model: String(raw.model ?? ''),
    canaries: raw.canaries.map((c) => ({ text: c.text, secret: secretOf(parsed, c.text) })), parsed,
  };
}

/**
 * The training data with each canary planted `repeats` times. Examples: instruction data gets prompt = the format's
 * text before the secret and completion = the rest; language-modelling examples the whole text; each copy an
 * example of its own, appended (the batcher shuffles every epoch). A token stream: each copy, followed by the
 * record separator (eos, or a newline), inserted at a random record boundary (after an eos or newline token).
 */
export function plantCanaries(ds: Dataset, format: CanaryFormat, canaries: readonly string[], repeats: number, tok: TokenizerLike, seed: number): Dataset {
  if (ds.kind === 'examples') return plantExamples(ds, format, canaries, repeats, tok);
  return plantStream(ds, canaries, repeats, tok, new Rng(deriveSeed(seed, CANARY_STREAM, 1)));
}

function plantExamples(ds: ExampleData, format: CanaryFormat, canaries: readonly string[], repeats: number, tok: TokenizerLike): ExampleData {
  if (ds.task !== 'instruct' && ds.task !== 'lm') {
    throw new AjarError('bad_config', `--canaries plants text for a language model to memorise; ${ds.source} is ${ds.task} data (a classifier has nothing to generate). `
      + `Audit a classifier by membership alone: 'ajar audit --model DIR --members FILE --non-members FILE'`);
  }
  const where = 'canary';
  const planted: Example[] = [];
  for (const text of canaries) {
    // NOTE: a language-modelling document carries no targets (the batcher predicts every next token), as --dp-unit's do.
    const ex = ds.task === 'instruct' ? instructExample(tok, format.prefix, text.slice(format.prefix.length), where) : { ids: textExample(tok, text, where).ids };
    for (let r = 0; r < repeats; r++) planted.push(ex);
  }
  return { ...ds, examples: [...ds.examples, ...planted] };
}

function plantStream(ds: StreamData, canaries: readonly string[], repeats: number, tok: TokenizerLike, rng: Rng): StreamData {
  const newline = tok.encode('\n');
  const separator = tok.eosTokenId !== null ? [tok.eosTokenId] : newline;
  if (separator.length === 0) throw badData('--canaries: the tokenizer has neither an eos token nor a newline to separate a canary from the text around it');
  const sepId = separator.length === 1 ? separator[0] : null;
  // Record boundaries: positions just after a separator token (and the end).
  const boundaries: number[] = [];
  if (sepId !== null) for (let i = 0; i < ds.ids.length; i++) if (ds.ids[i] === sepId) boundaries.push(i + 1);
  if (boundaries.length === 0 || boundaries[boundaries.length - 1] !== ds.ids.length) boundaries.push(ds.ids.length);
  const inserts: Array<{ at: number; ids: number[] }> = [];
  for (const text of canaries) {
    const ids = [...tok.encode(text), ...separator];
    for (let r = 0; r < repeats; r++) inserts.push({ at: boundaries[rng.int(boundaries.length)], ids });
  }
  inserts.sort((a, b) => a.at - b.at);
  const total = ds.ids.length + inserts.reduce((n, x) => n + x.ids.length, 0);
  const out = new Int32Array(total); // (N + planted,)
  let src = 0;
  let dst = 0;
  for (const x of inserts) {
    out.set(ds.ids.subarray(src, x.at), dst);
    dst += x.at - src;
    src = x.at;
    out.set(x.ids, dst);
    dst += x.ids.length;
  }
  out.set(ds.ids.subarray(src), dst);
  return { ...ds, ids: out };
}

/** One token position of a format's secrets: a fixed token (bos, the literal text, eos) or a choice among alphabet tokens. */
export type SecretStep = { forced: number } | { choices: number[] };

/**
 * The token positions every secret of the format goes through, for a search over the secrets' tree: possible when each
 * placeholder character is one token and a canary's tokens are its parts' tokens joined (character vocabularies; a
 * BPE merges digits and is refused with null). `checkTexts` are texts of the format whose tokens must agree.
 */
export function secretSteps(format: CanaryFormat, tok: TokenizerLike, checkTexts: readonly string[]): SecretStep[] | null {
  const steps: SecretStep[] = [];
  if (tok.addBos && tok.bosTokenId !== null) steps.push({ forced: tok.bosTokenId });
  for (const p of format.parts) {
    if ('literal' in p) {
      for (const id of tok.encode(p.literal)) steps.push({ forced: id });
      continue;
    }
    const ids = [...p.alphabet].map((c) => tok.encode(c));
    if (ids.some((x) => x.length !== 1)) return null;
    for (let i = 0; i < p.length; i++) steps.push({ choices: ids.map((x) => x[0]) });
  }
  if (tok.eosTokenId !== null) steps.push({ forced: tok.eosTokenId });
  for (const text of checkTexts) {
    const ids = textExample(tok, text, 'canary').ids;
    if (ids.length !== steps.length) return null;
    for (let i = 0; i < ids.length; i++) {
      const s = steps[i];
      if ('forced' in s ? s.forced !== ids[i] : !s.choices.includes(ids[i])) return null;
    }
  }
  return steps;
}
