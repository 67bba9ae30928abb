/**
 * Optional bearer-token check. With no token configured the middleware is a
 * pass-through decided once at startup, not an `if` per request.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { AuthError } from '../src/errors.ts';

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/** Middleware requiring `Authorization: Bearer <token>`; a no-op when `token` is undefined or empty. */
export function bearerAuth(token: string | undefined): RequestHandler {
  if (!token) return (_req, _res, next) => next();
  const expected = digest(token);
  return (req, _res, next) => {
    const header = req.headers.authorization ?? '';
    const match = /^Bearer\s+(.+)$/i.exec(header);
    if (!match) {
      next(new AuthError('this collector requires "Authorization: Bearer <token>" (HOPTRACE_TOKEN)'));
      return;
    }
    // Compare digests: equal length, constant time, no length leak.
    if (!timingSafeEqual(digest(match[1].trim()), expected)) {
      next(new AuthError('the bearer token is wrong'));
      return;
    }
    next();
  };
}
