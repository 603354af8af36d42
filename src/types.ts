/**
 * The plugin's query model and settings. The contract's values and types come from
 * ./contract, defaults from ./defaults, the words the editors show from ./labels.
 */
import type { DataSourceJsonData } from '@grafana/data';
import type { DataQuery } from '@grafana/schema';

import type { Granularity, GroupByField, QueryKind, SeriesMetric, TopRulesSort } from './contract';
import { QUERY_DEFAULTS } from './defaults';

/**
 * A filter as the editor stores it: one value or a list, each either a literal
 * (`r-17`) or a dashboard variable (`$rule`). Interpolation turns it into the
 * contract's `string | string[]`, or drops it when a variable is set to "All".
 */
export type FilterValue = string | string[];

export interface RuleperfQuery extends DataQuery {
  kind: QueryKind;
  granularity?: Granularity;
  metricType?: FilterValue;
  ruleId?: FilterValue;
  parserId?: FilterValue;
  ruleCategory?: FilterValue;
  sourceType?: FilterValue;
  /** Typed as a string, not the contract's enum, because it may hold `$status`. */
  status?: FilterValue;
  metrics?: SeriesMetric[];
  groupBy?: GroupByField;
  limit?: number;
  sortBy?: TopRulesSort;
}

/** A new query row: what Grafana's "Add query" creates. */
export const DEFAULT_QUERY: Partial<RuleperfQuery> = {
  kind: QUERY_DEFAULTS.kind,
  granularity: QUERY_DEFAULTS.granularity,
};

/** Options stored in the data source's jsonData (visible to viewers: nothing secret here). */
export interface RuleperfOptions extends DataSourceJsonData {
  /** Base URL of the ruleperf service, e.g. http://ruleperf:8080; plugin.json's routes read it. */
  serviceUrl?: string;
}

/**
 * Options stored encrypted by Grafana and only used server-side by the data proxy routes.
 * `adminToken` is optional: the invalidation route sends it when set, the read token otherwise.
 */
export interface RuleperfSecureOptions {
  apiToken?: string;
  adminToken?: string;
}
