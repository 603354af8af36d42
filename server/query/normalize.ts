/**
 * Turns a validated query into its canonical form: filters as sorted, de-duplicated
 * lists; the rollup and bucket width chosen; the range aligned to those buckets.
 * Two queries that must give the same answer normalize to the same value, which is
 * what the cache key hashes (so "last 24 hours" sent a minute later is the same entry).
 */
import { FILTER_FIELDS, type FilterField, type GroupByField, type QueryRequest, type RuleperfQuery, type SeriesMetric, type TopRulesSort } from '../contract';
import { chooseRoute, type Route } from './router';
import type { RollupInfo } from './catalog';

export const FILTER_COLUMNS: Record<FilterField, string> = {
  metricType: 'metric_type',
  ruleId: 'rule_id',
  parserId: 'parser_id',
  ruleCategory: 'rule_category',
  sourceType: 'source_type',
  status: 'status',
};

export const DEFAULT_SERIES_METRICS: SeriesMetric[] = ['p50ExecutionTimeMs', 'p95ExecutionTimeMs', 'p99ExecutionTimeMs'];

export interface NormalizedQuery {
  kind: RuleperfQuery['kind'];
  /** Column → sorted distinct values; absent when unfiltered. */
  filters: Partial<Record<string, string[]>>;
  groupBy: GroupByField | null;
  metrics: SeriesMetric[];
  limit: number;
  sortBy: TopRulesSort;
  route: Route;
  from: number;
  to: number;
}

export interface RoutingSettings {
  /** auto granularity switches from hourly to daily at this span. */
  dailyFromMs: number;
}

function asList(value: string | string[] | undefined): string[] | undefined {
  if (value === undefined) {
    return undefined;
  }
  const list = [...new Set(Array.isArray(value) ? value : [value])].sort();
  return list.length ? list : undefined;
}

export function normalizeQuery(
  request: Pick<QueryRequest, 'range' | 'intervalMs' | 'maxDataPoints'>,
  query: RuleperfQuery,
  rollups: RollupInfo[],
  settings: RoutingSettings
): NormalizedQuery {
  const filters: Partial<Record<string, string[]>> = {};
  for (const field of FILTER_FIELDS) {
    const list = asList(query[field] as string | string[] | undefined);
    if (list) {
      filters[FILTER_COLUMNS[field]] = list;
    }
  }
  const groupBy = query.kind === 'timeseries' || query.kind === 'errorBreakdown' ? (query.groupBy ?? (query.kind === 'errorBreakdown' ? 'ruleCategory' : null)) : null;
  const neededDims = new Set(Object.keys(filters));
  if (groupBy) {
    neededDims.add(FILTER_COLUMNS[groupBy]);
  }
  if (query.kind === 'topRules') {
    neededDims.add('rule_id');
  }
  const route = chooseRoute({
    kind: query.kind,
    granularity: query.granularity,
    from: request.range.from,
    to: request.range.to,
    intervalMs: request.intervalMs,
    maxDataPoints: request.maxDataPoints,
    neededDims: [...neededDims],
    rollups,
    dailyFromMs: settings.dailyFromMs,
  });
  return {
    kind: query.kind,
    filters,
    groupBy,
    metrics: query.kind === 'timeseries' ? [...new Set(query.metrics ?? DEFAULT_SERIES_METRICS)] : [],
    limit: query.kind === 'topRules' || query.kind === 'errorBreakdown' ? (query.limit ?? 10) : 0,
    sortBy: query.sortBy ?? 'p95ExecutionTimeMs',
    route,
    from: route.alignedFrom,
    to: route.alignedTo,
  };
}
