// Autoregressive generation with a KV cache: the prompt is run once, then one token per step; past the context the
// model sees the last contextLength tokens (nanoGPT's crop). Tokens stream out of an async generator as they are
// produced; stop strings are held back until decided.
import type { CausalLM } from '../models/types.js';
import { AjarError, noGrad, Rng, type Tensor } from '../tensor/index.js';
import { sampleToken, type SamplingOptions } from './sampling.js';

/** What generation needs from a tokenizer. */
export interface TokenSource {
  encode(text: string): number[];
  tokenBytes(id: number): Uint8Array;
}

export interface GenerateOptions extends SamplingOptions {
  maxNewTokens?: number; // default 64
  seed?: number; // default 0
  stop?: string[]; // generation ends before the first occurrence of any of these
  eosTokenId?: number | null; // default: the model's
  stopAtEos?: boolean; // default true
  signal?: AbortSignal; // aborting ends generation after the current token
  /**
   * Past the context, keep going on the last contextLength tokens (nanoGPT's sample.py crop; a prompt longer than
   * the context is cropped the same way). Default true. False: generation ends with finishReason 'context' when
   * the context is full, and a prompt longer than the context is an error.
   */
  slidingWindow?: boolean;
}

/**
 * Why generation ended: 'length' after maxNewTokens, 'stop' at a stop string, 'eos' at end-of-text, 'context'
 * when the context is full and slidingWindow is off, 'abort' when the signal fired.
 */
export type FinishReason = 'stop' | 'length' | 'eos' | 'context' | 'abort';

export interface GenerationChunk {
  /** The token just produced; null for the final flush of held-back text. */
  id: number | null;
  /** Newly completed text (may be '' while a multi-byte character or a possible stop string is pending). */
  text: string;
}

export interface GenerationResult {
  text: string;
  ids: number[];
  finishReason: FinishReason;
  promptTokens: number;
}

/** Text accumulation that never splits a UTF-8 character and holds back a possible stop-string prefix. */
class StopTextBuffer {
  private readonly decoder = new TextDecoder('utf-8');
  private full = '';
  private emitted = 0;
  stopped = false;

  constructor(private readonly stops: string[]) {}

  /** Add a token's bytes; returns the text that is now safe to emit. */
  push(bytes: Uint8Array): string {
    this.full += this.decoder.decode(bytes, { stream: true });
    return this.release(false);
  }

  /** End of generation: flush everything not cut by a stop string. */
  finish(): string {
    if (!this.stopped) this.full += this.decoder.decode();
    return this.release(true);
  }

  get text(): string {
    return this.full.slice(0, this.emitted);
  }

  private release(final: boolean): string {
    let end = this.full.length;
    let cut = -1;
    for (const s of this.stops) {
      const at = this.full.indexOf(s, Math.max(0, this.emitted - s.length + 1));
      if (at >= 0 && (cut < 0 || at < cut)) cut = at;
    }
    if (cut >= 0) {
      this.stopped = true;
      this.full = this.full.slice(0, cut);
      end = cut;
    } else if (!final) {
      // Hold back the longest suffix that is a proper prefix of some stop string.
      let hold = 0;
      for (const s of this.stops) {
        for (let n = Math.min(s.length - 1, this.full.length); n > hold; n--) {
          if (this.full.endsWith(s.slice(0, n))) {
            hold = n;
            break;
          }
        }
      }
      end = this.full.length - hold;
    }
    if (end <= this.emitted) return '';
    const out = this.full.slice(this.emitted, end);
    this.emitted = end;
    return out;
  }
}

/** The logits row of the last position of a (1, T, V) tensor, copied. */
function lastRow(logits: Tensor): Float32Array {
  const V = logits.shape[2];
  const T = logits.shape[1];
  return logits.data.slice((T - 1) * V, T * V);
}

/**
 * Generate from prompt ids. Yields each token with its newly completed text; returns the result.
 * Errors (prompt too long for the context, bad options) are AjarErrors thrown before the first token.
 */
export async function* generateStream(model: CausalLM, tok: TokenSource, promptIds: readonly number[],
  opts: GenerateOptions = {}): AsyncGenerator<GenerationChunk, GenerationResult, void> {
  const maxNew = opts.maxNewTokens ?? 64;
  if (!Number.isInteger(maxNew) || maxNew < 0) throw new AjarError('bad_input', `max new tokens must be an integer >= 0, got ${maxNew}`);
  if (promptIds.length === 0) throw new AjarError('bad_input', 'the prompt is empty: give at least one token');
  const sliding = opts.slidingWindow ?? true;
  if (promptIds.length > model.contextLength && !sliding) {
    throw new AjarError('context_length_exceeded',
      `the prompt has ${promptIds.length} tokens but the model's context is ${model.contextLength}`);
  }
  const temperature = opts.temperature ?? 1;
  if (!(temperature >= 0)) throw new AjarError('bad_input', `temperature must be >= 0, got ${temperature}`);
  if (opts.topP !== undefined && !(opts.topP > 0 && opts.topP <= 1)) throw new AjarError('bad_input', `top-p must be in (0, 1], got ${opts.topP}`);
  if (opts.topK !== undefined && !(Number.isInteger(opts.topK) && opts.topK >= 0)) throw new AjarError('bad_input', `top-k must be an integer >= 0, got ${opts.topK}`);
  const eos = opts.eosTokenId === undefined ? model.eosTokenId : opts.eosTokenId;
  const stopAtEos = opts.stopAtEos ?? true;
  const rng = new Rng(opts.seed ?? 0);
  const buffer = new StopTextBuffer((opts.stop ?? []).filter((s) => s.length > 0));
  const wasTraining = model.module.training;
  model.module.eval();
  let cache = model.newCache();
  const context = [...promptIds];
  const ids: number[] = [];
  let finishReason: FinishReason = 'length';
  try {
    let row = noGrad(() => lastRow(model.forward(Int32Array.from(promptIds.slice(-model.contextLength)), 1, { cache })));
    for (let step = 0; step < maxNew; step++) {
      if (opts.signal?.aborted) {
        finishReason = 'abort';
        break;
      }
      const id = sampleToken(row, rng, opts, context);
      if (stopAtEos && eos !== null && id === eos) {
        finishReason = 'eos';
        break;
      }
      ids.push(id);
      context.push(id);
      const text = buffer.push(tok.tokenBytes(id));
      yield { id, text };
      if (buffer.stopped) {
        finishReason = 'stop';
        break;
      }
      if (step === maxNew - 1) break;
      if (context.length >= model.contextLength && !sliding) {
        finishReason = 'context';
        break;
      }
      // Let the event loop breathe (a server notices aborts and other requests between tokens).
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (context.length > model.contextLength) {
        // NOTE: a cache cannot slide: GPT-2's learned positions (and RoPE's rotations) of every cached key would
        // shift by one. Each token past the context recomputes the window from a fresh cache, as nanoGPT does.
        cache = model.newCache();
        const window = Int32Array.from(context.slice(-model.contextLength));
        row = noGrad(() => lastRow(model.forward(window, 1, { cache })));
      } else {
        row = noGrad(() => lastRow(model.forward(Int32Array.of(id), 1, { cache })));
      }
    }
    const tail = buffer.finish();
    if (tail) yield { id: null, text: tail };
  } finally {
    model.module.train(wasTraining);
  }
  return { text: buffer.text, ids, finishReason, promptTokens: promptIds.length };
}

/** Generate to completion (no streaming). */
export async function generate(model: CausalLM, tok: TokenSource, promptIds: readonly number[],
  opts: GenerateOptions = {}): Promise<GenerationResult> {
  const it = generateStream(model, tok, promptIds, opts);
  for (;;) {
    const r = await it.next();
    if (r.done) return r.value;
  }
}

/** What an empty prompt starts from: a tokenizer's BOS token, or (no BOS) the first token of a newline. */
export interface StartTokens {
  readonly bosTokenId: number | null;
  encode(text: string): number[];
}

/**
 * The prompt ids of an empty prompt: [BOS] as the server reads an empty prompt (the start of a document); a model
 * without BOS (nanoGPT's character models) starts from "\n", as nanoGPT's sample.py does. Error when neither exists.
 */
export function emptyPromptIds(tok: StartTokens): number[] {
  if (tok.bosTokenId !== null) return [tok.bosTokenId];
  let newline: number[] = [];
  try {
    newline = tok.encode('\n');
  } catch {
    // a vocabulary without "\n": the error below says what to do
  }
  if (newline.length === 0) {
    throw new AjarError('bad_input', 'the prompt is empty and this tokenizer has no BOS token or "\\n" to start from: give a prompt');
  }
  return newline.slice(0, 1);
}
