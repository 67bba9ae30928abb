/**
 * The collector's token. With a token set, ingest needs it as a bearer
 * header, and so do reads (`/api/*`, `/metrics`) unless they were made public
 * explicitly; a browser proves it once, through `POST /api/session`, and
 * then carries an HttpOnly, SameSite=Strict session cookie (which
 * `EventSource` sends too). Without a token every guard is a pass-through,
 * decided once at startup, not an `if` per request.
 *
 * The session cookie is `<expiry>.<HMAC-SHA256 of the expiry, keyed by the
 * token>`: nothing to store, valid across collector restarts, and void as soon
 * as the token changes.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { RequestHandler, Response } from 'express';
import { AuthError } from './errors.ts';

/** Name of the session cookie `POST /api/session` sets. */
export const SESSION_COOKIE = 'hoptrace_session';
/** How long a session lasts at most (the cookie itself ends with the browser session). */
export const SESSION_MAX_AGE_MS = 24 * 60 * 60 * 1000;

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();
const pass: RequestHandler = (_req, _res, next) => next();

/** The value of one cookie of a request, when present. */
function cookie(req: IncomingMessage, name: string): string | undefined {
  const header = req.headers.cookie;
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq !== -1 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

export interface CollectorAuth {
  /** Whether a token is set at all. */
  readonly enabled: boolean;
  /** Guard of `POST /v1/*`: the bearer token. */
  readonly ingest: RequestHandler;
  /** Guard of `/api/*` and `/metrics`: the bearer token or a session cookie; a pass-through with public reads. */
  readonly reads: RequestHandler;
  /**
   * Guard of what moves messages (`POST /api/replay`): the admin token as a bearer header when
   * one is set, else the token (bearer or session, even with public reads); a pass-through when
   * neither is set (replay then refuses by itself).
   */
  readonly admin: RequestHandler;
  /** Whether an admin token is set. */
  readonly hasAdminToken: boolean;
  /** Check a token a person typed in. */
  tokenMatches(candidate: string): boolean;
  /** Set the session cookie on a response (after {@link tokenMatches}). */
  startSession(res: Response, secure: boolean): void;
  /** Clear the session cookie. */
  endSession(res: Response, secure: boolean): void;
}

/** The admin token's guard: its bearer header and nothing else (no session carries it). Undefined without one. */
function adminGuard(adminToken: string | undefined): RequestHandler | undefined {
  if (!adminToken) return undefined;
  const expected = digest(adminToken);
  return (req, _res, next) => {
    const match = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '');
    if (match && timingSafeEqual(digest(match[1].trim()), expected)) return next();
    next(new AuthError(match ? 'the admin token is wrong' : 'replay needs the admin token: "Authorization: Bearer <admin token>" (--admin-token)'));
  };
}

/**
 * The guards for one collector.
 * @param token the token; undefined or empty: no auth anywhere
 * @param publicReads reads open to anyone even with a token
 * @param adminToken the token that guards replay instead of `token`; undefined or empty: `token` does
 */
export function createAuth(token: string | undefined, publicReads: boolean, adminToken?: string): CollectorAuth {
  const admin = adminGuard(adminToken);
  if (!token) {
    return {
      enabled: false,
      ingest: pass,
      reads: pass,
      admin: admin ?? pass,
      hasAdminToken: admin !== undefined,
      tokenMatches: () => true,
      startSession: () => {},
      endSession: () => {},
    };
  }
  const expected = digest(token);
  // Compare digests: equal length, constant time, no length leak.
  const matches = (candidate: string): boolean => timingSafeEqual(digest(candidate), expected);
  const sign = (expiry: string): string => createHmac('sha256', expected).update(`hoptrace-session:${expiry}`).digest('base64url');

  const bearer = (req: IncomingMessage): 'none' | 'ok' | 'wrong' => {
    const match = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '');
    if (!match) return 'none';
    return matches(match[1].trim()) ? 'ok' : 'wrong';
  };
  const session = (req: IncomingMessage): boolean => {
    const value = cookie(req, SESSION_COOKIE);
    if (value === undefined) return false;
    const dot = value.indexOf('.');
    const expiry = value.slice(0, dot);
    if (dot === -1 || !/^\d{1,16}$/.test(expiry) || Number(expiry) < Date.now()) return false;
    const given = Buffer.from(value.slice(dot + 1));
    const wanted = Buffer.from(sign(expiry));
    return given.length === wanted.length && timingSafeEqual(given, wanted);
  };

  const ingest: RequestHandler = (req, _res, next) => {
    const b = bearer(req);
    if (b === 'ok') return next();
    next(
      new AuthError(
        b === 'wrong' ? 'the bearer token is wrong' : 'this collector requires "Authorization: Bearer <token>" (HOPTRACE_TOKEN)',
      ),
    );
  };
  const reads: RequestHandler = publicReads
    ? pass
    : (req, _res, next) => {
        const b = bearer(req);
        if (b === 'ok' || (b === 'none' && session(req))) return next();
        next(
          new AuthError(
            b === 'wrong'
              ? 'the bearer token is wrong'
              : 'this collector requires its token: "Authorization: Bearer <token>", or sign in through the UI (POST /api/session)',
          ),
        );
      };
  const cookieAttributes = (secure: boolean) => `; Path=/; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`;
  const tokenGuard: RequestHandler = (req, _res, next) => {
    const b = bearer(req);
    if (b === 'ok' || (b === 'none' && session(req))) return next();
    next(new AuthError(b === 'wrong' ? 'the bearer token is wrong' : 'replay needs the collector\'s token: "Authorization: Bearer <token>", or sign in through the UI'));
  };
  return {
    enabled: true,
    ingest,
    reads,
    admin: admin ?? tokenGuard,
    hasAdminToken: admin !== undefined,
    tokenMatches: matches,
    startSession(res, secure) {
      const expiry = String(Date.now() + SESSION_MAX_AGE_MS);
      // No Max-Age: the cookie ends with the browser session (and the value itself after a day).
      res.append('set-cookie', `${SESSION_COOKIE}=${expiry}.${sign(expiry)}${cookieAttributes(secure)}`);
    },
    endSession(res, secure) {
      res.append('set-cookie', `${SESSION_COOKIE}=${cookieAttributes(secure)}; Max-Age=0`);
    },
  };
}
