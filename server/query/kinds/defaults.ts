/** Defaults of the kinds' parameters. */
import type { GroupByField, SeriesMetric, TopRulesSort } from '../../contract';

export const DEFAULT_SERIES_METRICS: readonly SeriesMetric[] = ['p50ExecutionTimeMs', 'p95ExecutionTimeMs', 'p99ExecutionTimeMs'];
/** Rows of top rules and error breakdown. */
export const DEFAULT_ROW_LIMIT = 10;
/** Series of a grouped timeseries: the busiest groups, the rest summed into "(other)". */
export const DEFAULT_SERIES_LIMIT = 20;
export const DEFAULT_SORT: TopRulesSort = 'p95ExecutionTimeMs';
export const DEFAULT_BREAKDOWN_GROUP: GroupByField = 'ruleCategory';
/** The group holding everything past a grouped timeseries' series limit. */
export const OTHER_GROUP = '(other)';
