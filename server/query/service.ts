/**
 * The query pipeline for one HTTP request: normalize every query (covered range, bucket
 * width) → check the request's budget before any work → per query, the cache (with
 * coalescing) or the executor → frames with meta, rendered as JSON text. Each query is
 * answered independently; one failing does not fail the others.
 */
import { FILTER_FIELDS, type CacheStatus, type QueryRequest, type QueryResult, type RuleperfQuery } from '../contract';
import { Abandoned, Busy, type Priority } from '../db/admission';
import {
  isDataException,
  isReadDeadline,
  isSessionBusy,
  isLockTimeout,
  isStatementTimeout,
  isUnavailable,
  READ_DEADLINE_MARGIN_MS,
} from '../db/pools';
import { loopTurns } from './turns';
import { BudgetExceeded, checkBudget, schemaCardinality } from './budget';
import type { RollupInfo } from './catalog';
import { MANY_VALUES, valueCount, type Answer, type Executor } from './executor';
import type { NormalizedQuery, RequestRange } from './normalize';
import { NormalizeMemo } from './normalize-memo';
import { joinResults, renderInTurns, renderResponse, resultMember, withMeta } from './render';
import { EarlierRanges, servedInstead, type InsteadBecause } from './earlier-ranges';
import { SlowerThanUsual } from './work';
import { MOVING_WITHIN_MS } from './range';

export interface CacheLayer {
  /** The answer for `q`, from the cache or from `compute` (coalesced); never fails because of the cache itself. */
  fetch(
    q: NormalizedQuery,
    compute: (abandoned?: AbortSignal) => Promise<Answer>,
    options?: FetchOptions
  ): Promise<{ answer: Answer; status: CacheStatus }>;
  /** The answer this process holds for `q` right now, counted as a hit; undefined when it must be fetched. */
  nearHit?(q: NormalizedQuery): Answer | undefined;
  /** The answer the cache holds for `q`, fresh or stale, without computing it; undefined when none (or the cache is out of reach). */
  held?(q: NormalizedQuery): Promise<Answer | undefined>;
}

export interface FetchOptions {
  /** Says before any cache work for a miss (a lock) whether computing would be refused anyway. */
  refusal?: () => Error | null;
  /** Cache warming's lookup: counted apart from what users asked (the hit rate is theirs). */
  background?: boolean;
  /**
   * Aborts when the asker has gone (its client closed the connection). A computation every
   * asker of which has gone is given up if it has not reached the database yet (admission.ts).
   */
  asker?: AbortSignal;
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

/** A query of a request refused on its own (its panel shows why; the request's other queries are answered). */
export interface RefusedQuery {
  refId: string;
  error: string;
}

export interface ServiceAnswer {
  status: number;
  /** The whole response body: JSON in UTF-8. */
  body: Buffer;
  /** Seconds, when every query was refused for a transient reason. */
  retryAfter?: number;
  /** The first query's cache status and tiers, for the request log. */
  cache?: CacheStatus;
  tiers?: string[];
}

function serviceAnswer(status: number, body: Buffer, more: Omit<ServiceAnswer, 'status' | 'body'> = {}): ServiceAnswer {
  // Every member in one order, always present: one object shape for V8, built per request.
  return { status, body, retryAfter: more.retryAfter, cache: more.cache, tiers: more.tiers };
}

/** One query's part of a response: the `<refId>:{…}` member, and the whole body when it answered alone. */
interface Part {
  member: Buffer;
  response?: Buffer;
  failure?: Failure;
  cache?: CacheStatus;
  tiers?: string[];
}

function failedPart(refId: string, failure: Failure): Part {
  return {
    member: Buffer.from(
      `${JSON.stringify(refId)}:${JSON.stringify({ frames: [], error: failure.error, status: failure.status })}`
    ),
    failure,
  };
}

/** A read that gave up on a database that did not answer in time (pools.ts, isReadDeadline). */
export const LATE = `the database did not answer in time (no reply within ${READ_DEADLINE_MARGIN_MS / 1000} s past its statement timeout: unreachable or overloaded); retry in 5 s`;

/** Why a moving range's new minute may be answered with the minute before, or null when it may not. */
function insteadBecause(err: unknown): InsteadBecause | null {
  if (isUnavailable(err)) {
    return 'unreachable';
  }
  if (isReadDeadline(err)) {
    return 'late';
  }
  if (err instanceof SlowerThanUsual) {
    return 'slow';
  }
  return err instanceof Busy || isSessionBusy(err) ? 'busy' : null;
}

/**
 * The 503 for a database that cannot take a statement now (out of reach, late, its embedded
 * session busy), the same on every route; null for any other error.
 */
export function databaseRefusal(err: unknown): { error: string; retryAfter: number } | null {
  if (isSessionBusy(err)) {
    // The embedded database's one session was busy: the statement never ran, so nothing to narrow.
    return { error: `the service is busy (${(err as Error).message}); retry in 5 s`, retryAfter: 5 };
  }
  if (isUnavailable(err)) {
    return { error: UNAVAILABLE, retryAfter: 5 };
  }
  return isReadDeadline(err) ? { error: LATE, retryAfter: 5 } : null;
}

function failure(err: unknown): Failure {
  if (err instanceof BudgetExceeded) {
    return { frames: [], error: err.message, status: 400 };
  }
  if (err instanceof Busy) {
    return { frames: [], error: err.message, status: 503, retryAfter: err.retryAfterSeconds };
  }
  if (err instanceof Abandoned) {
    // Nobody reads it: nginx's "client closed request", for the request log.
    return { frames: [], error: err.message, status: 499 };
  }
  const refused = databaseRefusal(err);
  if (refused) {
    return { frames: [], status: 503, ...refused };
  }
  if (isLockTimeout(err)) {
    return {
      frames: [],
      error: `the database kept this query waiting for a lock held by other work (a migration, maintenance) and cancelled it (${(err as Error).message}); retry in a few seconds`,
      status: 503,
      retryAfter: 5,
    };
  }
  if (isStatementTimeout(err)) {
    // The database's own words say which limit: its statement timeout.
    return {
      frames: [],
      error: `the query took too long and was cancelled (${(err as Error).message}); narrow the range or the filters`,
      status: 503,
      retryAfter: 5,
    };
  }
  if (isDataException(err)) {
    return { frames: [], error: `a value in this query cannot be used: ${(err as Error).message}`, status: 400 };
  }
  throw err;
}

/** An answer, its cache status, and the question it answers when that is not the one asked (an earlier range). */
interface Resolved {
  answer: Answer;
  cache: CacheStatus;
  renderAs?: NormalizedQuery;
}

export class QueryService {
  private readonly memo = new NormalizeMemo();
  private readonly earlier = new EarlierRanges();
  private readonly budgets = new WeakMap<NormalizedQuery, boolean>();

  constructor(
    private readonly rollups: () => readonly RollupInfo[],
    private readonly executor: Executor,
    private readonly cache: CacheLayer,
    private readonly observer: QueryObserver,
    private readonly recordQuery: (request: QueryRequest, query: RuleperfQuery) => void = () => undefined,
    /** Where the raw rows begin (TimescaleDB's oldest chunk; null: kept whole): range ends before it are covered in whole hours. */
    private readonly rawKeptFrom: () => number | null = () => null
  ) {}

  normalize(request: RequestRange, query: RuleperfQuery): NormalizedQuery {
    return this.memo.normalize(request, query, this.rollups(), Date.now(), this.rawKeptFrom());
  }

  /** The answer to one normalized query, or the failure a client should see. */
  private async resolve(q: NormalizedQuery, priority: Priority, asker?: AbortSignal): Promise<Resolved | Failure> {
    const started = performance.now();
    try {
      const background = priority === 'background';
      const { answer, status } = await this.cache.fetch(q, (abandoned) => this.executor.run(q, priority, abandoned), {
        refusal: () => this.executor.refusal?.(priority) ?? null,
        background,
        asker,
      });
      // Query latency is what users wait for; warming's computations are not theirs.
      if (!background) {
        this.observer.observe(q.kind, status, answer.tiers[0] ?? 'none', (performance.now() - started) / 1000);
        this.earlier.remember(q);
      }
      return { answer, cache: status };
    } catch (err) {
      // Refusals come in batches too (a burst's queue waits run out together): one per turn.
      await loopTurns.next('miss');
      // A moving range whose new minute cannot be computed now: the minute before, marked.
      const because = insteadBecause(err);
      if (priority === 'user' && because) {
        const instead = await this.earlierAnswer(q, started, because);
        if (instead) {
          return instead;
        }
      }
      return failure(err);
    }
  }

  /**
   * With the database out of reach or too busy (a storm of uncached questions when a minute
   * begins): the cached answer for the same question over the range just before (a new minute
   * began, or the entry expired), marked, when the cache holds one.
   */
  private async earlierAnswer(
    q: NormalizedQuery,
    started: number,
    because: InsteadBecause
  ): Promise<Resolved | undefined> {
    // Only for ranges that end now: an absolute range is answered as asked, or not at all.
    if (q.range.to <= Date.now() - MOVING_WITHIN_MS) {
      return undefined;
    }
    const earlier = this.earlier.before(q);
    const answer = earlier && (await this.cache.held?.(earlier).catch(() => undefined));
    if (!answer) {
      return undefined;
    }
    this.observer.observe(q.kind, 'stale', answer.tiers[0] ?? 'none', (performance.now() - started) / 1000);
    return { ...servedInstead(answer, earlier, because), cache: 'stale' };
  }

  /** One query's result as objects (warming, tests; time columns as they are, whatever `compactTime` says); budget-checked like a request. */
  async answerOne(request: QueryRequest, query: RuleperfQuery, priority: Priority = 'user'): Promise<QueryResult> {
    const q = this.normalize(request, query);
    checkBudget([{ refId: query.refId, q }], schemaCardinality);
    const r = await this.resolve(q, priority);
    return 'frames' in r ? r : { frames: withMeta(r.answer, r.renderAs ?? q, r.cache, query.refId) };
  }

  /**
   * The response at once, without waiting on anything, when the request is one query whose
   * answer this process holds (the near cache): what most dashboard refreshes are. Undefined
   * otherwise; then `answer`.
   */
  answerNow(request: QueryRequest): ServiceAnswer | undefined {
    const nearHit = this.cache.nearHit;
    if (!nearHit || request.queries.length !== 1 || request.queries[0].hide) {
      return undefined;
    }
    const query = request.queries[0];
    const q = this.normalize(request, query);
    if (!this.withinBudget(q, query.refId)) {
      return undefined;
    } // `answer` says why
    const started = performance.now();
    const answer = nearHit.call(this.cache, q);
    if (!answer) {
      return undefined;
    }
    this.recordQuery(request, query);
    this.observer.observe(q.kind, 'hit', answer.tiers[0] ?? 'none', (performance.now() - started) / 1000);
    const body = renderResponse(answer, q, 'hit', query.refId, request.compactTime === true);
    return serviceAnswer(200, body, { cache: 'hit', tiers: answer.tiers });
  }

  /** Whether one query alone is within the request budget; remembered per (frozen, shared) normalized query. */
  private withinBudget(q: NormalizedQuery, refId: string): boolean {
    let within = this.budgets.get(q);
    if (within === undefined) {
      try {
        checkBudget([{ refId, q }], schemaCardinality);
        within = true;
      } catch (err) {
        if (!(err instanceof BudgetExceeded)) {
          throw err;
        }
        within = false;
      }
      if (Object.isFrozen(q)) {
        this.budgets.set(q, within);
      }
    }
    return within;
  }

  /** One query's part of the response. */
  private async part(
    request: QueryRequest,
    refId: string,
    query: RuleperfQuery,
    q: NormalizedQuery,
    asker?: AbortSignal
  ): Promise<Part> {
    const r = await this.resolve(q, 'user', asker);
    if ('frames' in r) {
      return failedPart(refId, r);
    }
    // Answered only: recorded before, queries refused busy were replayed by warming every
    // minute for ten minutes (100 heavy ones held both database slots 30-37 s a minute).
    this.recordQuery(request, query);
    const compactTime = request.compactTime === true;
    if (valueCount(r.answer) > MANY_VALUES) {
      // Its JSON (tens of ms for a few MB) a slice per loop turn, as its frames were built;
      // at once when this answer object has it already (a near-cache hit).
      await renderInTurns(r.answer, r.renderAs ?? q, r.cache, refId, compactTime);
    }
    const response = renderResponse(r.answer, r.renderAs ?? q, r.cache, refId, compactTime);
    return { member: resultMember(response), response, cache: r.cache, tiers: r.answer.tiers };
  }

  /**
   * The whole response (`{"results": {refId: result}}`) and its HTTP status. `refused`: queries
   * of the request already refused on their own (body-shape.ts), answered with their error beside the others.
   * `asker` aborts when the client has gone: its queries not begun yet are given up.
   */
  async answer(
    request: QueryRequest,
    refused: readonly RefusedQuery[] = [],
    asker?: AbortSignal
  ): Promise<ServiceAnswer> {
    // Not held in this process: everything from here (keys, Redis, the database) takes its
    // turn, so a burst of such requests never holds the loop in front of one that is (turns.ts).
    // Each query's normalizing, then its key and lookup, in a turn of its own, weighed by its
    // lists: a request of many queries is many steps.
    const visible = request.queries.filter((q) => !q.hide);
    if (!visible.length) {
      await loopTurns.next('lookup');
    }
    // (All asked at once: one after the other, each would wait for the whole queue again.)
    const normalized = await Promise.all(
      visible.map((query) =>
        loopTurns
          .next('lookup', lookupWeight(query))
          .then(() => ({ refId: query.refId, query, q: this.normalize(request, query) }))
      )
    );
    try {
      checkBudget(normalized, schemaCardinality);
    } catch (err) {
      if (!(err instanceof BudgetExceeded)) {
        throw err;
      }
      return serviceAnswer(400, Buffer.from(JSON.stringify({ error: err.message, details: err.details })));
    }
    // refIds are unique (the request schema refuses repeats), so each is one key.
    const parts =
      normalized.length === 1 && !refused.length
        ? [await this.part(request, normalized[0].refId, normalized[0].query, normalized[0].q, asker)]
        : [
            ...(await Promise.all(
              normalized.map(({ refId, query, q }) =>
                loopTurns.next('lookup', lookupWeight(query)).then(() => this.part(request, refId, query, q, asker))
              )
            )),
            ...refused.map(({ refId, error }) => failedPart(refId, { frames: [], error, status: 400 })),
          ];
    const failures = parts.flatMap((r) => (r.failure ? [r.failure] : []));
    // Every query refused for one kind of reason → the request as a whole is, with that status:
    // 503 when transient (busy before unavailable, retry after the longest wait), 400 when the
    // queries themselves are the reason (too heavy, a value the database cannot use).
    const status = failures[0]?.status;
    if (
      failures.length === parts.length &&
      (status === 503 || status === 400) &&
      failures.every((f) => f.status === status)
    ) {
      const members = parts.map((p) => p.member);
      if (status === 400) {
        return serviceAnswer(400, joinResults(members, failures[0].error));
      }
      const busy = failures.find((f) => f.error !== UNAVAILABLE);
      return serviceAnswer(503, joinResults(members, busy?.error ?? UNAVAILABLE), {
        retryAfter: Math.max(...failures.map((f) => f.retryAfter ?? 1)),
      });
    }
    const body = parts.length === 1 && parts[0].response ? parts[0].response : joinResults(parts.map((p) => p.member));
    return serviceAnswer(200, body, { cache: parts[0]?.cache, tiers: parts[0]?.tiers });
  }
}

/** A query's step in ordinary lookups: one, and one more for every 32 filter values it lists. */
export function lookupWeight(query: RuleperfQuery): number {
  let values = 0;
  for (const field of FILTER_FIELDS) {
    const v = query[field];
    values += Array.isArray(v) ? v.length : 0;
  }
  return 1 + Math.floor(values / 32);
}
