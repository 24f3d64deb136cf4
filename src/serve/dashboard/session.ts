// Dashboard sessions and CSRF: a signed-in browser holds a random 128-bit session id in an HttpOnly, SameSite=Strict
// cookie; every state-changing request must come from our own origin and carry the session's CSRF token.
// Pure logic (no fastify), so the rules are tested without a browser.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export const SESSION_COOKIE = 'ajar_session';
/** The header and the form field that carry the CSRF token. */
export const CSRF_HEADER = 'x-csrf-token';
export const CSRF_FIELD = 'csrf';

export interface SessionLimits {
  /** A session unused this long ends (ms). */
  idleMs: number;
  /** A session ends this long after sign-in, used or not (ms). */
  maxAgeMs: number;
  /** Sessions kept at most; the oldest ends first. */
  maxSessions: number;
}

export const DEFAULT_SESSION_LIMITS: SessionLimits = {
  idleMs: 30 * 60_000, // 30 minutes
  maxAgeMs: 8 * 3_600_000, // a working day
  maxSessions: 1_000,
};

export interface Session {
  /** The token forms and fetch calls must send back (X-CSRF-Token or the form field `csrf`). */
  csrf: string;
  createdAt: number;
  lastSeen: number;
}

/** SHA-256 of a secret, the form it is kept and compared in (equal lengths for timingSafeEqual; nothing to leak). */
function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

/** The sessions of one server process, by the digest of their id (a restart signs everyone out). */
export class SessionStore {
  private readonly sessions = new Map<string, Session>();

  constructor(private readonly clock: () => number, readonly limits: SessionLimits = DEFAULT_SESSION_LIMITS) {}

  /** A new session with a fresh random id (never reused: sign-in always starts a new one). Returns the cookie value. */
  create(): { id: string; session: Session } {
    this.sweep();
    while (this.sessions.size >= this.limits.maxSessions) this.sessions.delete(this.sessions.keys().next().value!);
    const id = randomBytes(16).toString('base64url'); // 128 bits
    const now = this.clock();
    const session: Session = { csrf: randomBytes(32).toString('base64url'), createdAt: now, lastSeen: now };
    this.sessions.set(digest(id).toString('hex'), session);
    return { id, session };
  }

  /** The live session of a cookie value (its idle time restarts), or undefined. */
  get(id: string | undefined): Session | undefined {
    if (id === undefined || !/^[A-Za-z0-9_-]{22}$/.test(id)) return undefined;
    const key = digest(id).toString('hex');
    const s = this.sessions.get(key);
    if (!s) return undefined;
    const now = this.clock();
    if (this.expired(s, now)) {
      this.sessions.delete(key);
      return undefined;
    }
    s.lastSeen = now;
    return s;
  }

  destroy(id: string | undefined): void {
    if (id !== undefined) this.sessions.delete(digest(id).toString('hex'));
  }

  get size(): number {
    return this.sessions.size;
  }

  private expired(s: Session, now: number): boolean {
    return now - s.lastSeen >= this.limits.idleMs || now - s.createdAt >= this.limits.maxAgeMs;
  }

  private sweep(): void {
    const now = this.clock();
    for (const [k, s] of this.sessions) if (this.expired(s, now)) this.sessions.delete(k);
  }
}

/** Whether the presented CSRF token is the session's (constant time). */
export function csrfMatches(session: Session, presented: unknown): boolean {
  return typeof presented === 'string' && presented !== '' && timingSafeEqual(digest(presented), digest(session.csrf));
}

/** Cookie header -> name/value pairs (the first of a repeated name wins, as browsers send the most specific first). */
export function parseCookies(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (header === undefined) return out;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim();
    if (name !== '' && !(name in out)) out[name] = part.slice(eq + 1).trim();
  }
  return out;
}

/** The Set-Cookie value of a session; Secure when the dashboard is reached over HTTPS. */
export function sessionCookie(id: string, maxAgeMs: number, secure: boolean): string {
  return `${SESSION_COOKIE}=${id}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=${Math.floor(maxAgeMs / 1000)}`
    + (secure ? '; Secure' : '');
}

/** The Set-Cookie value that removes the session cookie. */
export function clearedCookie(secure: boolean): string {
  return `${SESSION_COOKIE}=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0${secure ? '; Secure' : ''}`;
}

export interface OriginHeaders {
  host?: string;
  origin?: string;
  'sec-fetch-site'?: string;
}

/**
 * Whether a state-changing request may come from where it says it comes from: a browser's Sec-Fetch-Site must be
 * same-origin (or none: typed by the user), and an Origin header must be this server's own. NOTE: a page on another
 * port of the same host is same-site, so SameSite=Strict still sends it our cookie; this check and the CSRF token
 * are what refuse it.
 */
export function sameOrigin(h: OriginHeaders, scheme: string): boolean {
  const site = h['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return false;
  if (h.origin !== undefined) {
    if (h.host === undefined || h.origin !== `${scheme}://${h.host}`) return false;
  }
  return true;
}
