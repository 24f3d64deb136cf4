// The server's error catalog: every error a client can see has one stable code here, mapped to an HTTP status
// and an OpenAI error `type`. Responses carry OpenAI's body {"error": {message, type, param, code}}.
import { AjarError } from '../tensor/errors.js';

/** OpenAI's error types, plus its quota type (OpenAI sends `insufficient_quota` as both type and code). */
export type OpenAIErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'permission_error'
  | 'rate_limit_error'
  | 'insufficient_quota'
  | 'server_error';

interface CatalogEntry {
  status: number;
  type: OpenAIErrorType;
  /** Used when the thrower gives no message. */
  message: string;
}

/** NOTE: codes are a public contract (clients switch on them); add new ones, never rename. */
export const ERROR_CATALOG = {
  // 400: the request is wrong; `param` names the field.
  invalid_json: { status: 400, type: 'invalid_request_error', message: 'the request body is not valid JSON' },
  invalid_request: { status: 400, type: 'invalid_request_error', message: 'the request is malformed' },
  missing_parameter: { status: 400, type: 'invalid_request_error', message: 'a required parameter is missing' },
  invalid_type: { status: 400, type: 'invalid_request_error', message: 'a parameter has the wrong type' },
  invalid_value: { status: 400, type: 'invalid_request_error', message: 'a parameter has an invalid value' },
  unsupported_parameter: { status: 400, type: 'invalid_request_error', message: 'a parameter is not supported by this server' },
  context_length_exceeded: { status: 400, type: 'invalid_request_error', message: 'the request does not fit the model\'s context' },
  invalid_messages: { status: 400, type: 'invalid_request_error', message: 'the chat template rejected the messages' },
  api_key_in_url: { status: 400, type: 'invalid_request_error', message: 'an API key in the URL is refused (URLs end up in logs); send the header "Authorization: Bearer ajar_sk_..."' },
  unknown_model_in_scope: { status: 400, type: 'invalid_request_error', message: 'the scope names a model this server does not serve' },
  // 401 / 403: who you are and what you may use.
  missing_api_key: { status: 401, type: 'authentication_error', message: 'no API key: send the header "Authorization: Bearer ajar_sk_..."' },
  invalid_api_key: { status: 401, type: 'authentication_error', message: 'the API key is not valid' },
  key_revoked: { status: 401, type: 'authentication_error', message: 'the API key has been revoked' },
  key_expired: { status: 401, type: 'authentication_error', message: 'the API key has expired' },
  invalid_admin_token: { status: 401, type: 'authentication_error', message: 'the admin token is missing or wrong' },
  not_signed_in: { status: 401, type: 'authentication_error', message: 'not signed in to the dashboard: sign in at /ui/login' },
  csrf_rejected: { status: 403, type: 'permission_error', message: 'refused: a state-changing dashboard request must come from the dashboard itself with its CSRF token' },
  model_not_allowed: { status: 403, type: 'permission_error', message: 'this API key may not use that model' },
  admin_disabled: { status: 403, type: 'permission_error', message: 'admin endpoints are off: start the server with --admin-token-file or AJAR_ADMIN_TOKEN' },
  // 404 / 408 / 413 / 415 / 431
  client_timeout: { status: 408, type: 'invalid_request_error', message: 'the request was not received in time' },
  headers_too_large: { status: 431, type: 'invalid_request_error', message: 'the request headers are too large' },
  not_found: { status: 404, type: 'invalid_request_error', message: 'no such endpoint' },
  model_not_found: { status: 404, type: 'invalid_request_error', message: 'no such model on this server' },
  key_not_found: { status: 404, type: 'invalid_request_error', message: 'no API key with that id' },
  body_too_large: { status: 413, type: 'invalid_request_error', message: 'the request body is too large' },
  unsupported_media_type: { status: 415, type: 'invalid_request_error', message: 'send the body as JSON with "Content-Type: application/json"' },
  // 429: limits; Retry-After says when to come back.
  requests_per_minute_exceeded: { status: 429, type: 'rate_limit_error', message: 'too many requests per minute for this key' },
  tokens_per_minute_exceeded: { status: 429, type: 'rate_limit_error', message: 'too many tokens per minute for this key' },
  request_too_large: { status: 429, type: 'rate_limit_error', message: 'this request needs more tokens than the key may use in a minute' },
  too_many_connections: { status: 429, type: 'rate_limit_error', message: 'too many open connections from this address' },
  too_many_auth_failures: { status: 429, type: 'rate_limit_error', message: 'too many failed authentications from this address; wait before retrying' },
  insufficient_quota: { status: 429, type: 'insufficient_quota', message: 'the key\'s token quota for this period is used up' },
  // 5xx: the server's side.
  internal_error: { status: 500, type: 'server_error', message: 'internal server error' },
  queue_full: { status: 503, type: 'server_error', message: 'the model\'s request queue is full; retry later' },
  queue_timeout: { status: 503, type: 'server_error', message: 'the request timed out waiting in the model\'s queue; retry later' },
  limiter_unavailable: { status: 503, type: 'server_error', message: 'the shared rate limiter cannot be reached; retry shortly' },
  server_busy: { status: 503, type: 'server_error', message: 'the server holds as many connections as it may; retry later' },
  server_closing: { status: 503, type: 'server_error', message: 'the server is shutting down' },
  request_timeout: { status: 504, type: 'server_error', message: 'the request took longer than the server\'s timeout' },
} as const satisfies Record<string, CatalogEntry>;

export type ServeErrorCode = keyof typeof ERROR_CATALOG;

export interface ServeErrorOptions {
  /** The request field at fault, as OpenAI names it (`max_tokens`, `messages[1].content`). */
  param?: string;
  /** Seconds until a retry can succeed; sent as Retry-After. */
  retryAfter?: number;
}

/** An error with a catalog code; the server's error handler turns it into a response. */
export class ServeError extends AjarError {
  readonly param: string | null;
  readonly retryAfter: number | null;
  constructor(code: ServeErrorCode, message?: string, opts: ServeErrorOptions = {}) {
    super(code, message ?? ERROR_CATALOG[code].message);
    this.name = 'ServeError';
    this.param = opts.param ?? null;
    this.retryAfter = opts.retryAfter ?? null;
  }

  get status(): number {
    return ERROR_CATALOG[this.code as ServeErrorCode].status;
  }
}

export interface OpenAIErrorBody {
  error: { message: string; type: OpenAIErrorType; param: string | null; code: string };
}

export function errorBody(e: ServeError): OpenAIErrorBody {
  const entry = ERROR_CATALOG[e.code as ServeErrorCode];
  return { error: { message: e.message, type: entry.type, param: e.param, code: e.code } };
}

/** Library AjarErrors a request can legitimately cause, and the catalog code each becomes. */
const LIBRARY_CODES: Record<string, ServeErrorCode> = {
  context_length_exceeded: 'context_length_exceeded',
  bad_input: 'invalid_value',
  unknown_char: 'invalid_value',
};

/** Fastify's own errors (FST_ERR_*) that a client causes. */
const FASTIFY_CODES: Record<string, ServeErrorCode> = {
  FST_ERR_CTP_INVALID_JSON_BODY: 'invalid_json',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'invalid_json',
  FST_ERR_CTP_BODY_TOO_LARGE: 'body_too_large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'invalid_request',
};

/**
 * Any thrown value -> a ServeError safe to show. Unknown errors become internal_error with a generic message:
 * their text may hold paths or internals, so it goes to the log (message only, no stack), never to the client.
 */
export function toServeError(e: unknown, bodyLimit?: number): { error: ServeError; internal: boolean } {
  if (e instanceof ServeError) return { error: e, internal: false };
  if (e instanceof AjarError && LIBRARY_CODES[e.code]) {
    return { error: new ServeError(LIBRARY_CODES[e.code], e.message), internal: false };
  }
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && FASTIFY_CODES[code]) {
    const mapped = FASTIFY_CODES[code];
    const message = mapped === 'body_too_large' && bodyLimit !== undefined
      ? `the request body is larger than the server's limit of ${bodyLimit} bytes`
      : undefined;
    return { error: new ServeError(mapped, message), internal: false };
  }
  const status = (e as { statusCode?: unknown } | null)?.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return { error: new ServeError('invalid_request'), internal: false };
  }
  return { error: new ServeError('internal_error'), internal: true };
}
