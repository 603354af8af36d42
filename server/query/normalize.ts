/**
 * Turns a validated query into its canonical form: filters as sorted, de-duplicated lists
 * under the contract's names, the kind's parameters with their defaults (and nothing the
 * kind does not use), the covered range (range.ts), and for timeseries the bucket width.
 * Two queries that must give the same answer normalize to the same value, which is what the
 * cache key hashes (so "last 24 hours" sent a few seconds later is the same entry).
 *
 * The value depends on the asked range only through the covered range and whether the two
 * differ (the notice), so it can be shared by every request covering the same minutes
 * (normalize-memo.ts).
 */
import {
  FILTER_FIELDS,
  type FilterField,
  type GroupByField,
  type QueryKind,
  type QueryRequest,
  type RuleperfQuery,
  type SeriesMetric,
  type TopRulesSort,
} from '../contract';
import type { RollupInfo } from './catalog';
import { KINDS } from './kinds';
import { levels, RETENTION_MARGIN_MS } from './plan';
import {
  chooseBucket,
  coverRange,
  coveredInHours,
  differsFromAsked,
  isMoving,
  MINUTE_MS,
  movingStep,
  RAW_MINUTES_MAX_SPAN,
  type TimeRange,
} from './range';

export interface NormalizedQuery {
  kind: QueryKind;
  /** Contract field → sorted distinct values; absent when unfiltered. */
  filters: Partial<Record<FilterField, string[]>>;
  groupBy: GroupByField | null;
  metrics: SeriesMetric[];
  /** Rows (top rules, error breakdown) or series (grouped timeseries) at most; 0 when unused. */
  limit: number;
  sortBy: TopRulesSort | null;
  /** What the answer covers (range.ts: as asked once settled, whole minutes while it moves, finer under an hour). */
  range: TimeRange;
  /** Whether the covered range differs from the asked one at all (the answer then says so). */
  differsFromAsked: boolean;
  /** Whether an end of it was moved to whole hours because raw rows are not kept there (the notice says why). */
  inWholeHours: boolean;
  /** The step a range ending now was moved forward by (range.ts movingStep; the notice says it); null once settled. */
  movingStepMs: number | null;
  /** Timeseries bucket width in ms; null for kinds without time buckets. */
  bucketMs: number | null;
  /**
   * The bucket width asked (Grafana's interval, maxDataPoints, granularity) when no rollup
   * holding the query's dimensions is as fine and the span is too long for raw minutes: the
   * answer has fewer points than asked, and says so. Null otherwise.
   */
  coarserThanAskedMs: number | null;
  /**
   * Why the points are further apart than asked: no rollup holding the dimensions is as fine
   * ('rollups'), or the width asked is not a whole multiple of the rollups' (15 minutes from
   * 10-minute buckets gives 20) and the answer holds totals per point, which count the wider
   * width ('totals': a count per point reads 33 % more than the interval the panel shows). Rates,
   * averages and percentiles mean the same at either width: no notice for them then. Asked finer
   * than a minute, the finest width ('minute': 1-second points on a "last 5 minutes" panel of
   * counts came a minute apart, each count a minute's, with nothing to say so). The rollups
   * as fine as asked keep fewer days than the range reaches back ('retention').
   */
  coarserBecause: 'rollups' | 'retention' | 'totals' | 'minute' | null;
  /** Every dimension the answer reads: filters, grouping, and the kind's own. */
  fields: FilterField[];
}

export type RequestRange = Pick<QueryRequest, 'range' | 'intervalMs' | 'maxDataPoints'>;

/** Timeseries metrics that sum over a point's width (a count per point): a wider point counts more. */
const PER_POINT_TOTALS: ReadonlySet<SeriesMetric> = new Set([
  'executionCount',
  'errorCount',
  'timeoutCount',
  'recordsProcessed',
  'recordsFailed',
]);
/** What normalizing reads of a request besides the query: the covered range and Grafana's interval. */
export interface Coverage {
  range: TimeRange;
  differsFromAsked: boolean;
  /** Whether an end was moved to whole hours: raw rows are not kept there (range.ts coverRange). */
  inWholeHours: boolean;
  movingStepMs: number | null;
  intervalMs?: number;
  maxDataPoints?: number;
}

/** The covered range of a request's range at `now`, with Grafana's interval; `rawKeptFrom`: where raw rows begin (null: kept whole). */
export function coverage(request: RequestRange, now = Date.now(), rawKeptFrom: number | null = null): Coverage {
  const range = coverRange(request.range, now, rawKeptFrom);
  return {
    range,
    differsFromAsked: differsFromAsked(range, request.range),
    inWholeHours: coveredInHours(range, request.range, rawKeptFrom),
    movingStepMs: isMoving(request.range, now) ? movingStep(request.range.to - request.range.from) : null,
    intervalMs: request.intervalMs,
    maxDataPoints: request.maxDataPoints,
  };
}

function asList(value: string | string[] | undefined): string[] | undefined {
  if (value === undefined) {
    return undefined;
  }
  return [...new Set(Array.isArray(value) ? value : [value])].sort();
}

/**
 * Where a rollup kept for a while (the minute tier: 7 days and an hour) stops offering its width
 * for a range starting at `from`: once it keeps less of the range than raw minutes may be read for
 * (RAW_MINUTES_MAX_SPAN). A 3-day range three weeks back was bucketed by 9 minutes, the minute
 * rollups' grid, and read three days of raw rows (all of them at that width); such a range takes
 * the widths of the rollups that keep it. Null for a rollup kept as long as the raw rows.
 */
function widthKeptUntil(r: RollupInfo, from: number): number | null {
  return r.retentionMs ? from + r.retentionMs - RETENTION_MARGIN_MS + RAW_MINUTES_MAX_SPAN : null;
}

/** When the widths a range starting at `from` may take next change (normalize-memo.ts: a remembered query is good until then). */
export function widthsChangeAt(rollups: readonly RollupInfo[], from: number, now: number): number {
  let at = Infinity;
  for (const r of rollups) {
    const until = widthKeptUntil(r, from);
    if (until !== null && until > now) {
      at = Math.min(at, until);
    }
  }
  return at;
}

/** The normalized query for a coverage (see `coverage`) at `now`. */
export function normalizeCovered(
  query: RuleperfQuery,
  c: Coverage,
  rollups: readonly RollupInfo[],
  now = Date.now()
): NormalizedQuery {
  const spec = KINDS[query.kind];
  const filters: Partial<Record<FilterField, string[]>> = {};
  for (const field of FILTER_FIELDS) {
    const list = asList(query[field] as string | string[] | undefined);
    if (list) {
      filters[field] = list;
    }
  }
  const params = spec.params(query);
  const fields = [
    ...new Set<FilterField>([
      ...(Object.keys(filters) as FilterField[]),
      ...(params.groupBy ? [params.groupBy] : []),
      ...spec.ownFields,
    ]),
  ].sort();
  const range = { from: c.range.from, to: c.range.to };
  const holding = spec.bucketed ? levels(rollups, fields) : [];
  const keeping = holding.filter((r) => (widthKeptUntil(r, range.from) ?? Infinity) > now);
  const bucketOptions = { intervalMs: c.intervalMs, maxDataPoints: c.maxDataPoints, granularity: query.granularity };
  const bucket = spec.bucketed
    ? chooseBucket(
        range,
        bucketOptions,
        keeping.map((r) => r.bucketMs)
      )
    : null;
  // Coarser only because the finer rollups no longer keep the range: said so, not "no finer rollup holds it".
  const forRetention =
    bucket !== null &&
    bucket.coarser &&
    keeping.length < holding.length &&
    !chooseBucket(
      range,
      bucketOptions,
      holding.map((r) => r.bucketMs)
    ).coarser;
  const askedWholeSeconds = bucket ? Math.ceil(bucket.askedMs / 1000) * 1000 : 0;
  // Nothing asked (no interval, no maxDataPoints, granularity auto): the width is the service's choice, said nowhere.
  const coarserBecause =
    !bucket || bucket.askedMs === 0
      ? null
      : bucket.coarser
        ? forRetention
          ? ('retention' as const)
          : ('rollups' as const)
        : bucket.bucketMs > askedWholeSeconds && params.metrics.some((m) => PER_POINT_TOTALS.has(m))
          ? bucket.askedMs < MINUTE_MS
            ? ('minute' as const)
            : ('totals' as const)
          : null;
  return {
    kind: query.kind,
    filters,
    ...params,
    range,
    differsFromAsked: c.differsFromAsked,
    inWholeHours: c.inWholeHours,
    movingStepMs: c.movingStepMs,
    bucketMs: bucket?.bucketMs ?? null,
    // As the notice shows it, in whole seconds, or milliseconds under a second (Grafana asks 200 ms
    // for a short range on a wide panel): few renderings per width a panel can show.
    // (No rollup is finer than a minute: a coarser rollup is said against a minute at least.)
    coarserThanAskedMs: coarserBecause
      ? shownWidth(coarserBecause === 'minute' ? bucket!.askedMs : Math.max(bucket!.askedMs, MINUTE_MS))
      : null,
    coarserBecause,
    fields,
  };
}

/** A width asked, as a notice says it: whole seconds, or whole milliseconds under a second. */
const shownWidth = (ms: number) => (ms < 1000 ? Math.ceil(ms) : Math.ceil(ms / 1000) * 1000);

export function normalizeQuery(
  request: RequestRange,
  query: RuleperfQuery,
  rollups: readonly RollupInfo[],
  now = Date.now(),
  rawKeptFrom: number | null = null
): NormalizedQuery {
  return normalizeCovered(query, coverage(request, now, rawKeptFrom), rollups, now);
}
