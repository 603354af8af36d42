/**
 * The query pipeline for one HTTP request: validate → normalize and align → cache
 * lookup (with coalescing) → route + SQL on a miss → frames with meta. Each query of
 * the request is answered independently; one failing does not fail the others.
 */
import type { CacheStatus, QueryRequest, QueryResult, RuleperfQuery, Tier } from '../contract';
import { normalizeQuery, type NormalizedQuery, type RoutingSettings } from './normalize';
import { RouteError } from './router';
import type { QueryExecutor, Answer } from './executor';
import type { RollupInfo } from './catalog';
import { isDataException, isStatementTimeout, isUnavailable } from '../db/pools';
import { renderFrames, withMeta } from './render';

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

  /** The answer to one query, or the error result a client should see. */
  private async resolve(request: QueryRequest, query: RuleperfQuery): Promise<{ q: NormalizedQuery; answer: Answer; cache: CacheStatus } | QueryResult> {
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
      return { q, answer, cache: status };
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

  /** One query's result as objects (used by warming and tests). */
  async answerOne(request: QueryRequest, query: RuleperfQuery): Promise<QueryResult> {
    const r = await this.resolve(request, query);
    return 'frames' in r ? r : { frames: withMeta(r.answer, r.q, r.cache, query.refId) };
  }

  /** One query's result as JSON text: hits of a cached answer reuse its rendered text. */
  private async renderOne(request: QueryRequest, query: RuleperfQuery): Promise<RenderedResult> {
    const r = await this.resolve(request, query);
    if ('frames' in r) return { json: JSON.stringify(r), status: r.status };
    return { json: renderFrames(r.answer, r.q, r.cache, query.refId), cache: r.cache, tiers: r.answer.tiers };
  }

  /**
   * The whole response as JSON text (`{"results": {refId: result}}`), its HTTP status, and
   * the first query's cache status and tiers for the request log.
   */
  async answer(request: QueryRequest): Promise<{ status: number; json: string; cache?: CacheStatus; tiers?: Tier[] }> {
    const visible = request.queries.filter((q) => !q.hide);
    const results = await Promise.all(visible.map((q) => this.renderOne(request, q)));
    // refIds are unique (the request schema refuses repeats), so each is one key.
    const json = `{"results":{${visible.map((q, i) => `${JSON.stringify(q.refId)}:${results[i].json}`).join(',')}}}`;
    // All queries unavailable → the request as a whole is (503); otherwise per-query errors.
    const allUnavailable = results.length > 0 && results.every((r) => r.status === 503);
    return { status: allUnavailable ? 503 : 200, json, cache: results[0]?.cache, tiers: results[0]?.tiers };
  }
}

interface RenderedResult {
  json: string;
  status?: number;
  cache?: CacheStatus;
  tiers?: Tier[];
}
