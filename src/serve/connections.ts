// Connection control for the listening server: how long a client may take to send a request, how long an idle
// keep-alive connection is kept, and how many connections the server and each client address may hold.
// NOTE: these are Node's own http.Server timeouts (checked every second here instead of Node's 30 s default, so a
// slow sender is cut near the limit, not at twice it); the caps are ours: at the server's cap the oldest idle
// connection gives way to the new one (idle connections cost the attacker nothing and the server a descriptor),
// and at an address's cap the new connection is refused with 429.
import type { Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { errorBody, ServeError, type ServeErrorCode } from './errors.js';

export interface ConnectionLimits {
  /** An idle keep-alive connection is closed after this long, in ms. */
  keepAliveTimeoutMs: number;
  /** A client must have sent the request's headers within this long of connecting (or of its previous response). */
  headersTimeoutMs: number;
  /** ...and the whole request, body included, within this long. */
  receiveTimeoutMs: number;
  /** Open connections the server holds at most. */
  maxConnections: number;
  /** Open connections one client address may hold; 0 for no cap (behind a reverse proxy every client is the proxy). */
  maxConnectionsPerAddress: number;
}

export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = {
  keepAliveTimeoutMs: 5_000,
  headersTimeoutMs: 10_000,
  receiveTimeoutMs: 30_000,
  maxConnections: 1_000,
  maxConnectionsPerAddress: 64,
};

/** How often Node checks the headers and request timeouts (its default is 30 s). */
export const TIMEOUT_CHECK_INTERVAL_MS = 1_000;

/** A raw HTTP/1.1 response with an OpenAI error body, for a socket that has no request object (yet). */
export function rawErrorResponse(code: ServeErrorCode, message?: string, retryAfter?: number): string {
  const e = new ServeError(code, message, { retryAfter });
  const body = JSON.stringify(errorBody(e));
  const reason = { 400: 'Bad Request', 408: 'Request Timeout', 429: 'Too Many Requests', 431: 'Request Header Fields Too Large', 503: 'Service Unavailable' }[e.status] ?? 'Error';
  return `HTTP/1.1 ${e.status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n`
    + `Connection: close\r\n${e.retryAfter !== null ? `Retry-After: ${e.retryAfter}\r\n` : ''}\r\n${body}`;
}

function refuse(socket: Socket, code: ServeErrorCode, message: string): void {
  if (socket.writable) socket.end(rawErrorResponse(code, message, 1));
  // NOTE: a peer that never reads must not keep the descriptor: destroy after a moment whatever happened.
  setTimeout(() => socket.destroy(), 1_000).unref();
}

interface Tracked {
  address: string;
  /** Requests on this connection whose response has not ended. */
  busy: number;
}

/** Counts connections per address, marks them busy or idle, and enforces the caps. */
export class ConnectionGuard {
  private readonly sockets = new Map<Socket, Tracked>(); // insertion order: oldest first
  private readonly perAddress = new Map<string, number>();
  /** Connections refused (per-address cap) and shed (idle, at the server's cap), for metrics. */
  refused = 0;
  shed = 0;

  constructor(private readonly limits: ConnectionLimits) {}

  get open(): number {
    return this.sockets.size;
  }

  /** Wire the guard and the timeouts into a Node http server (before it listens). */
  attach(server: Server): void {
    server.keepAliveTimeout = this.limits.keepAliveTimeoutMs;
    server.headersTimeout = this.limits.headersTimeoutMs;
    server.requestTimeout = this.limits.receiveTimeoutMs;
    server.on('connection', (socket: Socket) => this.admit(socket));
    server.on('request', (req, res: ServerResponse) => {
      const t = this.sockets.get(req.socket);
      if (!t) return;
      t.busy++;
      res.once('close', () => {
        t.busy = Math.max(0, t.busy - 1);
      });
    });
  }

  private admit(socket: Socket): void {
    const address = socket.remoteAddress ?? 'unknown';
    const cap = this.limits.maxConnectionsPerAddress;
    const mine = this.perAddress.get(address) ?? 0;
    if (cap > 0 && mine >= cap) {
      this.refused++;
      refuse(socket, 'too_many_connections',
        `this address holds ${mine} open connections, the server's limit per address; reuse or close some`);
      return;
    }
    if (this.sockets.size >= this.limits.maxConnections && !this.shedIdle()) {
      this.refused++;
      refuse(socket, 'server_busy', 'the server holds as many connections as it may; retry later');
      return;
    }
    this.sockets.set(socket, { address, busy: 0 });
    this.perAddress.set(address, mine + 1);
    socket.once('close', () => {
      this.sockets.delete(socket);
      const n = (this.perAddress.get(address) ?? 1) - 1;
      if (n <= 0) this.perAddress.delete(address);
      else this.perAddress.set(address, n);
    });
  }

  /** Close the oldest idle connection; false when every connection has a request in flight. */
  private shedIdle(): boolean {
    for (const [socket, t] of this.sockets) {
      if (t.busy === 0) {
        this.sockets.delete(socket);
        socket.destroy();
        this.shed++;
        return true;
      }
    }
    return false;
  }

  /** Close every connection with no request in flight (shutdown). */
  closeIdle(): number {
    let n = 0;
    for (const [socket, t] of this.sockets) {
      if (t.busy === 0) {
        socket.destroy();
        n++;
      }
    }
    return n;
  }
}

/** fastify's clientErrorHandler: Node's parser and timeout errors answered in OpenAI's error shape. */
export function clientErrorHandler(limits: ConnectionLimits) {
  return (err: NodeJS.ErrnoException, socket: Socket): void => {
    if (err.code === 'ECONNRESET' || socket.destroyed) return;
    let code: ServeErrorCode = 'invalid_request';
    let message = 'the request is not valid HTTP/1.1';
    if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
      code = 'client_timeout';
      message = `the request was not received in time (headers within ${limits.headersTimeoutMs / 1000} s, the whole `
        + `request within ${limits.receiveTimeoutMs / 1000} s); send it at once`;
    } else if (err.code === 'HPE_HEADER_OVERFLOW') {
      code = 'headers_too_large';
      message = 'the request headers are larger than the server accepts (16 KiB)';
    }
    if (socket.writable) socket.write(rawErrorResponse(code, message));
    socket.destroy();
  };
}
