/**
 * Turns a validated query into its canonical form: filters as sorted, de-duplicated lists
 * under the contract's names, the kind's parameters with their defaults (and nothing the
 * kind does not use), the covered range (range.ts), and for timeseries the bucket width.
 * Two queries that must give the same answer normalize to the same value, which is what the
 * cache key hashes (so "last 24 hours" sent a few seconds later is the same entry).
 */
import { FILTER_FIELDS, type FilterField, type GroupByField, type QueryKind, type QueryRequest, type RuleperfQuery, type SeriesMetric, type TopRulesSort } from '../contract';
import type { RollupInfo } from './catalog';
import { KINDS } from './kinds';
import { levels } from './plan';
import { coverRange, timeseriesBucket, type TimeRange } from './range';

export interface NormalizedQuery {
  kind: QueryKind;
  /** Contract field → sorted distinct values; absent when unfiltered. */
  filters: Partial<Record<FilterField, string[]>>;
  groupBy: GroupByField | null;
  metrics: SeriesMetric[];
  /** Rows (top rules, error breakdown) or series (grouped timeseries) at most; 0 when unused. */
  limit: number;
  sortBy: TopRulesSort | null;
  /** What the client asked. */
  asked: TimeRange;
  /** What the answer covers (range.ts: as asked once settled, whole minutes while it moves). */
  range: TimeRange;
  /** Timeseries bucket width in ms; null for kinds without time buckets. */
  bucketMs: number | null;
  /** Every dimension the answer reads: filters, grouping, and the kind's own. */
  fields: FilterField[];
}

export type RequestRange = Pick<QueryRequest, 'range' | 'intervalMs' | 'maxDataPoints'>;

function asList(value: string | string[] | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  return [...new Set(Array.isArray(value) ? value : [value])].sort();
}

export function normalizeQuery(request: RequestRange, query: RuleperfQuery, rollups: readonly RollupInfo[], now = Date.now()): NormalizedQuery {
  const spec = KINDS[query.kind];
  const filters: Partial<Record<FilterField, string[]>> = {};
  for (const field of FILTER_FIELDS) {
    const list = asList(query[field] as string | string[] | undefined);
    if (list) filters[field] = list;
  }
  const params = spec.params(query);
  const fields = [...new Set<FilterField>([...(Object.keys(filters) as FilterField[]), ...(params.groupBy ? [params.groupBy] : []), ...spec.ownFields])].sort();
  const asked = { from: request.range.from, to: request.range.to };
  const range = coverRange(asked, now);
  const bucketMs = spec.bucketed
    ? timeseriesBucket(range.to - range.from, { intervalMs: request.intervalMs, maxDataPoints: request.maxDataPoints, granularity: query.granularity }, levels(rollups, fields).map((r) => r.bucketMs))
    : null;
  return { kind: query.kind, filters, ...params, asked, range, bucketMs, fields };
}
