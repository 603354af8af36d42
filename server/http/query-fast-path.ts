/**
 * POST /api/v1/query without Express, for the request every panel sends on every refresh.
 * It takes only the ordinary case — authorized, `Content-Type: application/json` in UTF-8,
 * not compressed, a declared length within the body limit — and hands anything else to the
 * Express app untouched (which answers 401, 413, 415 and the rest), so the contract stays
 * defined in one place. Skipping the router, middleware chain and body-parser roughly
 * halves the CPU a cache hit costs, which is what bounds burst latency and throughput.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AppDeps } from './app';
import { roleOf, type Tokens } from './auth';
import { queryRequestSchema } from './validation';
import { errorResponse, invalidRequest, NOT_JSON, queryHeaders, recordRequest, requestIdFrom, unsupportedMedia } from './responses';

export const QUERY_PATH = '/api/v1/query';
const BODY_LIMIT_BYTES = 1024 * 1024;

/** Whether this request is one the fast path answers (otherwise Express does). */
export function isOrdinary(req: IncomingMessage, authorized: (header: string | undefined) => boolean): boolean {
  if (req.method !== 'POST' || req.url !== QUERY_PATH) return false;
  const length = Number(req.headers['content-length']);
  if (!Number.isInteger(length) || length < 0 || length > BODY_LIMIT_BYTES || req.headers['transfer-encoding']) return false;
  if (unsupportedMedia(req.headers) !== null) return false;
  return authorized(req.headers.authorization);
}

function send(res: ServerResponse, status: number, body: string, headers: Record<string, string>) {
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

/** Who may take the fast path: whoever may read (the others get Express's 401). */
export function authorizationCheck(tokens: Tokens): (header: string | undefined) => boolean {
  const role = roleOf(tokens);
  return (header) => role(header) !== null;
}

export function createQueryFastPath(deps: AppDeps): (req: IncomingMessage, res: ServerResponse) => boolean {
  const authorized = authorizationCheck(deps.security.tokens);
  return (req, res) => {
    if (!isOrdinary(req, authorized)) return false;
    const reqId = requestIdFrom(req.headers['x-request-id']);
    const headers = { 'X-Request-Id': reqId };
    const started = performance.now();
    let cache: string | undefined;
    let tier: string | undefined;
    res.on('finish', () => recordRequest(deps, { route: QUERY_PATH, reqId, method: 'POST', path: QUERY_PATH, status: res.statusCode, started, cache, tier }));
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', async () => {
      let body: unknown = {};
      const text = Buffer.concat(chunks).toString('utf8');
      if (text.length > 0) {
        // As body-parser's strict mode: only an object or array is a JSON body.
        const first = text.trimStart()[0];
        try {
          if (first !== '{' && first !== '[') throw new SyntaxError('not an object');
          body = JSON.parse(text);
        } catch {
          return send(res, 400, JSON.stringify(NOT_JSON), headers);
        }
      }
      const handlerStarted = performance.now();
      const parsed = queryRequestSchema.safeParse(body);
      if (!parsed.success) return send(res, 400, JSON.stringify(invalidRequest(parsed.error)), headers);
      try {
        const answer = await deps.service.answer(parsed.data);
        cache = answer.cache;
        tier = answer.tiers?.join('+');
        // Time spent in the service, for clients and benchmarks (excludes network and JSON parsing on their side).
        send(res, answer.status, answer.json, { ...headers, ...queryHeaders(answer), 'Server-Timing': `app;dur=${(performance.now() - handlerStarted).toFixed(3)}` });
      } catch (err) {
        const { status, body: error } = errorResponse(deps, err as Error, reqId);
        send(res, status, JSON.stringify(error), headers);
      }
    });
    return true;
  };
}
