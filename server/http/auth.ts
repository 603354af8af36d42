/**
 * Bearer tokens for /api/*: API_TOKEN may read (queries, variables, cache stats),
 * API_ADMIN_TOKEN may also change state (invalidate). Constant-time comparison, scheme
 * case-insensitive, token exact. With no token set, every caller may do everything (the
 * configuration allows that only on a loopback address, or when ALLOW_UNAUTHENTICATED=true).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { closeAfterAnswer } from './closing';

export type Role = 'read' | 'admin';

export interface Tokens {
  read?: string;
  admin?: string;
}

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

/**
 * The role an Authorization header grants: `admin` for the admin token (or anyone when no
 * token is set), `read` for the read token (or anyone when only the admin token is set),
 * `null` when a token is needed and this one is missing or wrong.
 */
export function roleOf(tokens: Tokens): (header: string | undefined) => Role | null {
  const isAdmin = tokens.admin ? bearerMatcher(tokens.admin) : null;
  const isReader = tokens.read ? bearerMatcher(tokens.read) : null;
  if (!isAdmin && !isReader) {
    return () => 'admin';
  }
  return (header) => {
    if (isAdmin?.(header)) {
      return 'admin';
    }
    if (!isReader || isReader(header)) {
      return 'read';
    }
    return null;
  };
}

/** Whether the header carries one of the configured tokens (false when none is configured). */
export function carriesToken(tokens: Tokens): (header: string | undefined) => boolean {
  const checks = [tokens.read, tokens.admin].filter((t): t is string => !!t).map(bearerMatcher);
  return (header) => checks.some((matches) => matches(header));
}

function refuse401(res: Parameters<RequestHandler>[1], header: string | undefined) {
  closeAfterAnswer(res);
  res.setHeader('WWW-Authenticate', 'Bearer realm="ruleperf"');
  res.status(401).json({
    error:
      bearerToken(header) !== null
        ? 'invalid API token'
        : header
          ? 'the Authorization header is not a bearer token: send Authorization: Bearer <token>'
          : 'missing API token: send Authorization: Bearer <token>',
  });
}

/** Lets through callers with at least `needed`; 401 without a valid token, 403 when the token may only read. */
export function requireRole(tokens: Tokens, needed: Role): RequestHandler {
  const role = roleOf(tokens);
  return (req, res, next) => {
    const granted = role(req.headers.authorization);
    if (granted === 'admin' || (granted === 'read' && needed === 'read')) {
      return next();
    }
    if (granted === null) {
      return refuse401(res, req.headers.authorization);
    }
    closeAfterAnswer(res);
    if (!tokens.admin) {
      // Tokens are in use but there is no admin token: nobody may change state over HTTP.
      return res.status(403).json({
        error:
          'this endpoint needs the admin token, and the service has none (API_TOKEN is set, API_ADMIN_TOKEN is not): set API_ADMIN_TOKEN on the service and send it as the Bearer token',
      });
    }
    // Reads are open (no API_TOKEN), so "read" here means no admin token was sent.
    if (!tokens.read) {
      return refuse401(res, req.headers.authorization);
    }
    res.status(403).json({ error: 'this token may only read: this endpoint needs the admin token (API_ADMIN_TOKEN)' });
  };
}
