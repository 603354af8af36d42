/** Bearer-token check for /api/*: constant-time comparison, scheme case-insensitive, token exact. */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';

const digest = (s: string) => createHash('sha256').update(s).digest();

const bearerToken = (header: string | undefined) => /^bearer +(.+)$/i.exec((header ?? '').trim())?.[1] ?? null;

/** A check of Authorization headers against `token` (its digest computed once). */
export function bearerMatcher(token: string): (header: string | undefined) => boolean {
  const expected = digest(token);
  return (header) => {
    const sent = bearerToken(header);
    // Comparing fixed-length digests keeps the time independent of where tokens differ.
    return sent !== null && timingSafeEqual(digest(sent), expected);
  };
}

export function bearerAuth(token: string | undefined): RequestHandler {
  if (!token) {
    return (_req, _res, next) => next();
  }
  const matches = bearerMatcher(token);
  return (req, res, next) => {
    if (matches(req.headers.authorization)) {
      return next();
    }
    res.setHeader('WWW-Authenticate', 'Bearer realm="ruleperf"');
    res.status(401).json({ error: bearerToken(req.headers.authorization) !== null ? 'invalid API token' : 'missing API token: send Authorization: Bearer <token>' });
  };
}
