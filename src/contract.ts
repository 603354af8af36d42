/**
 * The query contract's runtime values, as the plugin needs them.
 *
 * server/contract.ts is the single source of truth. Today it also builds the service's
 * zod schemas, which must never reach the plugin bundle, so this module holds copies
 * of its runtime values under the contract's own names (src/types.test.ts asserts
 * they are equal). Once server/contract.ts is dependency-free, this whole file becomes
 *
 *   export * from '../server/contract';
 *
 * and nothing else in src/ changes: every plugin module imports these names from here.
 */
import type {
  FilterField,
  Granularity,
  GroupByField,
  QueryKind,
  SeriesMetric,
  TopRulesSort,
  VariableName,
} from '../server/contract';

export type {
  CacheStatus,
  DataFrameJSON,
  FilterField,
  Granularity,
  GroupByField,
  Notice,
  QueryKind,
  QueryRequestInput,
  QueryResponse,
  ReadyResponse,
  RuleperfFrameMeta,
  RuleperfQueryInput,
  SeriesMetric,
  Tier,
  TopRulesSort,
  VariableName,
  VariablesResponse,
} from '../server/contract';

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

export const LIMITS = {
  maxQueries: 50,
  maxFilterValues: 500,
  maxValueLength: 200,
  maxTopRulesLimit: 1000,
  maxDataPoints: 10_000,
  maxRangeDays: 400,
} as const;
