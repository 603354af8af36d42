/**
 * What the service does when a query leaves an option out, in one place. The editor
 * shows these as placeholders ("10", "p95 time, slowest first"), the request builder
 * fills kind and granularity with them, and src/types.test.ts checks each against the
 * service's own defaults.
 */
import type { Granularity, GroupByField, QueryKind, SeriesMetric, TopRulesSort } from './contract';

export const QUERY_DEFAULTS: {
  kind: QueryKind;
  granularity: Granularity;
  limit: number;
  sortBy: TopRulesSort;
  metrics: readonly SeriesMetric[];
  /** An error breakdown without a group-by is split by category. */
  errorBreakdownGroupBy: GroupByField;
} = {
  kind: 'stats',
  granularity: 'auto',
  limit: 10,
  sortBy: 'p95ExecutionTimeMs',
  metrics: ['p50ExecutionTimeMs', 'p95ExecutionTimeMs', 'p99ExecutionTimeMs'],
  errorBreakdownGroupBy: 'ruleCategory',
};

/** Which options each query kind uses; the request builder drops the rest and the editor hides them. */
export const KIND_FIELDS: Record<QueryKind, { metrics: boolean; groupBy: boolean; limit: boolean; sortBy: boolean }> = {
  stats: { metrics: false, groupBy: false, limit: false, sortBy: false },
  timeseries: { metrics: true, groupBy: true, limit: false, sortBy: false },
  topRules: { metrics: false, groupBy: false, limit: true, sortBy: true },
  errorBreakdown: { metrics: false, groupBy: true, limit: true, sortBy: false },
};
