/** Defaults of the kinds' parameters: the contract's (shared with the plugin), under the names the kinds use. */
import { DEFAULTS, type GroupByField, type SeriesMetric, type TopRulesSort } from '../../contract';

export const DEFAULT_SERIES_METRICS: readonly SeriesMetric[] = DEFAULTS.seriesMetrics;
/** Rows of top rules and error breakdown. */
export const DEFAULT_ROW_LIMIT: number = DEFAULTS.limit;
/** Series of a grouped timeseries: the busiest groups, the rest summed into "(other)". */
export const DEFAULT_SERIES_LIMIT: number = DEFAULTS.seriesLimit;
export const DEFAULT_SORT: TopRulesSort = DEFAULTS.sortBy;
export const DEFAULT_BREAKDOWN_GROUP: GroupByField = DEFAULTS.errorBreakdownGroupBy;
/** The group holding everything past a grouped timeseries' series limit. */
export { OTHER_GROUP } from '../../contract';
