/** Bearer-token check for /api/*: constant-time comparison, scheme case-insensitive, token exact. */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';

const digest = (s: string) => createHash('sha256').update(s).digest();

export function bearerAuth(token: string | undefined): RequestHandler {
  if (!token) {
    return (_req, _res, next) => next();
  }
  const expected = digest(token);
  return (req, res, next) => {
    const header = req.headers.authorization ?? '';
    const match = /^bearer +(.+)$/i.exec(header.trim());
    // Comparing fixed-length digests keeps the time independent of where tokens differ.
    if (match && timingSafeEqual(digest(match[1]), expected)) {
      return next();
    }
    res.setHeader('WWW-Authenticate', 'Bearer realm="ruleperf"');
    res.status(401).json({ error: match ? 'invalid API token' : 'missing API token: send Authorization: Bearer <token>' });
  };
}
