/**
 * What the Express app and the query fast path answer alike: request ids, the request
 * log line, validation errors, the query response body and the errors a query can end in.
 * Kept here once so the two paths cannot drift apart.
 */
import { randomUUID } from 'node:crypto';
import type { ZodError } from 'zod/v4';
import type { ErrorResponse } from '../contract';
import { isDataException, isUnavailable } from '../db/pools';
import type { AppDeps } from './app';

/** The client's X-Request-Id when it is a plain token, a fresh one otherwise. */
export function requestIdFrom(header: string | string[] | undefined): string {
  return typeof header === 'string' && /^[\w-]{1,64}$/.test(header) ? header : randomUUID();
}

/** Counts the request and logs its line: id, duration, cache status and tier, never headers (tokens). */
export function recordRequest(
  deps: Pick<AppDeps, 'metrics' | 'logger'>,
  r: { route: string; reqId: string; method: string; path: string; status: number; started: number; cache?: string; tier?: string; log?: boolean }
) {
  deps.metrics.httpRequests.inc({ route: r.route, status: String(r.status) });
  if (r.log === false) return;
  deps.logger.info(
    { reqId: r.reqId, method: r.method, path: r.path, status: r.status, durationMs: Math.round((performance.now() - r.started) * 100) / 100, cache: r.cache, tier: r.tier },
    'request'
  );
}

export function zodDetails(err: ZodError): NonNullable<ErrorResponse['details']> {
  return err.issues.slice(0, 20).map((i) => ({ path: i.path.map(String).join('.') || '(body)', message: i.message }));
}

/** A 400 body naming the first invalid field (and up to 20). */
export function invalidRequest(err: ZodError): ErrorResponse {
  const details = zodDetails(err);
  return { error: `invalid request: ${details[0].path}: ${details[0].message}`, details };
}

export const NOT_JSON: ErrorResponse = { error: 'request body is not valid JSON', details: [{ path: '(body)', message: 'must be a JSON object' }] };

/** Headers of a query answer: when every query was refused for a transient reason (busy, unavailable), when to retry. */
export function queryHeaders(answer: { retryAfter?: number }): Record<string, string> {
  return answer.retryAfter ? { 'Retry-After': String(answer.retryAfter) } : {};
}

/** The status and body for an error a query (or any route) ended in; a 500 is logged. */
export function errorResponse(deps: Pick<AppDeps, 'logger'>, err: Error, reqId: string): { status: number; body: ErrorResponse & { requestId?: string } } {
  if (isDataException(err)) {
    // PostgreSQL rejected a value (data exception): the client's input, not our fault.
    return { status: 400, body: { error: 'a value in the request cannot be used', details: [{ path: '(body)', message: err.message }] } };
  }
  if (isUnavailable(err)) return { status: 503, body: { error: 'the database is unavailable; try again shortly' } };
  deps.logger.error({ reqId, err: { message: err.message, code: (err as { code?: string }).code } }, 'request failed');
  return { status: 500, body: { error: 'internal error', requestId: reqId } };
}
