/**
 * POST /api/v1/query without Express, for the request every panel sends on every refresh
 * (and GET /healthz, the other request sent all the time).
 * It takes only the ordinary case — authorized, `Content-Type: application/json` in UTF-8,
 * not compressed, a declared length within the body limit — and hands anything else to the
 * Express app untouched (which answers 401, 413, 415 and the rest), so the contract stays
 * defined in one place. Skipping the router, middleware chain and body-parser roughly
 * halves the CPU a cache hit costs, which is what bounds burst latency and throughput.
 */
import { BODY_LIMIT_BYTES } from './body-budget';
import { jsonBodyOf, parseQueryRequest, turnToParse } from './body-shape';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { clientGone } from './client-gone';
import type { AppDeps } from './app';
import type { RefusedQuery, ServiceAnswer } from '../query/service';
import { roleOf, type Tokens } from './auth';
import { RequestMemo } from './request-memo';
import { acceptsGzip, forClientLater, forClientNow, type ClientBody } from './compression';
import { errorResponse, notUtf8, queryHeaderList, recordRequest, requestIdFrom, unsupportedMedia } from './responses';

export const QUERY_PATH = '/api/v1/query';

/** Whether this request is one the fast path answers (otherwise Express does). */
export function isOrdinary(req: IncomingMessage, authorized: (header: string | undefined) => boolean): boolean {
  if (req.method !== 'POST' || req.url !== QUERY_PATH) {
    return false;
  }
  const length = Number(req.headers['content-length']);
  if (!Number.isInteger(length) || length < 0 || length > BODY_LIMIT_BYTES || req.headers['transfer-encoding']) {
    return false;
  }
  if (unsupportedMedia(req.headers) !== null) {
    return false;
  }
  return authorized(req.headers.authorization);
}

const JSON_TYPE = 'application/json; charset=utf-8';

/** Writes the whole answer at once: headers as a flat list (no header object to build and walk), the body as bytes. */
function send(res: ServerResponse, status: number, body: Buffer, reqId: string, more: string[] = []) {
  res.writeHead(status, [
    'Content-Type',
    JSON_TYPE,
    'Content-Length',
    String(body.length),
    'X-Request-Id',
    reqId,
    ...more,
  ]);
  res.end(body);
}

const jsonBytes = (value: unknown) => Buffer.from(JSON.stringify(value));

/** Who may take the fast path: whoever may read (the others get Express's 401). */
export function authorizationCheck(tokens: Tokens): (header: string | undefined) => boolean {
  const role = roleOf(tokens);
  return (header) => role(header) !== null;
}

/**
 * One request on the fast path. A class rather than closures: the service runs through tsx,
 * which names every function a closure assigns (a property definition each), and this is
 * created per request.
 */
class Exchange {
  readonly chunks: Buffer[] = [];
  private handlerStarted = 0;

  constructor(
    private readonly deps: AppDeps,
    private readonly requests: RequestMemo,
    private readonly res: ServerResponse,
    private readonly reqId: string,
    private readonly started: number,
    private readonly gzip: boolean
  ) {}

  end(): void {
    const bytes = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks);
    const notText = notUtf8(bytes);
    if (notText) {
      return this.reply(400, jsonBytes(notText));
    }
    const text = bytes.toString('utf8');
    this.handlerStarted = performance.now();
    // Parsed and checked in a turn of its own, weighed by its size (about 6 ms for 180 KB):
    // bodies arriving together were parsed back to back in front of every cached answer.
    const turn = turnToParse(text.length);
    if (turn) {
      turn.then(() => this.answerText(text)).catch((err: Error) => this.failed(err));
      return;
    }
    this.answerText(text);
  }

  private answerText(text: string): void {
    // A body seen before but for its range is not parsed again (request-memo.ts).
    let request = this.requests.recall(text);
    let refused: readonly RefusedQuery[] = [];
    if (!request) {
      const json = jsonBodyOf(text);
      if ('refusal' in json) {
        return this.reply(400, jsonBytes(json.refusal));
      }
      const parsed = parseQueryRequest(json.body);
      if ('refusal' in parsed) {
        return this.reply(400, jsonBytes(parsed.refusal));
      }
      request = parsed.request;
      refused = parsed.refused;
      if (!refused.length) {
        this.requests.remember(text, request);
      }
    }
    // Held in this process (most refreshes): answered without a promise in the way.
    let now: ServiceAnswer | undefined;
    try {
      now = refused.length ? undefined : this.deps.service.answerNow(request);
    } catch (err) {
      return this.failed(err as Error);
    }
    if (now) {
      return this.answered(now);
    }
    // Not held here: work that may queue, given up if the client goes first.
    this.deps.service
      .answer(request, refused, clientGone(this.res.req, this.res))
      .then(
        (answer) => this.answered(answer),
        (err: Error) => this.failed(err)
      )
      .catch((err: Error) =>
        this.deps.logger.error({ reqId: this.reqId, err: { message: err.message } }, 'writing an answer failed')
      );
  }

  private answered(answer: ServiceAnswer): void {
    const now = forClientNow(answer.status, answer.body, this.gzip);
    if (now) {
      return this.send(answer, now);
    }
    // A large body not compressed yet: on the thread pool, not in front of every other request.
    forClientLater(answer.status, answer.body, this.gzip)
      .then(
        (sent) => this.send(answer, sent),
        (err: Error) => this.failed(err)
      )
      .catch((err: Error) =>
        this.deps.logger.error({ reqId: this.reqId, err: { message: err.message } }, 'writing an answer failed')
      );
  }

  private send(answer: ServiceAnswer, sent: ClientBody): void {
    // Time spent in the service, for clients and benchmarks (excludes network and JSON parsing on their side).
    const headers = [
      'Server-Timing',
      `app;dur=${(performance.now() - this.handlerStarted).toFixed(3)}`,
      ...sent.headers,
    ];
    this.reply(
      answer.status,
      sent.body,
      answer.retryAfter ? [...queryHeaderList(answer), ...headers] : headers,
      answer.cache,
      answer.tiers?.join('+')
    );
  }

  private failed(err: Error): void {
    const response = errorResponse(this.deps, err, this.reqId);
    this.reply(response.status, jsonBytes(response.body), queryHeaderList(response));
  }

  /** Writes the answer, then logs the request line. */
  private reply(status: number, body: Buffer, more?: string[], cache?: string, tier?: string): void {
    send(this.res, status, body, this.reqId, more);
    recordRequest(this.deps, {
      route: QUERY_PATH,
      reqId: this.reqId,
      method: 'POST',
      path: QUERY_PATH,
      status,
      started: this.started,
      cache,
      tier,
    });
  }
}

const HEALTHY = jsonBytes({ status: 'ok' });

/** acceptsGzip for the header every request of a client repeats, remembered for the last one seen. */
function gzipCheck(): (header: string | undefined) => boolean {
  let last: string | undefined;
  let lastAccepts = false;
  return (header) => {
    if (header !== last) {
      last = header;
      lastAccepts = acceptsGzip(header);
    }
    return lastAccepts;
  };
}

export function createQueryFastPath(deps: AppDeps): (req: IncomingMessage, res: ServerResponse) => boolean {
  const authorized = authorizationCheck(deps.security.tokens);
  const requests = new RequestMemo();
  const gzip = gzipCheck();
  return (req, res) => {
    // The liveness probe a load balancer sends every few seconds, and the one a user's
    // latency is compared with: a fixed answer, as Express would give it, without Express.
    if (req.method === 'GET' && req.url === '/healthz') {
      send(res, 200, HEALTHY, requestIdFrom(req.headers['x-request-id']));
      deps.metrics.hot.httpRequest('/healthz', 200).inc();
      return true;
    }
    if (!isOrdinary(req, authorized)) {
      return false;
    }
    const exchange = new Exchange(
      deps,
      requests,
      res,
      requestIdFrom(req.headers['x-request-id']),
      performance.now(),
      gzip(req.headers['accept-encoding'])
    );
    req.on('data', (chunk: Buffer) => exchange.chunks.push(chunk));
    req.on('end', () => exchange.end());
    return true;
  };
}
