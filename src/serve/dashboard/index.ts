// The web dashboard's server side: /ui routes mounted on the server's app (app.ts), sessions and CSRF.
export { CONTENT_SECURITY_POLICY, dashboardRoutes } from './routes.js';
export { PAGES, type PageName } from './pages.js';
export {
  clearedCookie, CSRF_FIELD, CSRF_HEADER, csrfMatches, DEFAULT_SESSION_LIMITS, parseCookies, sameOrigin, SESSION_COOKIE,
  sessionCookie, SessionStore, type Session, type SessionLimits,
} from './session.js';
export type { DashboardOptions, DashboardSources, PlanRequest, RunChunk, RunSource, RunSummary } from './types.js';
