/**
 * What the service does when a query leaves an option out, in one place. The editor
 * shows these as placeholders ("10", "p95 time, slowest first"), the request builder
 * fills kind and granularity with them, and src/types.test.ts checks each against the
 * service's own defaults.
 */
import {
  DEFAULTS,
  type Granularity,
  type GroupByField,
  type QueryKind,
  type SeriesMetric,
  type TopRulesSort,
} from './contract';

export const QUERY_DEFAULTS: {
  kind: QueryKind;
  granularity: Granularity;
  limit: number;
  sortBy: TopRulesSort;
  metrics: readonly SeriesMetric[];
  /** An error breakdown without a group-by is split by category. */
  errorBreakdownGroupBy: GroupByField;
  /** A grouped timeseries shows this many series (the busiest), the rest summed into "(other)". */
  seriesLimit: number;
} = {
  kind: DEFAULTS.kind,
  granularity: DEFAULTS.granularity,
  limit: DEFAULTS.limit,
  sortBy: DEFAULTS.sortBy,
  metrics: DEFAULTS.seriesMetrics,
  errorBreakdownGroupBy: DEFAULTS.errorBreakdownGroupBy,
  seriesLimit: DEFAULTS.seriesLimit,
};

/** Which options each query kind uses (the contract's): the request builder drops the rest and the editor hides them. */
export { KIND_FIELDS } from './contract';
