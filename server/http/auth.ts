/** Bearer-token check for /api/*: constant-time comparison, scheme case-insensitive, token exact. */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Whether an Authorization header carries `token`. */
export function tokenMatches(header: string | undefined, token: string): boolean {
  const match = /^bearer +(.+)$/i.exec((header ?? '').trim());
  // Comparing fixed-length digests keeps the time independent of where tokens differ.
  return match !== null && timingSafeEqual(digest(match[1]), digest(token));
}

export function bearerAuth(token: string | undefined): RequestHandler {
  if (!token) {
    return (_req, _res, next) => next();
  }
  return (req, res, next) => {
    if (tokenMatches(req.headers.authorization, token)) {
      return next();
    }
    const match = /^bearer +(.+)$/i.exec((req.headers.authorization ?? '').trim());
    res.setHeader('WWW-Authenticate', 'Bearer realm="ruleperf"');
    res.status(401).json({ error: match ? 'invalid API token' : 'missing API token: send Authorization: Bearer <token>' });
  };
}
