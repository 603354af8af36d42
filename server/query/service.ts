/**
 * The query pipeline for one HTTP request: normalize every query (covered range, bucket
 * width) → check the request's budget before any work → per query, the cache (with
 * coalescing) or the executor → frames with meta, rendered as JSON text. Each query is
 * answered independently; one failing does not fail the others.
 */
import type { CacheStatus, QueryRequest, QueryResult, RuleperfQuery } from '../contract';
import { Busy, type Priority } from '../db/admission';
import { isDataException, isStatementTimeout, isUnavailable } from '../db/pools';
import { BudgetExceeded, checkBudget, schemaCardinality } from './budget';
import type { RollupInfo } from './catalog';
import type { Answer, Executor } from './executor';
import { normalizeQuery, type NormalizedQuery, type RequestRange } from './normalize';
import { renderFrames, withMeta } from './render';

export interface CacheLayer {
  /** The answer for `q`, from the cache or from `compute`; never fails because of the cache itself. */
  fetch(q: NormalizedQuery, compute: () => Promise<Answer>): Promise<{ answer: Answer; status: CacheStatus }>;
}

export interface QueryObserver {
  observe(kind: string, cache: CacheStatus, tier: string, seconds: number): void;
}

export const UNAVAILABLE = 'the database is unavailable; try again shortly';

/** A query that could not be answered: what the client sees, and when to retry. */
interface Failure extends QueryResult {
  status: number;
  retryAfter?: number;
}

export interface ServiceAnswer {
  status: number;
  /** The whole response body as JSON text. */
  json: string;
  /** Seconds, when every query was refused for a transient reason. */
  retryAfter?: number;
  /** The first query's cache status and tiers, for the request log. */
  cache?: CacheStatus;
  tiers?: string[];
}

function failure(err: unknown): Failure {
  if (err instanceof Busy) return { frames: [], error: err.message, status: 503, retryAfter: err.retryAfterSeconds };
  if (isStatementTimeout(err)) {
    // The database's own words say which limit: its statement timeout, or (embedded) the wait for its one session.
    return { frames: [], error: `the query took too long and was cancelled (${(err as Error).message}); narrow the range or the filters`, status: 503, retryAfter: 5 };
  }
  if (isUnavailable(err)) return { frames: [], error: UNAVAILABLE, status: 503, retryAfter: 5 };
  if (isDataException(err)) return { frames: [], error: `a value in this query cannot be used: ${(err as Error).message}`, status: 400 };
  throw err;
}

export class QueryService {
  constructor(
    private readonly rollups: () => readonly RollupInfo[],
    private readonly executor: Executor,
    private readonly cache: CacheLayer,
    private readonly observer: QueryObserver,
    private readonly recordQuery: (request: QueryRequest, query: RuleperfQuery) => void = () => undefined
  ) {}

  normalize(request: RequestRange, query: RuleperfQuery): NormalizedQuery {
    return normalizeQuery(request, query, this.rollups());
  }

  /** The answer to one normalized query, or the failure a client should see. */
  private async resolve(q: NormalizedQuery, priority: Priority): Promise<{ answer: Answer; cache: CacheStatus } | Failure> {
    const started = performance.now();
    try {
      const { answer, status } = await this.cache.fetch(q, () => this.executor.run(q, priority));
      this.observer.observe(q.kind, status, answer.tiers[0] ?? 'none', (performance.now() - started) / 1000);
      return { answer, cache: status };
    } catch (err) {
      return failure(err);
    }
  }

  /** One query's result as objects (warming, tests); budget-checked like a request. */
  async answerOne(request: QueryRequest, query: RuleperfQuery, priority: Priority = 'user'): Promise<QueryResult> {
    const q = this.normalize(request, query);
    checkBudget([{ refId: query.refId, q }], schemaCardinality);
    const r = await this.resolve(q, priority);
    return 'frames' in r ? r : { frames: withMeta(r.answer, q, r.cache, query.refId) };
  }

  /** The whole response as JSON text (`{"results": {refId: result}}`) and its HTTP status. */
  async answer(request: QueryRequest): Promise<ServiceAnswer> {
    const visible = request.queries.filter((q) => !q.hide);
    const normalized = visible.map((query) => ({ refId: query.refId, query, q: this.normalize(request, query) }));
    try {
      checkBudget(normalized, schemaCardinality);
    } catch (err) {
      if (!(err instanceof BudgetExceeded)) throw err;
      return { status: 400, json: JSON.stringify({ error: err.message, details: err.details }) };
    }
    const results = await Promise.all(
      normalized.map(async ({ refId, query, q }) => {
        this.recordQuery(request, query);
        const r = await this.resolve(q, 'user');
        if ('frames' in r) return { json: JSON.stringify({ frames: [], error: r.error, status: r.status }), failure: r };
        return { json: renderFrames(r.answer, q, r.cache, refId), cache: r.cache, tiers: r.answer.tiers };
      })
    );
    // refIds are unique (the request schema refuses repeats), so each is one key.
    const body = normalized.map(({ refId }, i) => `${JSON.stringify(refId)}:${results[i].json}`).join(',');
    const failures = results.flatMap((r) => (r.failure ? [r.failure] : []));
    // Every query refused for a transient reason → the request as a whole is (503, with the reason).
    if (results.length > 0 && failures.length === results.length && failures.every((f) => f.status === 503)) {
      const busy = failures.find((f) => f.error !== UNAVAILABLE);
      const error = busy?.error ?? UNAVAILABLE;
      return { status: 503, json: `{"error":${JSON.stringify(error)},"results":{${body}}}`, retryAfter: Math.max(...failures.map((f) => f.retryAfter ?? 1)) };
    }
    return { status: 200, json: `{"results":{${body}}}`, cache: results[0]?.cache, tiers: results[0]?.tiers };
  }
}
