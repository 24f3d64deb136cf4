// Request bodies of /v1/completions and /v1/chat/completions, checked by hand so every 400 names its field
// (`param`) the way OpenAI does. Unknown fields are ignored; known ones this server cannot honour are refused.
import type { ChatMessage } from './chat.js';
import { ServeError } from './errors.js';

export interface SamplingRequest {
  model: string;
  /** Undefined: the endpoint's default (16 for completions, the rest of the context for chat). */
  maxTokens: number | undefined;
  /** Which field set maxTokens, for error messages. */
  maxTokensParam: 'max_tokens' | 'max_completion_tokens';
  temperature: number;
  topP: number | undefined;
  topK: number | undefined;
  seed: number | undefined;
  repetitionPenalty: number | undefined;
  stop: string[];
  stream: boolean;
  includeUsage: boolean;
  user: string | null;
}

export interface CompletionRequest extends SamplingRequest {
  /** Text, or token ids. */
  prompt: string | number[];
}

export interface ChatRequest extends SamplingRequest {
  messages: ChatMessage[];
}

type Body = Record<string, unknown>;

function kind(v: unknown): string {
  if (v === null) return 'null';
  return Array.isArray(v) ? 'an array' : `a ${typeof v}`;
}

function wrongType(param: string, want: string, v: unknown): ServeError {
  return new ServeError('invalid_type', `'${param}' must be ${want}, got ${kind(v)}`, { param });
}

function badValue(param: string, message: string): ServeError {
  return new ServeError('invalid_value', `'${param}' ${message}`, { param });
}

function asBody(body: unknown): Body {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new ServeError('invalid_request', `the request body must be a JSON object, got ${kind(body)}`);
  }
  return body as Body;
}

function present(b: Body, key: string): boolean {
  return b[key] !== undefined && b[key] !== null;
}

function optNumber(b: Body, key: string, lo: number, hi: number, opts: { int?: boolean; loOpen?: boolean } = {}): number | undefined {
  if (!present(b, key)) return undefined;
  const v = b[key];
  if (typeof v !== 'number' || !Number.isFinite(v)) throw wrongType(key, opts.int ? 'an integer' : 'a number', v);
  if (opts.int && !Number.isInteger(v)) throw badValue(key, `must be an integer, got ${v}`);
  if (opts.loOpen ? v <= lo : v < lo) throw badValue(key, `must be ${opts.loOpen ? 'greater than' : 'at least'} ${lo}, got ${v}`);
  if (v > hi) throw badValue(key, `must be at most ${hi}, got ${v}`);
  return v;
}

function optBool(b: Body, key: string): boolean | undefined {
  if (!present(b, key)) return undefined;
  if (typeof b[key] !== 'boolean') throw wrongType(key, 'true or false', b[key]);
  return b[key] as boolean;
}

/** A field this server does not implement is accepted only at its no-op value. */
function refuseUnless(b: Body, key: string, isNoop: (v: unknown) => boolean, what: string): void {
  if (present(b, key) && !isNoop(b[key])) {
    throw new ServeError('unsupported_parameter', `'${key}' is not supported by this server (${what})`, { param: key });
  }
}

const MAX_STOPS = 4;

function parseStop(b: Body): string[] {
  if (!present(b, 'stop')) return [];
  const v = b.stop;
  const list = typeof v === 'string' ? [v] : v;
  if (!Array.isArray(list)) throw wrongType('stop', 'a string or an array of strings', v);
  if (list.length > MAX_STOPS) throw badValue('stop', `may hold at most ${MAX_STOPS} strings, got ${list.length}`);
  list.forEach((s, i) => {
    if (typeof s !== 'string') throw wrongType(`stop[${i}]`, 'a string', s);
    if (s === '') throw badValue(`stop[${i}]`, 'must not be empty');
  });
  return list as string[];
}

function parseCommon(b: Body, completionsField: boolean): SamplingRequest {
  if (!present(b, 'model')) throw new ServeError('missing_parameter', "'model' is required", { param: 'model' });
  if (typeof b.model !== 'string' || b.model === '') throw wrongType('model', 'a non-empty string', b.model);

  refuseUnless(b, 'n', (v) => v === 1, 'only n=1');
  refuseUnless(b, 'best_of', (v) => v === 1, 'only best_of=1');
  refuseUnless(b, 'logprobs', (v) => v === false || v === 0, 'no log probabilities');
  refuseUnless(b, 'top_logprobs', (v) => v === 0, 'no log probabilities');
  refuseUnless(b, 'presence_penalty', (v) => v === 0, 'use repetition_penalty');
  refuseUnless(b, 'frequency_penalty', (v) => v === 0, 'use repetition_penalty');
  refuseUnless(b, 'logit_bias', (v) => typeof v === 'object' && v !== null && Object.keys(v).length === 0, 'no logit bias');

  let maxTokens = optNumber(b, 'max_tokens', 0, Number.MAX_SAFE_INTEGER, { int: true });
  let maxTokensParam: SamplingRequest['maxTokensParam'] = 'max_tokens';
  if (!completionsField) {
    const mct = optNumber(b, 'max_completion_tokens', 0, Number.MAX_SAFE_INTEGER, { int: true });
    if (mct !== undefined) {
      maxTokens = mct;
      maxTokensParam = 'max_completion_tokens';
    }
  }
  const stream = optBool(b, 'stream') ?? false;
  let includeUsage = false;
  if (present(b, 'stream_options')) {
    const so = b.stream_options;
    if (typeof so !== 'object' || so === null || Array.isArray(so)) throw wrongType('stream_options', 'an object', so);
    if (!stream) {
      throw new ServeError('invalid_value', "'stream_options' is only allowed when 'stream' is true", { param: 'stream_options' });
    }
    const iu = (so as Body).include_usage;
    if (iu !== undefined && iu !== null && typeof iu !== 'boolean') {
      throw wrongType('stream_options.include_usage', 'true or false', iu);
    }
    includeUsage = iu === true;
  }
  let user: string | null = null;
  if (present(b, 'user')) {
    if (typeof b.user !== 'string') throw wrongType('user', 'a string', b.user);
    if (b.user.length > 256) throw badValue('user', 'must be at most 256 characters');
    user = b.user;
  }
  let topK = optNumber(b, 'top_k', -1, Number.MAX_SAFE_INTEGER, { int: true });
  if (topK === -1) topK = 0; // vLLM's "no top-k"; ajar's is 0
  const seed = optNumber(b, 'seed', Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, { int: true });
  return {
    model: b.model,
    maxTokens,
    maxTokensParam,
    temperature: optNumber(b, 'temperature', 0, 2) ?? 1,
    topP: optNumber(b, 'top_p', 0, 1, { loOpen: true }),
    topK,
    seed,
    repetitionPenalty: optNumber(b, 'repetition_penalty', 0, 10, { loOpen: true }),
    stop: parseStop(b),
    stream,
    includeUsage,
    user,
  };
}

function isTokenArray(v: unknown): v is number[] {
  return Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'number');
}

/** prompt: a string, an array of one string, token ids, or an array of one array of token ids. */
function parsePrompt(b: Body, vocabSize: number): string | number[] {
  if (!present(b, 'prompt')) throw new ServeError('missing_parameter', "'prompt' is required", { param: 'prompt' });
  let p = b.prompt;
  if (Array.isArray(p) && p.length === 1 && (typeof p[0] === 'string' || Array.isArray(p[0]))) p = p[0];
  if (typeof p === 'string') return p;
  if (Array.isArray(p) && p.length > 0 && (typeof p[0] === 'string' || Array.isArray(p[0]))) {
    throw new ServeError('unsupported_parameter', `'prompt' holds ${p.length} prompts; this server takes one per request`,
      { param: 'prompt' });
  }
  if (Array.isArray(p) && p.length === 0) return '';
  if (!isTokenArray(p)) throw wrongType('prompt', 'a string or an array of token ids', p);
  p.forEach((id, i) => {
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
      throw badValue(`prompt[${i}]`, `must be a token id from 0 to ${vocabSize - 1}, got ${id}`);
    }
  });
  return p;
}

export function parseCompletionRequest(body: unknown, vocabSizeOf: (model: string) => number | undefined): CompletionRequest {
  const b = asBody(body);
  const common = parseCommon(b, true);
  refuseUnless(b, 'echo', (v) => v === false, 'no echo');
  refuseUnless(b, 'suffix', (v) => v === '', 'no suffix');
  // NOTE: an unknown model is reported as model_not_found by the caller; check ids against any vocabulary meanwhile.
  const prompt = parsePrompt(b, vocabSizeOf(common.model) ?? Number.MAX_SAFE_INTEGER);
  return { ...common, prompt };
}

const ROLES = new Set(['system', 'developer', 'user', 'assistant', 'tool']);

function parseContent(v: unknown, param: string): string {
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) {
    return v.map((part, j) => {
      const p = part as { type?: unknown; text?: unknown } | null;
      if (typeof p !== 'object' || p === null) throw wrongType(`${param}[${j}]`, 'a content part object', part);
      if (p.type !== 'text') {
        throw new ServeError('unsupported_parameter', `'${param}[${j}].type' '${String(p.type)}' is not supported: text only`,
          { param: `${param}[${j}].type` });
      }
      if (typeof p.text !== 'string') throw wrongType(`${param}[${j}].text`, 'a string', p.text);
      return p.text;
    }).join('');
  }
  throw wrongType(param, 'a string or an array of text parts', v);
}

export function parseChatRequest(body: unknown): ChatRequest {
  const b = asBody(body);
  const common = parseCommon(b, false);
  refuseUnless(b, 'tools', (v) => Array.isArray(v) && v.length === 0, 'no tool calls');
  refuseUnless(b, 'functions', (v) => Array.isArray(v) && v.length === 0, 'no function calls');
  refuseUnless(b, 'response_format', (v) => (v as { type?: unknown }).type === 'text', 'text responses only');
  if (!present(b, 'messages')) throw new ServeError('missing_parameter', "'messages' is required", { param: 'messages' });
  if (!Array.isArray(b.messages)) throw wrongType('messages', 'an array', b.messages);
  if (b.messages.length === 0) throw badValue('messages', 'must hold at least one message');
  const messages = b.messages.map((m: unknown, i: number): ChatMessage => {
    const param = `messages[${i}]`;
    if (typeof m !== 'object' || m === null || Array.isArray(m)) throw wrongType(param, 'an object', m);
    const msg = m as Body;
    if (typeof msg.role !== 'string') throw wrongType(`${param}.role`, 'a string', msg.role);
    if (!ROLES.has(msg.role)) {
      throw badValue(`${param}.role`, `must be one of ${[...ROLES].join(', ')}, got '${msg.role}'`);
    }
    if (msg.content === undefined || msg.content === null) {
      throw new ServeError('missing_parameter', `'${param}.content' is required`, { param: `${param}.content` });
    }
    const out: ChatMessage = { role: msg.role, content: parseContent(msg.content, `${param}.content`) };
    if (typeof msg.name === 'string') out.name = msg.name;
    return out;
  });
  return { ...common, messages };
}
