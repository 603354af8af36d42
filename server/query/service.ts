/**
 * The query pipeline for one HTTP request: validate → normalize and align → cache
 * lookup (with coalescing) → route + SQL on a miss → frames with meta. Each query of
 * the request is answered independently; one failing does not fail the others.
 */
import type { CacheStatus, DataFrameJSON, QueryRequest, QueryResponse, QueryResult, RuleperfQuery } from '../contract';
import { normalizeQuery, type NormalizedQuery, type RoutingSettings } from './normalize';
import { RouteError } from './router';
import type { QueryExecutor, Answer } from './executor';
import type { RollupInfo } from './catalog';
import { isDataException, isStatementTimeout, isUnavailable } from '../db/pools';

export interface CacheLayer {
  /** The answer for `key`, from the cache or from `compute`; never fails because of the cache itself. */
  fetch(q: NormalizedQuery, compute: () => Promise<Answer>): Promise<{ answer: Answer; status: CacheStatus }>;
}

export interface QueryObserver {
  observe(kind: string, cache: CacheStatus, tier: string, seconds: number): void;
}

export class QueryService {
  constructor(
    private readonly rollups: () => RollupInfo[],
    private readonly routing: RoutingSettings,
    private readonly executor: QueryExecutor,
    private readonly cache: CacheLayer,
    private readonly observer: QueryObserver,
    private readonly recordQuery: (request: QueryRequest, query: RuleperfQuery) => void = () => undefined
  ) {}

  normalize(request: Pick<QueryRequest, 'range' | 'intervalMs' | 'maxDataPoints'>, query: RuleperfQuery): NormalizedQuery {
    return normalizeQuery(request, query, this.rollups(), this.routing);
  }

  async answerOne(request: QueryRequest, query: RuleperfQuery): Promise<QueryResult> {
    const started = performance.now();
    this.recordQuery(request, query);
    let q: NormalizedQuery;
    try {
      q = this.normalize(request, query);
    } catch (err) {
      if (err instanceof RouteError) return { frames: [], error: err.message, status: 400 };
      throw err;
    }
    try {
      const { answer, status } = await this.cache.fetch(q, () => this.executor.run(q, query.refId));
      this.observer.observe(q.kind, status, q.route.primary.tier, (performance.now() - started) / 1000);
      return { frames: withMeta(answer, q, status, query.refId) };
    } catch (err) {
      if (isStatementTimeout(err)) {
        return { frames: [], error: 'the query took too long and was cancelled by the statement timeout', status: 503 };
      }
      if (isUnavailable(err)) {
        return { frames: [], error: 'the database is unavailable; try again shortly', status: 503 };
      }
      if (isDataException(err)) {
        return { frames: [], error: `a value in this query cannot be used: ${(err as Error).message}`, status: 400 };
      }
      throw err;
    }
  }

  async answer(request: QueryRequest): Promise<{ status: number; body: QueryResponse }> {
    const visible = request.queries.filter((q) => !q.hide);
    const results = await Promise.all(visible.map((q) => this.answerOne(request, q)));
    const body: QueryResponse = { results: {} };
    visible.forEach((q, i) => (body.results[q.refId] = results[i]));
    // All queries unavailable → the request as a whole is (503); otherwise per-query errors.
    const allUnavailable = results.length > 0 && results.every((r) => r.status === 503);
    return { status: allUnavailable ? 503 : 200, body };
  }
}

/** Frames with this answer's meta; the cached frames are not mutated. */
function withMeta(answer: Answer, q: NormalizedQuery, cache: CacheStatus, refId: string): DataFrameJSON[] {
  const notices = [...answer.notices];
  if (cache === 'stale') {
    notices.push({ severity: 'warning', text: 'Served from cache past its freshness: the database could not be reached or is being re-queried.' });
  } else if (cache === 'bypass') {
    notices.push({ severity: 'info', text: 'Cache degraded: answered directly from the rollups.' });
  }
  return answer.frames.map((f) => ({
    schema: {
      ...f.schema,
      refId,
      meta: {
        ...f.schema.meta,
        executedQueryString: answer.sql,
        ...(notices.length ? { notices } : {}),
        custom: {
          tiers: answer.tiers,
          alignedRange: { from: q.from, to: q.to },
          bucketMs: q.route.bucketMs,
          watermark: answer.watermark,
          cache,
        },
      },
    },
    data: f.data,
  }));
}
