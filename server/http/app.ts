/**
 * The HTTP surface (DESIGN.md "Server contract"): routes, body limits, auth, JSON errors.
 * Bad input is a 400/401/404/413/415 with {error, details?}; never a stack trace, never
 * a 500 for what a client sent.
 */
import express, { type NextFunction, type Request, type Response } from 'express';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { z, type ZodError } from 'zod/v4';
import { invalidateSchema, queryRequestSchema, VARIABLE_NAMES, type ErrorResponse, type ReadyResponse } from '../contract';
import { bearerAuth } from './auth';
import { variableValues } from './variables';
import type { QueryService } from '../query/service';
import type { Metrics } from '../observability/metrics';
import type { Pool } from 'pg';
import { CacheUnavailable } from '../cache/store';
import { createQueryFastPath } from './query-fast-path';
import { errorResponse, invalidRequest, NOT_JSON, queryHeaders, recordRequest, requestIdFrom, zodDetails } from './responses';

export interface CacheControl {
  invalidate(target: { ruleId?: string; parserId?: string; all?: boolean }): Promise<void>;
  stats(): Promise<Record<string, unknown>>;
  state(): 'up' | 'degraded' | 'disabled';
}

export interface AppDeps {
  service: QueryService;
  cache: CacheControl;
  readPool: Pool;
  ready: () => Promise<ReadyResponse>;
  metrics: Metrics;
  logger: Logger;
  apiToken?: string;
}

export const BODY_LIMIT = '1mb';

function badRequest(res: Response, err: ZodError) {
  res.status(400).json(invalidRequest(err));
}

const requireJson = (req: Request, res: Response, next: NextFunction) => {
  if (!req.is('application/json')) {
    return res.status(415).json({ error: 'send the body as application/json' });
  }
  next();
};

function createExpressApp(deps: AppDeps) {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'simple');

  app.use((req, res, next) => {
    const id = requestIdFrom(req.headers['x-request-id']);
    res.locals.requestId = id;
    res.setHeader('X-Request-Id', id);
    const started = performance.now();
    res.on('finish', () =>
      recordRequest(deps, {
        route: (req.route?.path as string | undefined) ?? 'unmatched',
        reqId: id,
        method: req.method,
        path: req.path,
        status: res.statusCode,
        started,
        cache: res.locals.cache,
        tier: res.locals.tier,
        log: req.path !== '/metrics' && req.path !== '/healthz',
      })
    );
    next();
  });

  app.get('/healthz', (_req, res) => res.json({ status: 'ok' }));
  app.get('/readyz', async (_req, res) => {
    const ready = await deps.ready();
    res.status(ready.status === 'ready' ? 200 : 503).json(ready);
  });
  app.get('/metrics', async (_req, res) => {
    res.setHeader('Content-Type', deps.metrics.registry.contentType);
    res.send(await deps.metrics.registry.metrics());
  });

  const api = express.Router();
  api.use(bearerAuth(deps.apiToken));
  api.use(express.json({ limit: BODY_LIMIT, strict: true, type: 'application/json' }));

  api.post('/v1/query', requireJson, async (req, res, next) => {
    const started = performance.now();
    const parsed = queryRequestSchema.safeParse(req.body);
    if (!parsed.success) return badRequest(res, parsed.error);
    try {
      const answer = await deps.service.answer(parsed.data);
      const { status, json, cache, tiers } = answer;
      res.locals.cache = cache;
      res.locals.tier = tiers?.join('+');
      // Time spent in the service, for clients and benchmarks (excludes network and JSON parsing on their side).
      res.setHeader('Server-Timing', `app;dur=${(performance.now() - started).toFixed(3)}`);
      // The body is already JSON text (cached answers are rendered once, not per hit).
      res.set(queryHeaders(answer));
      res.status(status).type('application/json').send(json);
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
      res.json({ values: await variableValues(deps.readPool, name.data) });
    } catch (err) {
      next(err);
    }
  });

  api.post('/v1/invalidate', requireJson, async (req, res, next) => {
    const parsed = invalidateSchema.safeParse(req.body);
    if (!parsed.success) {
      return res.status(400).json({ error: 'invalid request: send {"ruleId": "…"}, {"parserId": "…"} or {"all": true}', details: zodDetails(parsed.error) });
    }
    try {
      await deps.cache.invalidate(parsed.data);
      res.json({ invalidated: parsed.data });
    } catch (err) {
      if (err instanceof CacheUnavailable) return res.status(503).json({ error: err.message });
      next(err);
    }
  });

  api.get('/v1/cache/stats', async (_req, res, next) => {
    try {
      res.json(await deps.cache.stats());
    } catch (err) {
      next(err);
    }
  });

  app.use('/api', api);

  app.use((_req, res) => res.status(404).json({ error: 'not found' }));

  // Last resort: body-parser's client errors keep their status; anything else is ours.
  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  app.use((err: Error & { status?: number; type?: string }, req: Request, res: Response, _next: NextFunction) => {
    if (err.type === 'entity.too.large') {
      return res.status(413).json({ error: `request body larger than ${BODY_LIMIT}` });
    }
    if (err.status && err.status >= 400 && err.status < 500) {
      return res.status(err.status).json({ ...NOT_JSON, error: err.type === 'entity.parse.failed' ? NOT_JSON.error : 'bad request' } satisfies ErrorResponse);
    }
    const { status, body } = errorResponse(deps, err, res.locals.requestId);
    res.status(status).json(body);
  });

  return app;
}

/** The request handler: the query fast path for ordinary dashboard queries, Express for everything else. */
export function createApp(deps: AppDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const app = createExpressApp(deps);
  const fastPath = createQueryFastPath(deps);
  return (req, res) => {
    if (!fastPath(req, res)) app(req, res);
  };
}
