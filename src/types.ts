/**
 * The plugin's query model and the constants its editors need at run time.
 *
 * The service's contract (server/contract.ts) is the single source of truth, but it
 * is imported here only with `import type`: its runtime values live next to zod, and
 * zod must never reach the plugin bundle. The arrays below copy the contract's
 * runtime arrays; src/types.test.ts asserts they are equal so they cannot drift.
 */
import type { DataSourceJsonData } from '@grafana/data';
import type { DataQuery } from '@grafana/schema';

import type {
  FilterField,
  Granularity,
  GroupByField,
  QueryKind,
  ReadyResponse,
  RuleperfFrameMeta,
  SeriesMetric,
  TopRulesSort,
  VariableName,
  VariablesResponse,
  QueryResponse,
  QueryRequestInput,
  RuleperfQueryInput,
} from '../server/contract';

export type {
  FilterField,
  Granularity,
  GroupByField,
  QueryKind,
  ReadyResponse,
  RuleperfFrameMeta,
  SeriesMetric,
  TopRulesSort,
  VariableName,
  VariablesResponse,
  QueryResponse,
  QueryRequestInput,
  RuleperfQueryInput,
};

export const QUERY_KINDS: readonly QueryKind[] = ['stats', 'timeseries', 'topRules', 'errorBreakdown'];
export const GRANULARITIES: readonly Granularity[] = ['auto', 'hourly', 'daily'];
export const STATUSES = ['SUCCESS', 'ERROR', 'TIMEOUT'] as const;
export const FILTER_FIELDS: readonly FilterField[] = [
  'metricType',
  'ruleId',
  'parserId',
  'ruleCategory',
  'sourceType',
  'status',
];
export const GROUP_BY_FIELDS: readonly GroupByField[] = [
  'metricType',
  'ruleId',
  'parserId',
  'ruleCategory',
  'sourceType',
  'status',
];
export const SERIES_METRICS: readonly SeriesMetric[] = [
  'executionCount',
  'throughputPerSecond',
  'avgExecutionTimeMs',
  'p50ExecutionTimeMs',
  'p95ExecutionTimeMs',
  'p99ExecutionTimeMs',
  'maxExecutionTimeMs',
  'errorCount',
  'timeoutCount',
  'errorRate',
  'recordsProcessed',
  'recordsFailed',
];
export const TOP_RULES_SORT: readonly TopRulesSort[] = [
  'p95ExecutionTimeMs',
  'p99ExecutionTimeMs',
  'avgExecutionTimeMs',
  'errorRate',
  'executionCount',
];
export const VARIABLE_NAMES: readonly VariableName[] = [
  'rules',
  'parsers',
  'categories',
  'metricTypes',
  'sourceTypes',
  'statuses',
];

/** The contract's limits the plugin enforces before sending (copied; checked against the contract in a test). */
export const MAX_DATA_POINTS = 10_000;
export const MAX_TOP_RULES_LIMIT = 1000;
export const MAX_FILTER_VALUES = 500;

/** The service's defaults, shown as placeholders so an empty field says what it means. */
export const DEFAULT_LIMIT = 10;
export const DEFAULT_SORT: TopRulesSort = 'p95ExecutionTimeMs';
export const DEFAULT_METRICS: readonly SeriesMetric[] = [
  'p50ExecutionTimeMs',
  'p95ExecutionTimeMs',
  'p99ExecutionTimeMs',
];

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

export const DEFAULT_QUERY: Partial<RuleperfQuery> = {
  kind: 'stats',
  granularity: 'auto',
};

/** Which query kinds use which optional fields; the request builder drops the rest. */
export const KIND_FIELDS: Record<QueryKind, { metrics: boolean; groupBy: boolean; limit: boolean; sortBy: boolean }> = {
  stats: { metrics: false, groupBy: false, limit: false, sortBy: false },
  timeseries: { metrics: true, groupBy: true, limit: false, sortBy: false },
  topRules: { metrics: false, groupBy: false, limit: true, sortBy: true },
  errorBreakdown: { metrics: false, groupBy: true, limit: true, sortBy: false },
};

/** Each filter's options come from one variables endpoint. */
export const FILTER_VARIABLE: Record<FilterField, VariableName> = {
  metricType: 'metricTypes',
  ruleId: 'rules',
  parserId: 'parsers',
  ruleCategory: 'categories',
  sourceType: 'sourceTypes',
  status: 'statuses',
};

export const KIND_LABELS: Record<QueryKind, { label: string; description: string }> = {
  stats: { label: 'Stats', description: 'One row: executions, latency percentiles, records, error rate' },
  timeseries: { label: 'Time series', description: 'Chosen metrics per time bucket, optionally split by a dimension' },
  topRules: { label: 'Top rules', description: 'The N slowest rules with name and category' },
  errorBreakdown: { label: 'Error breakdown', description: 'Errors and timeouts per dimension' },
};

export const GRANULARITY_LABELS: Record<Granularity, { label: string; description: string }> = {
  auto: { label: 'Auto', description: 'The service picks the coarsest rollup that fits the range and interval' },
  hourly: { label: 'Hourly', description: 'Always answer from the hourly rollup' },
  daily: { label: 'Daily', description: 'Always answer from the daily rollup' },
};

export const FILTER_LABELS: Record<FilterField, string> = {
  ruleId: 'Rule',
  parserId: 'Parser',
  ruleCategory: 'Category',
  metricType: 'Metric type',
  sourceType: 'Source type',
  status: 'Status',
};

export const METRIC_LABELS: Record<SeriesMetric, string> = {
  executionCount: 'Executions',
  throughputPerSecond: 'Throughput (/s)',
  avgExecutionTimeMs: 'Avg time (ms)',
  p50ExecutionTimeMs: 'p50 time (ms)',
  p95ExecutionTimeMs: 'p95 time (ms)',
  p99ExecutionTimeMs: 'p99 time (ms)',
  maxExecutionTimeMs: 'Max time (ms)',
  errorCount: 'Errors',
  timeoutCount: 'Timeouts',
  errorRate: 'Error rate',
  recordsProcessed: 'Records processed',
  recordsFailed: 'Records failed',
};

export const SORT_LABELS: Record<TopRulesSort, string> = {
  p95ExecutionTimeMs: 'p95 time, slowest first',
  p99ExecutionTimeMs: 'p99 time, slowest first',
  avgExecutionTimeMs: 'Avg time, slowest first',
  errorRate: 'Error rate, highest first',
  executionCount: 'Executions, most first',
};

/** Options stored in the data source's jsonData (visible to viewers: nothing secret here). */
export interface RuleperfOptions extends DataSourceJsonData {
  /** Base URL of the ruleperf service, e.g. http://ruleperf:8080; plugin.json's routes read it. */
  serviceUrl?: string;
}

/** Options stored encrypted by Grafana and only used server-side by the data proxy route. */
export interface RuleperfSecureOptions {
  apiToken?: string;
}
