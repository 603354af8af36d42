/**
 * The HTTP surface: routes, body limits, auth by role, JSON errors. Bad input is a
 * 400/401/403/404/405/413/415/429 with {error, details?}; never a stack trace, never a 500
 * for what a client sent.
 */
import { BODY_LIMIT_BYTES, BODY_PIECES_MAX, BodyBudget, SLOW_BODY_MS } from './body-budget';
import { UnsentAnswers, type SendLimits } from './unsent';
import { PIPELINED_BUSY, PipelineLimit } from './pipelining';
import { jsonBodyOf, parseInvalidateRequest, parseQueryRequest, shapeRefusal, turnToParse } from './body-shape';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { z } from 'zod/v4';
import {
  VARIABLE_NAMES,
  type ErrorResponse,
  type InvalidateRequest,
  type ReadyResponse,
  type VariableName,
} from '../contract';
import type { HeldList } from './variables';
import { carriesToken, requireRole } from './auth';
import { closeAfterAnswer, closeIfBodyUnread, sendsBody } from './closing';
import type { QueryService } from '../query/service';
import type { Metrics } from '../observability/metrics';
import { CacheUnavailable } from '../cache/store';
import { createQueryFastPath, QUERY_PATH } from './query-fast-path';
import { renderedAtMost } from './rendered-at-most';
import { acceptsGzip, forClientLater, forClientNow } from './compression';
import { clientGone } from './client-gone';
import {
  errorResponse,
  NOT_JSON,
  notJsonObject,
  notUtf8,
  queryHeaderList,
  recordRequest,
  requestIdFrom,
  unsupportedMedia,
} from './responses';
import { IntervalLimiter } from './rate-limit';
import type { SecuritySettings } from './security';

export interface CacheControl {
  invalidate(target: InvalidateRequest): Promise<void>;
  stats(): Promise<Record<string, unknown>>;
  state(): 'up' | 'degraded' | 'disabled';
}

export interface AppDeps {
  service: QueryService;
  cache: CacheControl;
  /** A dashboard variable's values (variables.ts VariableLists). */
  variables: (name: VariableName) => Promise<HeldList>;
  /** Readiness; the app adds the security warnings. */
  ready: () => Promise<ReadyResponse>;
  metrics: Metrics;
  logger: Logger;
  security: SecuritySettings;
  /** Answers waiting for their clients to read them: the limit and the send timeout (http/unsent.ts). */
  sending: SendLimits;
}

/** The body limit, as body-parser reads it (BODY_LIMIT_BYTES in bytes). */
export const BODY_LIMIT = `${BODY_LIMIT_BYTES / (1024 * 1024)}mb`;

/** Every route and the methods it answers (GET routes answer HEAD too); other methods get a 405. */
export const ROUTES: Record<string, readonly string[]> = {
  '/healthz': ['GET', 'HEAD'],
  '/readyz': ['GET', 'HEAD'],
  '/metrics': ['GET', 'HEAD'],
  '/api/v1/query': ['POST'],
  '/api/v1/variables/:name': ['GET', 'HEAD'],
  '/api/v1/invalidate': ['POST'],
  '/api/v1/cache/stats': ['GET', 'HEAD'],
};

const NOT_FOUND = {
  error: 'not found',
  routes: Object.entries(ROUTES).map(([path, methods]) => `${methods[0]} ${path}`),
};

/** /metrics and the cache stats render at most this many times a second; more requests share the last rendering. */
export const SCRAPES_RENDERED_PER_SECOND = 10;

const WITHHELD_WARNINGS =
  'this service reports security warnings; call /readyz with the API token to read them (they are also in its log)';

/** A body nested deeper, or with more object members in all, than any request is refused before it is parsed (body-shape.ts). */
const jsonBody = express.json({
  limit: BODY_LIMIT,
  strict: true,
  type: () => true,
  verify: (_req, _res, bytes) => {
    const refusal = notUtf8(bytes) ?? shapeRefusal(bytes);
    if (refusal) {
      throw Object.assign(new Error(refusal.error), { status: 400, type: 'entity.bad.shape', refusal });
    }
  },
});

/**
 * A query's body as bytes, parsed in the handler: a large one in a turn of the loop, as on the
 * fast path. Parsed by body-parser as it ends, 40 bodies of 234 KB at once held the loop 250 ms
 * (a query string on the URL, a chunked body: anything the fast path hands on).
 */
const queryBytes = express.raw({ limit: BODY_LIMIT, type: () => true });

/** JSON bodies only (415 otherwise, unread); `read` reads the body. */
const requireJson =
  (read: typeof jsonBody) =>
  (req: Request, res: Response, next: NextFunction): void => {
    const problem = unsupportedMedia(req.headers);
    if (problem) {
      // Refused before its body is read (closing.ts).
      closeAfterAnswer(res);
      res.status(415).json({ error: problem } satisfies ErrorResponse);
      return;
    }
    read(req, res, next);
  };

const methodNotAllowed = (allowed: readonly string[]) => (req: Request, res: Response) => {
  res.setHeader('Allow', allowed.join(', '));
  if (req.method === 'OPTIONS') {
    return res.status(204).end();
  }
  res.status(405).json({
    error: `method ${req.method} is not allowed on ${req.baseUrl}${req.path}; use ${allowed.filter((m) => m !== 'HEAD').join(' or ')}`,
  } satisfies ErrorResponse);
};

function createExpressApp(deps: AppDeps) {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'simple');
  const { tokens } = deps.security;
  const allInvalidations = new IntervalLimiter(deps.security.invalidateAllIntervalMs);
  for (const warning of deps.security.warnings) {
    deps.logger.warn({ security: true }, `SECURITY WARNING: ${warning}`);
  }

  app.use((req, res, next) => {
    const id = requestIdFrom(req.headers['x-request-id']);
    res.locals.requestId = id;
    res.setHeader('X-Request-Id', id);
    const started = performance.now();
    // The full path as sent (a router strips its mount point from req.path), without the query string.
    const path = req.path;
    res.on('finish', () =>
      recordRequest(deps, {
        // Express matches paths in any case: the label is the route's own spelling, not the client's.
        route: req.route?.path ? `${req.baseUrl.toLowerCase()}${req.route.path as string}` : 'unmatched',
        reqId: id,
        method: req.method,
        path,
        status: res.statusCode,
        started,
        cache: res.locals.cache,
        tier: res.locals.tier,
        log: path !== '/metrics' && path !== '/healthz',
      })
    );
    next();
  });

  // (/healthz and /readyz are answered before Express: probeAnswers.)
  // A flood of 870 scrapes/s (41 KB each, no token needed) raised cached answers' p50 from 2 to
  // 23 ms; a flood of cache stats (any read token) sent Redis 9,600 INFO calls a second.
  const scrape = renderedAtMost(SCRAPES_RENDERED_PER_SECOND, () => deps.metrics.registry.metrics());
  const cacheStats = renderedAtMost(SCRAPES_RENDERED_PER_SECOND, () => deps.cache.stats());
  app.get('/metrics', async (_req, res) => {
    res.setHeader('Content-Type', deps.metrics.registry.contentType);
    res.send(await scrape());
  });

  const api = express.Router();
  api.use(requireRole(tokens, 'read'));

  api.post('/v1/query', requireJson(queryBytes), async (req, res, next) => {
    const started = performance.now();
    try {
      const bytes: Buffer = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      await turnToParse(bytes.length);
      const notText = notUtf8(bytes);
      if (notText) {
        return res.status(400).json(notText);
      }
      const json = jsonBodyOf(bytes.toString('utf8'));
      if ('refusal' in json) {
        return res.status(400).json(json.refusal);
      }
      const parsed = parseQueryRequest(json.body);
      if ('refusal' in parsed) {
        return res.status(400).json(parsed.refusal);
      }
      const answer = await deps.service.answer(parsed.request, parsed.refused, clientGone(req, res));
      const { status, body, cache, tiers } = answer;
      res.locals.cache = cache;
      res.locals.tier = tiers?.join('+');
      // The body is already JSON (cached answers are rendered once, not per hit).
      const gzip = acceptsGzip(req.headers['accept-encoding']);
      const sent = forClientNow(status, body, gzip) ?? (await forClientLater(status, body, gzip));
      // Time spent in the service, compression included, for clients and benchmarks (excludes
      // network and JSON parsing on their side), as the fast path reports it.
      res.setHeader('Server-Timing', `app;dur=${(performance.now() - started).toFixed(3)}`);
      const headers = [...queryHeaderList(answer), ...sent.headers];
      for (let i = 0; i < headers.length; i += 2) {
        res.setHeader(headers[i], headers[i + 1]);
      }
      // The bytes as rendered (a cached answer's are reused), typed as JSON in UTF-8.
      res.status(status).type('application/json; charset=utf-8').send(sent.body);
    } catch (err) {
      next(err);
    }
  });

  api.get('/v1/variables/:name', async (req, res, next) => {
    const name = z.enum(VARIABLE_NAMES).safeParse(req.params.name);
    if (!name.success) {
      return res.status(404).json({ error: `unknown variable; use one of: ${VARIABLE_NAMES.join(', ')}` });
    }
    try {
      // Rendered once per read of the list (a list read before, served while the database cannot
      // give one, says so, with when it was read), gzipped once for clients that take it.
      const { body } = await deps.variables(name.data);
      const gzip = acceptsGzip(req.headers['accept-encoding']);
      const sent = forClientNow(200, body, gzip) ?? (await forClientLater(200, body, gzip));
      for (let i = 0; i < sent.headers.length; i += 2) {
        res.setHeader(sent.headers[i], sent.headers[i + 1]);
      }
      res.status(200).type('application/json; charset=utf-8').send(sent.body);
    } catch (err) {
      next(err);
    }
  });

  api.post('/v1/invalidate', requireRole(tokens, 'admin'), requireJson(jsonBody), async (req, res, next) => {
    const parsed = parseInvalidateRequest(req.body);
    if ('refusal' in parsed) {
      return res.status(400).json(parsed.refusal);
    }
    // Each "all" sends the next minute of every dashboard to the database: one per interval per instance.
    const slot = 'all' in parsed.target ? allInvalidations.take() : null;
    if (slot && !slot.ok) {
      res.setHeader('Retry-After', String(slot.retryAfterSeconds));
      return res.status(429).json({
        error: `the whole cache was invalidated less than ${deps.security.invalidateAllIntervalMs / 1000} s ago on this instance; try again in ${slot.retryAfterSeconds} s, or invalidate one rule or parser`,
      });
    }
    try {
      await deps.cache.invalidate(parsed.target);
      res.json({ invalidated: parsed.target });
    } catch (err) {
      // Not applied: the next attempt may go ahead at once.
      if (slot?.ok) {
        slot.release();
      }
      if (err instanceof CacheUnavailable) {
        // The circuit probes Redis every 500 ms: a retry within seconds may find it back.
        return res
          .status(503)
          .set('Retry-After', '5')
          .json({ error: `${err.message}; retry in 5 s` });
      }
      next(err);
    }
  });

  api.get('/v1/cache/stats', async (_req, res, next) => {
    try {
      res.json(await cacheStats());
    } catch (err) {
      next(err);
    }
  });

  for (const [path, methods] of Object.entries(ROUTES)) {
    if (path.startsWith('/api/')) {
      api.all(path.slice('/api'.length), methodNotAllowed(methods));
    } else {
      app.all(path, methodNotAllowed(methods));
    }
  }

  app.use('/api', api);

  // With the routes there are: someone opening the port in a browser, or asking /api/query, sees where to go.
  app.use((_req, res) => res.status(404).json(NOT_FOUND));

  // Last resort: body-parser's client errors keep their status, with a message about what was wrong; anything else is ours.

  app.use(
    (
      err: Error & { status?: number; type?: string; body?: unknown; refusal?: ErrorResponse },
      req: Request,
      res: Response,
      _next: NextFunction
    ) => {
      if (res.headersSent) {
        // Answered already (a body refused as busy, whose reader then saw it aborted): nothing more to say.
        res.destroy();
        return;
      }
      if (err.type === 'entity.bad.shape') {
        return res.status(400).json(err.refusal);
      }
      if (err.type === 'entity.too.large') {
        return res.status(413).json({ error: `request body larger than ${BODY_LIMIT}` });
      }
      if (err.type === 'encoding.unsupported' || err.type === 'charset.unsupported') {
        return res
          .status(415)
          .json({ error: unsupportedMedia(req.headers) ?? 'send the body as uncompressed UTF-8 JSON' });
      }
      if (err instanceof URIError) {
        // A path whose percent-encoding does not decode (`/api/v1/variables/%`): no such resource.
        return res.status(404).json({ error: "not found: the URL path's percent-encoding does not decode" });
      }
      if (err.status && err.status >= 400 && err.status < 500) {
        return res
          .status(err.status)
          .json(
            err.type === 'entity.parse.failed'
              ? notJsonObject(typeof err.body === 'string' ? err.body : '')
              : ({ ...NOT_JSON, error: 'bad request' } satisfies ErrorResponse)
          );
      }
      const { status, body, retryAfter } = errorResponse(deps, err, res.locals.requestId);
      if (retryAfter) {
        res.setHeader('Retry-After', String(retryAfter));
      }
      res.status(status).json(body);
    }
  );

  return app;
}

const HEALTHY = Buffer.from(JSON.stringify({ status: 'ok' }));

/**
 * GET or HEAD /healthz and /readyz, answered without Express, request ids or a log line: they
 * need no token, and load balancers ask them every few seconds. Through Express (and logged),
 * an unauthenticated flood of 1,400 /readyz a second cut uncached answers from 443 to 18 a
 * second. Returns whether the request was one of them.
 */
function probeAnswers(deps: AppDeps): (req: IncomingMessage, res: ServerResponse) => boolean {
  const { tokens } = deps.security;
  const tokenHolder = carriesToken(tokens);
  const open = !tokens.read && !tokens.admin;
  const send = (
    req: IncomingMessage,
    res: ServerResponse,
    route: string,
    status: number,
    body: Buffer,
    started: number
  ) => {
    res.writeHead(status, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': body.length,
      ...(status === 503 ? { 'retry-after': '5' } : {}),
    });
    res.end(req.method === 'HEAD' ? undefined : body);
    recordRequest(deps, { route, reqId: '', method: req.method!, path: route, status, started, log: false });
  };
  return (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return false;
    }
    const path = req.url?.split('?', 1)[0];
    if (path !== '/healthz' && path !== '/readyz') {
      return false;
    }
    const started = performance.now();
    if (path === '/healthz') {
      send(req, res, '/healthz', 200, HEALTHY, started);
      return true;
    }
    void deps.ready().then(
      (ready) => {
        const body = readyBody(deps.security, ready, open || tokenHolder(req.headers.authorization));
        // Not ready (warming, the database out of reach): 503 with when to ask again, as while starting.
        send(req, res, '/readyz', ready.status === 'ready' ? 200 : 503, Buffer.from(JSON.stringify(body)), started);
      },
      (err: Error) => {
        const { status, body } = errorResponse(deps, err, 'readyz');
        send(req, res, '/readyz', status, Buffer.from(JSON.stringify(body)), started);
      }
    );
    return true;
  };
}

/**
 * The /readyz body with the service's security warnings: in full to token holders (or anyone,
 * when there is no token to protect), one line saying there are some to others, as a warning may
 * say a token is the published default.
 */
export function readyBody(security: SecuritySettings, ready: ReadyResponse, mayReadWarnings: boolean): ReadyResponse {
  const own = security.warnings;
  const shown = own.length === 0 || mayReadWarnings ? own : [WITHHELD_WARNINGS];
  return { ...ready, warnings: [...(ready.warnings ?? []), ...shown] };
}

/** Header fields a request may carry: browsers send about 20, Grafana's data proxy a few more. */
export const HEADER_FIELDS_MAX = 200;

/** The request handler: health and readiness, the query fast path for ordinary dashboard queries, Express for everything else. */
export function createApp(deps: AppDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const app = createExpressApp(deps);
  const probe = probeAnswers(deps);
  const fastPath = createQueryFastPath(deps);
  const bodies = new BodyBudget();
  const unsent = new UnsentAnswers(deps.sending);
  deps.metrics.watchUnsent(() => unsent.held);
  const pipelines = new PipelineLimit();
  // Requests refused before routing count in ruleperf_http_requests_total too (they were missing there).
  const refused = (req: IncomingMessage, status: number) =>
    deps.metrics.hot.httpRequest(routeOf(req.url), status).inc();
  return (req, res) => {
    // `GET http://host/healthz` (the absolute form HTTP/1.1 servers must take) routed as `GET /healthz`:
    // it was a 405 for GET on /healthz, and a query sent so went past the fast path and its limits.
    if (req.url && req.url[0] !== '/' && req.url !== '*') {
      req.url = originForm(req.url);
    }
    unsent.watch(req.socket);
    if (req.rawHeaders.length > 2 * HEADER_FIELDS_MAX) {
      // Node keeps the first thousand or so and drops the rest unsaid: a Content-Length past them
      // left a valid body unread and answered as a query without a range.
      refuseUnread(req, res, 431, {}, `more than ${HEADER_FIELDS_MAX} header fields`);
      refused(req, 431);
      return;
    }
    if (!pipelines.admit(req, res)) {
      refuseBusy(req, res, PIPELINED_BUSY);
      refused(req, 503);
      return;
    }
    // Queued behind another answer on its connection (pipelining): Node gives it no socket yet.
    if (!res.socket) {
      unsent.watchQueued(res);
    }
    if (declaredTooLarge(req)) {
      refuseTooLarge(req, res);
      refused(req, 413);
      return;
    }
    // A dashboard query's body is always read (or refused with its connection closed): the
    // watch is for the rest, as it costs the request every panel sends about a fifth of its CPU.
    if ((req.method !== 'POST' || req.url !== QUERY_PATH) && sendsBody(req)) {
      closeIfBodyUnread(req, res);
    }
    if (req.url?.startsWith('/api/') && unsent.full()) {
      refuseBusy(
        req,
        res,
        `the service is busy (${(unsent.held / (1024 * 1024)).toFixed(1)} MB of answers are waiting for their clients to read them); retry in 1 s`
      );
      refused(req, 503);
      return;
    }
    if (probe(req, res)) {
      return;
    }
    // (Express counts what it answers, these refusals too, once it has the request.)
    let viaExpress = false;
    if (req.method === 'POST') {
      bodies.count(req, res, {
        busy: () => {
          refuseBody(req, res);
          if (!viaExpress) {
            refused(req, 503);
          }
        },
        slow: () => {
          refuseSlowBody(req, res);
          if (!viaExpress) {
            refused(req, 408);
          }
        },
        tooLarge: (why) => {
          refuseTooLarge(req, res, why);
          if (!viaExpress) {
            refused(req, 413);
          }
        },
      });
    }
    if (!fastPath(req, res)) {
      viaExpress = true;
      app(req, res);
    }
  };
}

/** The route a request's URL names (a label of bounded cardinality): one of ROUTES, or "unmatched". */
function routeOf(url: string | undefined): string {
  const path = (url ?? '').split('?', 1)[0];
  if (Object.hasOwn(ROUTES, path)) {
    return path;
  }
  return path.startsWith('/api/v1/variables/') ? '/api/v1/variables/:name' : 'unmatched';
}

/** An absolute-form request target's path and query (`http://host/a?b` → `/a?b`), or it as it is when it is no URL. */
function originForm(target: string): string {
  try {
    const url = new URL(target);
    return url.pathname + url.search;
  } catch {
    return target;
  }
}

/** Whether the request declares a body longer than the limit (Content-Length). */
export function declaredTooLarge(req: IncomingMessage): boolean {
  return Number(req.headers['content-length']) > BODY_LIMIT_BYTES;
}

/**
 * A body longer than the limit, declared or (chunked) received: 413 at once, the rest not read,
 * the connection closed. body-parser reads such a body to its end before answering, so a client
 * declaring 2 MB and sending a few bytes waited for the request timeout (30 s, then 408), and a
 * chunked body that never ended was read at about 1 GB/s until then.
 */
function refuseTooLarge(req: IncomingMessage, res: ServerResponse, why: 'bytes' | 'pieces' = 'bytes'): void {
  refuseUnread(
    req,
    res,
    413,
    {},
    why === 'bytes'
      ? `request body larger than ${BODY_LIMIT}`
      : `request body sent in more than ${BODY_PIECES_MAX} pieces (chunks or reads); send it in fewer, larger ones`
  );
}

/** Refused with the rest of its body unread: the answer, then the connection closed (lingering, closing.ts; at once when an answer was already sent). */
function refuseUnread(
  req: IncomingMessage,
  res: ServerResponse,
  status: number,
  headers: Record<string, string>,
  error: string
): void {
  // Refused: whatever reads the body (the query fast path, body-parser) must not act on its end,
  // which a lingering close may still read (it would answer a second time).
  req.removeAllListeners('data');
  req.removeAllListeners('end');
  req.pause();
  if (res.headersSent) {
    req.destroy();
    return;
  }
  closeAfterAnswer(res);
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify({ error } satisfies ErrorResponse));
}

/** A request refused before any work (answers waiting for their clients, too many pipelined): 503 busy, its connection closed. */
function refuseBusy(req: IncomingMessage, res: ServerResponse, error: string): void {
  closeAfterAnswer(res);
  req.resume(); // its body, if any, is read and dropped
  res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '1' });
  res.end(JSON.stringify({ error } satisfies ErrorResponse));
}

const BODIES_BUSY = 'the service is busy (too many request bodies arriving at once); retry in 1 s';
const SLOW_BODY = `request body still arriving after ${SLOW_BODY_MS / 1000} s while others waited for room: send it faster, or retry`;

/** A request whose body the budget cannot hold: 503 busy, the rest of its body not read, its connection closed. */
function refuseBody(req: IncomingMessage, res: ServerResponse): void {
  refuseUnread(req, res, 503, { 'retry-after': '1' }, BODIES_BUSY);
}

/** A body still arriving after SLOW_BODY_MS, refused to make room for others' (body-budget.ts). */
function refuseSlowBody(req: IncomingMessage, res: ServerResponse): void {
  refuseUnread(req, res, 408, {}, SLOW_BODY);
}
