/**
 * POST /api/v1/query without Express, for the request every panel sends on every refresh.
 * It takes only the ordinary case — authorized, `Content-Type: application/json` in UTF-8,
 * not compressed, a declared length within the body limit — and hands anything else to the
 * Express app untouched (which answers 401, 413, 415 and the rest), so the contract stays
 * defined in one place. Skipping the router, middleware chain and body-parser roughly
 * halves the CPU a cache hit costs, which is what bounds burst latency and throughput.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { queryRequestSchema, type ErrorResponse } from '../contract';
import { isDataException, isUnavailable } from '../db/pools';
import type { AppDeps } from './app';
import { tokenMatches } from './auth';

export const QUERY_PATH = '/api/v1/query';
const BODY_LIMIT_BYTES = 1024 * 1024;

/** Whether this request is one the fast path answers (otherwise Express does). */
export function isOrdinary(req: IncomingMessage, apiToken: string | undefined): boolean {
  if (req.method !== 'POST' || req.url !== QUERY_PATH) return false;
  const length = Number(req.headers['content-length']);
  if (!Number.isInteger(length) || length < 0 || length > BODY_LIMIT_BYTES || req.headers['transfer-encoding']) return false;
  const encoding = req.headers['content-encoding'];
  if (encoding && encoding.toLowerCase() !== 'identity') return false;
  const [type, ...params] = (req.headers['content-type'] ?? '').split(';');
  if (type.trim().toLowerCase() !== 'application/json') return false;
  const charset = params.map((p) => p.trim().toLowerCase()).find((p) => p.startsWith('charset='));
  if (charset && !/^charset="?utf-8"?$/.test(charset)) return false;
  return apiToken === undefined || tokenMatches(req.headers.authorization, apiToken);
}

function send(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}) {
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

export function createQueryFastPath(deps: AppDeps): (req: IncomingMessage, res: ServerResponse) => boolean {
  return (req, res) => {
    if (!isOrdinary(req, deps.apiToken)) return false;
    const header = req.headers['x-request-id'];
    const requestId = typeof header === 'string' && /^[\w-]{1,64}$/.test(header) ? header : randomUUID();
    const started = performance.now();
    let cache: string | undefined;
    let tier: string | undefined;
    res.on('finish', () => {
      deps.metrics.httpRequests.inc({ route: '/v1/query', status: String(res.statusCode) });
      deps.logger.info(
        { reqId: requestId, method: 'POST', path: QUERY_PATH, status: res.statusCode, durationMs: Math.round((performance.now() - started) * 100) / 100, cache, tier },
        'request'
      );
    });
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', async () => {
      const headers = { 'X-Request-Id': requestId };
      let body: unknown = {};
      const text = Buffer.concat(chunks).toString('utf8');
      if (text.length > 0) {
        // As body-parser's strict mode: only an object or array is a JSON body.
        const first = text.trimStart()[0];
        try {
          if (first !== '{' && first !== '[') throw new SyntaxError('not an object');
          body = JSON.parse(text);
        } catch {
          const error: ErrorResponse = { error: 'request body is not valid JSON', details: [{ path: '(body)', message: 'must be a JSON object' }] };
          return send(res, 400, JSON.stringify(error), headers);
        }
      }
      const handlerStarted = performance.now();
      const parsed = queryRequestSchema.safeParse(body);
      if (!parsed.success) {
        const details = parsed.error.issues.slice(0, 20).map((i) => ({ path: i.path.join('.') || '(body)', message: i.message }));
        return send(res, 400, JSON.stringify({ error: `invalid request: ${details[0].path}: ${details[0].message}`, details } satisfies ErrorResponse), headers);
      }
      try {
        const answer = await deps.service.answer(parsed.data);
        cache = answer.cache;
        tier = answer.tiers?.join('+');
        // Time spent in the service, for clients and benchmarks (excludes network and JSON parsing on their side).
        const timing = { ...headers, 'Server-Timing': `app;dur=${(performance.now() - handlerStarted).toFixed(3)}` };
        if (answer.status === 503) {
          return send(res, 503, `{"error":"the database is unavailable; try again shortly",${answer.json.slice(1)}`, timing);
        }
        send(res, answer.status, answer.json, timing);
      } catch (err) {
        if (isDataException(err)) {
          return send(res, 400, JSON.stringify({ error: 'a value in the request cannot be used', details: [{ path: '(body)', message: (err as Error).message }] }), headers);
        }
        if (isUnavailable(err)) return send(res, 503, JSON.stringify({ error: 'the database is unavailable; try again shortly' }), headers);
        deps.logger.error({ reqId: requestId, err: { message: (err as Error).message, code: (err as { code?: string }).code } }, 'request failed');
        send(res, 500, JSON.stringify({ error: 'internal error', requestId }), headers);
      }
    });
    return true;
  };
}
