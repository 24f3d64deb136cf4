// POST /v1/completions and /v1/chat/completions: parse, admit (model, context, quota, tokens per minute), wait
// for the model's queue, generate, and answer as OpenAI does: one JSON object, or server-sent events ending in [DONE].
import { randomBytes, randomInt } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { generateStream, type FinishReason, type GenerationResult } from '../generate/index.js';
import { AjarError } from '../tensor/errors.js';
import { withAdapter } from './adapters.js';
import { errorBody, ServeError, toServeError, type ServeErrorCode } from './errors.js';
import {
  finalizeRequest, journalRequest, setLimitHeaders, type Caller, type ServedModel, type ServerContext,
} from './context.js';
import { parseChatRequest, parseCompletionRequest, type SamplingRequest } from './schemas.js';
import { periodEnd, periodStart } from './time.js';

export type GenerationKind = 'completion' | 'chat';

/** Why a generation's AbortSignal fired: the client went away (nothing more to send), or a Cut. */
const DISCONNECTED = Symbol('client disconnected');

/**
 * The server cut the generation: what it was given (timeout, shutdown, its key revoked), the finish reason its usage
 * record carries and the error the client gets (after the tokens already sent, when streaming).
 */
export class Cut {
  constructor(readonly code: ServeErrorCode, readonly finish: string, readonly message: string,
    readonly retryAfter?: number) {}

  error(): ServeError {
    return new ServeError(this.code, this.message, { retryAfter: this.retryAfter });
  }
}

function timedOut(ctx: ServerContext): Cut {
  return new Cut('request_timeout', 'timeout',
    `generation passed the server's ${Math.round(ctx.limits.requestTimeoutMs / 1000)} s timeout; lower max_tokens`);
}

export const SHUTDOWN_CUT = new Cut('server_closing', 'shutdown',
  'the server shut down before the generation finished; retry on another replica or later', 5);

interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

interface Prepared {
  served: ServedModel;
  promptIds: number[];
  stops: string[];
  sampling: SamplingRequest;
}

/**
 * The served model or adapter `id` as this caller may see it. NOTE: one outside the key's scope gets exactly the
 * error a name that does not exist gets, so a key cannot learn which other models or adapters are served.
 */
export function visibleModel(ctx: ServerContext, caller: Caller, id: string): ServedModel | undefined {
  const served = ctx.models.get(id);
  if (!served) return undefined;
  const allowed = caller.key?.models;
  return allowed && !allowed.includes(id) ? undefined : served;
}

export function modelNotFound(id: string): ServeError {
  return new ServeError('model_not_found', `the model '${id}' does not exist on this server; GET /v1/models lists them`,
    { param: 'model' });
}

function findModel(ctx: ServerContext, caller: Caller, id: string): ServedModel {
  const served = visibleModel(ctx, caller, id);
  if (!served) throw modelNotFound(id);
  return served;
}

function withBos(served: ServedModel, ids: number[], addBos: boolean): number[] {
  const bos = served.tokenizer.bosTokenId;
  return addBos && bos !== null ? [bos, ...ids] : ids;
}

/** The tokens of a prompt; text the tokenizer cannot encode (a character-level vocabulary) is a 400 naming it. */
function encode(served: ServedModel, text: string, param: string): number[] {
  try {
    return served.tokenizer.encode(text);
  } catch (e) {
    if (e instanceof AjarError && e.code === 'unknown_char') {
      throw new ServeError('invalid_value', `'${param}' cannot be encoded by the model's tokenizer: ${e.message}`, { param });
    }
    throw e;
  }
}

function prepare(ctx: ServerContext, caller: Caller, kind: GenerationKind, body: unknown): Prepared {
  if (kind === 'completion') {
    const req = parseCompletionRequest(body, (id) => visibleModel(ctx, caller, id)?.model.vocabSize);
    const served = findModel(ctx, caller, req.model);
    let promptIds: number[];
    if (typeof req.prompt === 'string') {
      promptIds = withBos(served, encode(served, req.prompt, 'prompt'), served.tokenizer.addBos);
    } else {
      promptIds = [...req.prompt];
    }
    if (promptIds.length === 0) {
      // NOTE: OpenAI reads an empty prompt as the start of a document; the BOS token says exactly that.
      const bos = served.tokenizer.bosTokenId;
      if (bos === null) throw new ServeError('invalid_value', "'prompt' is empty", { param: 'prompt' });
      promptIds = [bos];
    }
    return { served, promptIds, stops: req.stop, sampling: req };
  }
  const req = parseChatRequest(body);
  const served = findModel(ctx, caller, req.model);
  const chat = served.chat.render(req.messages);
  const promptIds = withBos(served, encode(served, chat.text, 'messages'), chat.addBos);
  if (promptIds.length === 0) throw new ServeError('invalid_value', "'messages' give an empty prompt", { param: 'messages' });
  return { served, promptIds, stops: [...req.stop, ...chat.stop], sampling: req };
}

/** max_tokens after the context check (400 context_length_exceeded when the request cannot fit). */
function completionBudget(p: Prepared, kind: GenerationKind): number {
  const context = p.served.model.contextLength;
  const n = p.promptIds.length;
  if (n > context) {
    throw new ServeError('context_length_exceeded',
      `this model's maximum context length is ${context} tokens, but the prompt has ${n} tokens; shorten it`,
      { param: kind === 'completion' ? 'prompt' : 'messages' });
  }
  const room = context - n;
  const asked = p.sampling.maxTokens;
  if (asked === undefined) return kind === 'completion' ? Math.min(16, room) : room;
  if (asked > room) {
    throw new ServeError('context_length_exceeded',
      `this model's maximum context length is ${context} tokens, but ${n + asked} were requested (${n} in the prompt, `
      + `${asked} for the completion); lower ${p.sampling.maxTokensParam} to at most ${room} or shorten the prompt`,
      { param: p.sampling.maxTokensParam });
  }
  return asked;
}

interface Admission {
  maxTokens: number;
  /** Give back to the limiter the tokens reserved and not used. */
  refund(used: number): Promise<void>;
  /** End the quota hold, unless the usage record already did (in the same transaction that wrote it). */
  release(recorded: boolean): Promise<void>;
}

/**
 * Check the key's quota (clamping max_tokens to what is left of it) and reserve tokens per minute.
 * NOTE: the quota is held in the store (one transaction), so every process on the same database sees the tokens
 * that requests in flight anywhere may still use, and together they cannot overshoot it.
 */
async function admit(ctx: ServerContext, req: FastifyRequest, caller: Caller, promptTokens: number, maxTokens: number,
  param: string): Promise<Admission> {
  // The quota first (the store), then the request and its tokens per minute together (the limiter).
  let releaseQuota = async (): Promise<void> => {};
  const key = caller.key;
  if (key && key.quotaTokens !== null && key.quotaPeriod !== null) {
    const now = ctx.clock();
    const requestId = String(req.id);
    const { granted, left } = await ctx.store.reserveQuota({
      keyId: key.id, requestId, quota: key.quotaTokens, since: periodStart(key.quotaPeriod, now),
      min: promptTokens + 1, want: promptTokens + maxTokens, now,
      // A hold outlives its request only if its process died; then it lapses after the longest a request may take.
      expiresAt: now + ctx.limits.requestTimeoutMs + 60_000,
    });
    if (granted === 0) {
      const wait = Math.max(1, Math.ceil((periodEnd(key.quotaPeriod, now) - now) / 1000));
      throw new ServeError('insufficient_quota',
        `the key's quota of ${key.quotaTokens} tokens per ${key.quotaPeriod} (UTC) is used up `
        + `(${Math.max(0, left)} left, the prompt alone needs ${promptTokens + 1} with one completion token)`,
        { retryAfter: wait });
    }
    maxTokens = granted - promptTokens;
    releaseQuota = () => ctx.store.releaseQuota(requestId);
  }
  try {
    const r = await ctx.limiter.take(caller.id, caller.limits, { requests: 1, tokens: promptTokens + maxTokens, param });
    return {
      maxTokens,
      refund: (used: number) => r.settle(used),
      // NOTE: never before the record commits: a hold dropped early lets another replica grant the same tokens.
      release: async (recorded: boolean) => {
        if (!recorded) await releaseQuota();
      },
    };
  } catch (e) {
    await releaseQuota();
    throw e;
  }
}

function openaiFinish(r: FinishReason): 'stop' | 'length' {
  return r === 'length' ? 'length' : 'stop';
}

function responseId(kind: GenerationKind): string {
  return `${kind === 'completion' ? 'cmpl' : 'chatcmpl'}-${randomBytes(12).toString('hex')}`;
}

function usageOf(prompt: number, completion: number): Usage {
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}

/** The handler of both generation endpoints. */
export async function handleGeneration(ctx: ServerContext, kind: GenerationKind, req: FastifyRequest,
  reply: FastifyReply): Promise<unknown> {
  const st = req.ajar;
  const caller = st.caller!;
  let p: Prepared;
  let budget: number;
  try {
    p = prepare(ctx, caller, kind, req.body);
    st.model = p.served.id;
    st.user = p.sampling.user;
    budget = completionBudget(p, kind);
  } catch (e) {
    // NOTE: an invalid request still counts as a request per minute (its own error is the answer, not a 429).
    await ctx.limiter.take(caller.id, caller.limits, { requests: 1, tokens: 0 }).catch(() => undefined);
    setLimitHeaders(ctx, reply, caller);
    throw e;
  }
  const admission = await admit(ctx, req, caller, p.promptIds.length, budget, p.sampling.maxTokensParam);
  setLimitHeaders(ctx, reply, caller);
  // NOTE: the refund goes to the limiter as soon as the generation ends, while its usage record is being written:
  // the two round trips (Redis, the store) overlap instead of adding up before the response.
  let refund: Promise<void> | undefined;
  const ended = (): void => {
    if (refund !== undefined) return;
    refund = admission.refund(st.promptTokens + st.completionTokens);
    refund.catch(() => {}); // awaited (and its error thrown) below; this only keeps it from counting as unhandled
  };
  try {
    return await run(ctx, kind, req, reply, p, admission.maxTokens, ended);
  } finally {
    ended();
    await refund;
    await admission.release(st.recorded);
    setLimitHeaders(ctx, reply, caller);
  }
}

async function run(ctx: ServerContext, kind: GenerationKind, req: FastifyRequest, reply: FastifyReply,
  p: Prepared, maxTokens: number, ended: () => void): Promise<unknown> {
  const st = req.ajar;
  const ac = new AbortController();
  // NOTE: the response's 'close' before its end is the client going away; the request's 'close' is not (Node
  // emits it as soon as the body has been read).
  const onClose = (): void => {
    if (!reply.raw.writableEnded) ac.abort(DISCONNECTED);
  };
  reply.raw.on('close', onClose);
  const timer = setTimeout(() => ac.abort(timedOut(ctx)), ctx.limits.requestTimeoutMs);
  // Shutdown and revocation reach the generation through this entry (lifecycle.ts).
  const active = { keyId: st.caller?.keyId ?? null, cut: (c: Cut) => ac.abort(c) };
  ctx.active.add(active);
  try {
    let release: () => void;
    try {
      // One queue per base: its adapters take turns with it and with each other (queue.ts).
      release = await p.served.queue.acquire(ac.signal, p.served.id);
    } catch (e) {
      if (e instanceof Cut && e.code === 'request_timeout') {
        throw new ServeError('queue_timeout',
          `waited ${Math.round(ctx.limits.requestTimeoutMs / 1000)} s in the model's queue; retry later`, { retryAfter: 5 });
      }
      if (e instanceof Cut) throw e.error();
      if (e === DISCONNECTED) {
        st.deferred = true;
        await finalizeRequest(ctx, req, 499);
        reply.hijack();
        return undefined;
      }
      throw e;
    }
    st.deferred = true;
    st.promptTokens = p.promptIds.length;
    // NOTE: the model is free once the last token is out: the usage write that follows must not hold the next
    // request back (a queue held across a database round trip caps a replica at one request per round trip).
    let released = false;
    const free = (): void => {
      if (released) return;
      released = true;
      release();
      ended();
    };
    try {
      // NOTE: drain journals the generation once a second from its first second on (journal.ts), so a crash loses at
      // most its last second, and a request done within a second costs no journal write.
      const s = p.sampling;
      const gen = generateStream(p.served.model, p.served.tokenizer, p.promptIds, {
        maxNewTokens: maxTokens,
        temperature: s.temperature,
        topK: s.topK,
        topP: s.topP,
        repetitionPenalty: s.repetitionPenalty,
        // NOTE: without a seed, sampling should differ between requests as OpenAI's does; greedy ignores it.
        seed: s.seed ?? randomInt(0, 2 ** 31),
        stop: p.stops,
        signal: ac.signal,
      });
      // NOTE: every forward pass of this generation runs in the request's adapter context (adapters.ts), so the
      // base's layers apply this request's adapter and no other request's.
      return await withAdapter(p.served.adapter, async () => (s.stream
        ? streamEvents(ctx, kind, req, reply, p, gen, ac.signal, free)
        : collect(ctx, kind, req, reply, p, gen, ac.signal, free)));
    } finally {
      free();
    }
  } finally {
    clearTimeout(timer);
    reply.raw.off('close', onClose);
    ctx.active.delete(active);
  }
}

type Gen = AsyncGenerator<{ id: number | null; text: string }, GenerationResult, void>;

/** How often a running generation's journal entry is brought up to date, in ms. */
const JOURNAL_EVERY_MS = 1_000;

/**
 * Run a generation to its end, counting completion tokens (journalled at most a second apart); onText sees each
 * non-empty piece of text.
 */
async function drain(ctx: ServerContext, req: FastifyRequest, gen: Gen,
  onText?: (text: string) => void): Promise<GenerationResult> {
  const st = req.ajar;
  let journalled = performance.now();
  for (;;) {
    const r = await gen.next();
    if (r.done) return r.value;
    if (r.value.id !== null) st.completionTokens++;
    if (onText && r.value.text !== '') onText(r.value.text);
    if (performance.now() - journalled >= JOURNAL_EVERY_MS) {
      journalled = performance.now();
      await journalRequest(ctx, req);
    }
  }
}

/** Non-streaming: generate to the end, then one JSON body. */
async function collect(ctx: ServerContext, kind: GenerationKind, req: FastifyRequest, reply: FastifyReply,
  p: Prepared, gen: Gen, signal: AbortSignal, free: () => void): Promise<unknown> {
  const st = req.ajar;
  let result: GenerationResult;
  try {
    result = await drain(ctx, req, gen);
  } catch (e) {
    free();
    const { error } = toServeError(e);
    await finalizeRequest(ctx, req, error.status);
    throw e;
  }
  free();
  st.finishReason = result.finishReason;
  if (signal.reason === DISCONNECTED) {
    await finalizeRequest(ctx, req, 499);
    reply.hijack();
    return undefined;
  }
  if (signal.reason instanceof Cut) {
    const error = signal.reason.error();
    st.finishReason = signal.reason.finish;
    await finalizeRequest(ctx, req, error.status);
    throw error;
  }
  await finalizeRequest(ctx, req, 200);
  const id = responseId(kind);
  const created = Math.floor(ctx.clock() / 1000);
  const usage = usageOf(st.promptTokens, st.completionTokens);
  const finish = openaiFinish(result.finishReason);
  if (kind === 'completion') {
    return {
      id, object: 'text_completion', created, model: p.served.id,
      choices: [{ text: result.text, index: 0, logprobs: null, finish_reason: finish }], usage,
    };
  }
  return {
    id, object: 'chat.completion', created, model: p.served.id,
    choices: [{ index: 0, message: { role: 'assistant', content: result.text, refusal: null }, logprobs: null, finish_reason: finish }],
    usage,
  };
}

/** Streaming: server-sent events, one per text piece, then the finish, the usage if asked, and [DONE]. */
async function streamEvents(ctx: ServerContext, kind: GenerationKind, req: FastifyRequest, reply: FastifyReply,
  p: Prepared, gen: Gen, signal: AbortSignal, free: () => void): Promise<undefined> {
  const st = req.ajar;
  const raw = reply.raw;
  reply.hijack();
  raw.writeHead(200, {
    ...(reply.getHeaders() as Record<string, string>),
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    'x-accel-buffering': 'no',
  });
  const send = (data: unknown): void => {
    if (!raw.writableEnded && !raw.destroyed) raw.write(`data: ${JSON.stringify(data)}\n\n`);
  };
  const id = responseId(kind);
  const created = Math.floor(ctx.clock() / 1000);
  const object = kind === 'completion' ? 'text_completion' : 'chat.completion.chunk';
  const extra = p.sampling.includeUsage ? { usage: null } : {};
  const chunk = (text: string | null, finish: string | null, role = false): unknown => {
    const choice = kind === 'completion'
      ? { text: text ?? '', index: 0, logprobs: null, finish_reason: finish }
      : {
        index: 0,
        delta: finish !== null ? {} : role ? { role: 'assistant', content: '' } : { content: text },
        logprobs: null,
        finish_reason: finish,
      };
    return { id, object, created, model: p.served.id, choices: [choice], ...extra };
  };

  if (kind === 'chat') send(chunk(null, null, true));
  let result: GenerationResult | undefined;
  let failure: ServeError | undefined;
  try {
    result = await drain(ctx, req, gen, (text) => send(chunk(text, null)));
  } catch (e) {
    const converted = toServeError(e);
    if (converted.internal) req.log.error({ code: 'generation_failed', message: (e as Error).message }, 'generation failed');
    failure = converted.error;
  }
  free();
  st.finishReason = result?.finishReason ?? null;
  if (signal.reason === DISCONNECTED) {
    await finalizeRequest(ctx, req, 499);
    raw.destroy();
    return undefined;
  }
  if (signal.reason instanceof Cut && failure === undefined) {
    st.finishReason = signal.reason.finish;
    failure = signal.reason.error();
  }
  if (failure !== undefined) {
    await finalizeRequest(ctx, req, failure.status);
    send(errorBody(failure));
  } else {
    // NOTE: the usage record is written before [DONE], so a client that has read [DONE] finds it in the store.
    await finalizeRequest(ctx, req, 200);
    send(chunk(null, openaiFinish(result!.finishReason)));
    if (p.sampling.includeUsage) {
      send({ id, object, created, model: p.served.id, choices: [], usage: usageOf(st.promptTokens, st.completionTokens) });
    }
  }
  if (!raw.writableEnded && !raw.destroyed) raw.end('data: [DONE]\n\n');
  return undefined;
}
