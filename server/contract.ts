/**
 * The query contract shared by the service and the Grafana plugin: query kinds, filters,
 * limits, defaults, request and response shapes. Dependency-free on purpose, so the plugin
 * can import its runtime values without pulling anything server-only into its bundle. The
 * service validates requests with zod schemas built on these constants
 * (server/http/validation.ts, which also checks at compile time that the schemas and the
 * types below agree).
 */

export const QUERY_KINDS = ['stats', 'timeseries', 'topRules', 'errorBreakdown'] as const;
export const GRANULARITIES = ['auto', 'hourly', 'daily'] as const;
export const STATUSES = ['SUCCESS', 'ERROR', 'TIMEOUT'] as const;

/** Filters a query may carry; each is one value or a non-empty list (Grafana multi-value variables). */
export const FILTER_FIELDS = ['metricType', 'ruleId', 'parserId', 'ruleCategory', 'sourceType', 'status'] as const;
/** Dimensions a timeseries or error breakdown may be grouped by. */
export const GROUP_BY_FIELDS = ['metricType', 'ruleId', 'parserId', 'ruleCategory', 'sourceType', 'status'] as const;

/** Per-bucket metrics a timeseries can return. */
export const SERIES_METRICS = [
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
] as const;

export const TOP_RULES_SORT = [
  'p95ExecutionTimeMs',
  'p99ExecutionTimeMs',
  'avgExecutionTimeMs',
  'errorRate',
  'executionCount',
] as const;

/** Names accepted by GET /api/v1/variables/:name. */
export const VARIABLE_NAMES = ['rules', 'parsers', 'categories', 'metricTypes', 'sourceTypes', 'statuses'] as const;

/** The fields of a query that ruleperf reads (besides Grafana's own, below). */
export const QUERY_FIELDS = [
  'refId',
  'kind',
  'granularity',
  ...FILTER_FIELDS,
  'metrics',
  'groupBy',
  'limit',
  'sortBy',
  'hide',
] as const;

/**
 * Fields Grafana itself puts on a query (its `DataQuery`: datasource, key, queryType, and
 * what `DataSourceWithBackend` adds to each target: datasourceId, intervalMs, maxDataPoints,
 * queryCachingTTL). Accepted so that a target copied from a dashboard or the query inspector
 * works as it is. Ignored, except intervalMs and maxDataPoints: when the request has neither of
 * its own and every query says the same, they are the request's (validation.ts).
 */
export const GRAFANA_QUERY_FIELDS = [
  'datasource',
  'datasourceId',
  'key',
  'queryType',
  'intervalMs',
  'maxDataPoints',
  'queryCachingTTL',
] as const;

export const LIMITS = {
  maxQueries: 50,
  maxFilterValues: 500,
  maxValueLength: 200,
  maxRefIdLength: 64,
  maxTopRulesLimit: 1000,
  maxDataPoints: 10_000,
  /** Items a request's lists may hold in all (its queries, and every value of their lists): the plugin splits a panel's queries to keep under it. */
  maxListItems: 10_000,
  maxIntervalMs: 366 * 86_400_000,
  maxRangeDays: 400,
  /** Instants must lie in [0, maxInstantMs]: 1970-01-01 to 9999-12-31 (UTC), four-digit years. */
  maxInstantMs: 253_402_300_799_999,
} as const;

/** What the service assumes for a field a query leaves out. */
export const DEFAULTS = {
  refId: 'A',
  kind: 'stats',
  granularity: 'auto',
  /** timeseries: the metrics returned when `metrics` is omitted. */
  seriesMetrics: ['p50ExecutionTimeMs', 'p95ExecutionTimeMs', 'p99ExecutionTimeMs'],
  /** topRules and errorBreakdown: rows returned when `limit` is omitted. */
  limit: 10,
  /** topRules: the ordering when `sortBy` is omitted (slowest first). */
  sortBy: 'p95ExecutionTimeMs',
  /** errorBreakdown: the dimension when `groupBy` is omitted. */
  errorBreakdownGroupBy: 'ruleCategory',
  /** timeseries with groupBy: series returned when `limit` is omitted (the busiest groups; the rest summed into "(other)"). */
  seriesLimit: 20,
} as const satisfies {
  refId: string;
  kind: QueryKind;
  granularity: Granularity;
  seriesMetrics: readonly SeriesMetric[];
  limit: number;
  sortBy: TopRulesSort;
  errorBreakdownGroupBy: GroupByField;
  seriesLimit: number;
};

export type QueryKind = (typeof QUERY_KINDS)[number];

/** The value Grafana stores for a variable set to "All" (also usable as a custom all value): never a filter value. */
export const GRAFANA_ALL_VALUE = '$__all';

/**
 * The group of rows without a value of the grouped dimension (a parser's rows grouped by
 * rule). As a filter value it keeps exactly those rows, so a drill-down from that group
 * (Grafana's "filter for value") shows the group's own figures.
 */
export const NONE_GROUP = '(none)';
/** The series of every value a grouped answer does not name: not a value, so no filter value. */
export const OTHER_GROUP = '(other)';

/**
 * Which options each query kind uses: the plugin's request builder sends only these and its
 * editor shows only these; the service refuses the others (a topRules "grouped by" a parser
 * would otherwise answer ungrouped). A timeseries' limit applies once it is grouped.
 */
export const KIND_FIELDS: Record<QueryKind, { metrics: boolean; groupBy: boolean; limit: boolean; sortBy: boolean }> = {
  stats: { metrics: false, groupBy: false, limit: false, sortBy: false },
  timeseries: { metrics: true, groupBy: true, limit: true, sortBy: false },
  topRules: { metrics: false, groupBy: false, limit: true, sortBy: true },
  errorBreakdown: { metrics: false, groupBy: true, limit: true, sortBy: false },
};
export type Granularity = (typeof GRANULARITIES)[number];
export type Status = (typeof STATUSES)[number];
export type FilterField = (typeof FILTER_FIELDS)[number];
export type GroupByField = (typeof GROUP_BY_FIELDS)[number];
export type SeriesMetric = (typeof SERIES_METRICS)[number];
export type TopRulesSort = (typeof TOP_RULES_SORT)[number];
export type VariableName = (typeof VARIABLE_NAMES)[number];
export type GrafanaQueryField = (typeof GRAFANA_QUERY_FIELDS)[number];

/** A filter: one value or a non-empty list of values (an empty list is refused: it would match nothing). */
export type FilterValue = string | string[];

/**
 * A time as a client may send it: epoch milliseconds (a number or a digit string), an
 * ISO-8601 time (UTC when it has no offset), or Grafana's relative syntax evaluated in UTC
 * (`now`, `now-24h`, `now-7d/d`, `now/d`; units s m h d w M Q y).
 */
export type InstantInput = number | string;

interface QueryFields {
  metricType?: FilterValue;
  ruleId?: FilterValue;
  parserId?: FilterValue;
  ruleCategory?: FilterValue;
  sourceType?: FilterValue;
  status?: Status | Status[];
  /** timeseries: which metrics to return (default `DEFAULTS.seriesMetrics`). */
  metrics?: SeriesMetric[];
  /** timeseries and errorBreakdown: one series / row per value of this dimension. */
  groupBy?: GroupByField;
  /** topRules and errorBreakdown: how many rows (default `DEFAULTS.limit`); grouped timeseries: how many series (default `DEFAULTS.seriesLimit`), the rest summed into "(other)". */
  limit?: number;
  /** topRules: the ordering (default `DEFAULTS.sortBy`). */
  sortBy?: TopRulesSort;
  /** Grafana's "hide response": the query is validated but not answered. */
  hide?: boolean;
}

/** One query as a client sends it (before defaults are applied). Any other field is refused. */
export interface RuleperfQueryInput extends QueryFields, Partial<Record<GrafanaQueryField, unknown>> {
  refId?: string;
  kind?: QueryKind;
  granularity?: Granularity;
}

/** A query after validation: defaults applied, Grafana's own fields dropped. */
export interface RuleperfQuery extends QueryFields {
  refId: string;
  kind: QueryKind;
  granularity: Granularity;
}

/** POST /api/v1/query, as a client sends it. */
export interface QueryRequestInput {
  /** `raw` is accepted (and ignored) so that Grafana's serialized TimeRange can be sent as it is. */
  range: { from: InstantInput; to: InstantInput; raw?: unknown };
  intervalMs?: number;
  maxDataPoints?: number;
  /** Send evenly spaced time columns as their steps (`data.steps`); see compactTimeColumns. */
  compactTime?: boolean;
  queries: RuleperfQueryInput[];
}

/** A validated request: instants resolved to epoch milliseconds. */
export interface QueryRequest {
  /**
   * `movesWithNow`: its `to` was given relative to now (`now-5m`, not rounded with `/`): the
   * range moves with every request, as one ending now does, and is covered in whole steps too.
   */
  range: { from: number; to: number; movesWithNow?: boolean };
  intervalMs?: number;
  maxDataPoints?: number;
  compactTime?: boolean;
  queries: RuleperfQuery[];
}

/** POST /api/v1/invalidate (needs the admin token when tokens are set). */
export type InvalidateRequest = { ruleId: string } | { parserId: string } | { all: true };

// ---- Responses (Grafana's data-frame JSON, as /api/ds/query returns it) ----

/**
 * A tier that answered: a rollup's registry name without `metrics_` ("hourly", "daily_by_rule",
 * "minute_total", …; read from the database at run time, see server/query/catalog.ts) or "raw".
 */
export type Tier = string;
export type CacheStatus = 'hit' | 'miss' | 'stale' | 'bypass';

export interface FieldJSON {
  name: string;
  type: 'time' | 'number' | 'string' | 'boolean';
  labels?: Record<string, string>;
  config?: { displayName?: string; unit?: string; decimals?: number };
}

export interface Notice {
  severity: 'info' | 'warning' | 'error';
  text: string;
}

/** Service-specific frame meta, under `meta.custom`. */
export interface RuleperfFrameMeta {
  /** Rollups that answered, coarsest first, plus `raw` when raw rows were read. */
  tiers: Tier[];
  /** The range the answer covers (epoch ms): the asked range, or when it ends now, moved forward to whole minutes (under an hour, to at most a sixtieth of its span). A notice says so when it differs from the asked one by more than a second. */
  coveredRange: { from: number; to: number };
  /** Timeseries bucket width in ms (null for other kinds). */
  bucketMs: number | null;
  /** Rollup data is complete up to this instant (epoch ms); later rows come from the raw table. */
  watermark: number | null;
  /** When the answer was computed (epoch ms): rows after it are not in it. */
  computedAt: number;
  cache: CacheStatus;
}

export interface DataFrameJSON {
  schema: {
    refId?: string;
    name?: string;
    fields: FieldJSON[];
    meta?: {
      executedQueryString?: string;
      notices?: Notice[];
      custom?: RuleperfFrameMeta;
      preferredVisualisationType?: string;
    };
  };
  data: {
    values: unknown[][];
    /** Per field, parallel to `values`: a time column sent as its steps (its values then `[]`); see compactTimeColumns. */
    steps?: Array<TimeSteps | null>;
  };
}

/** The most values the service sends as steps: a timeseries has at most maxDataPoints buckets. */
const MAX_STEPS_SENT = LIMITS.maxDataPoints;
/**
 * The most a client builds from steps: fixed on the wire, far above what any service sends (a
 * plugin older than a service that allows more points still expands its frames), and bounded
 * (8 MB of timestamps), so steps claiming more are refused rather than built.
 */
const MAX_STEPS_BUILT = 1_000_000;

/** An evenly spaced column: `count` values `start`, `start + step`, … */
export interface TimeSteps {
  start: number;
  step: number;
  count: number;
}

/**
 * A frame as sent to a client that asked for `compactTime`: each time column whose values
 * step evenly (a timeseries' buckets: 721 epoch milliseconds for a day by 2 minutes, 10 KB of
 * JSON) goes as `{start, step, count}` in `data.steps`, its values `[]`. The frame itself is
 * not changed. Other columns, and time columns with a gap, fewer than 3 values or more than
 * maxDataPoints, go as they are.
 */
export function compactTimeColumns(frame: DataFrameJSON): DataFrameJSON {
  let steps: Array<TimeSteps | null> | undefined;
  frame.schema.fields.forEach((field, i) => {
    const column = frame.data.values[i];
    const even = field.type === 'time' && column ? evenSteps(column) : null;
    if (even) {
      steps ??= frame.schema.fields.map(() => null);
      steps[i] = even;
    }
  });
  if (!steps) {
    return frame;
  }
  const kept = steps;
  return { schema: frame.schema, data: { values: frame.data.values.map((v, i) => (kept[i] ? [] : v)), steps: kept } };
}

function evenSteps(column: readonly unknown[]): TimeSteps | null {
  if (
    column.length < 3 ||
    column.length > MAX_STEPS_SENT ||
    typeof column[0] !== 'number' ||
    typeof column[1] !== 'number'
  ) {
    return null;
  }
  const start = column[0];
  const step = column[1] - start;
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(step) || step <= 0) {
    return null;
  }
  for (let i = 2; i < column.length; i++) {
    if (column[i] !== start + i * step) {
      return null;
    }
  }
  return { start, step, count: column.length };
}

/** The frame compactTimeColumns was given, from what it made (the plugin does this before Grafana reads the frames). */
export function expandTimeColumns<F extends { data?: object }>(frame: F): F {
  const data = frame.data as Partial<DataFrameJSON['data']> | undefined;
  const steps = data?.steps;
  if (!Array.isArray(steps) || !Array.isArray(data?.values)) {
    return frame;
  }
  // The other columns' length, which a column sent as steps must have (Grafana pads short columns).
  const length = data.values.find((column, i) => !steps[i])?.length;
  const values = data.values.map((column, i) => {
    const s = steps[i];
    if (!s) {
      return column;
    }
    const valid =
      [s.start, s.step, s.count].every(Number.isSafeInteger) &&
      s.step > 0 &&
      s.count >= 0 &&
      s.count <= MAX_STEPS_BUILT &&
      Array.isArray(column) &&
      column.length === 0 &&
      (length === undefined || s.count === length);
    if (!valid) {
      throw new Error(`a time column's steps are not valid: ${JSON.stringify(s)}`);
    }
    return Array.from({ length: s.count }, (_, k) => s.start + k * s.step);
  });
  const { steps: _expanded, ...rest } = data;
  return { ...frame, data: { ...rest, values } };
}

export interface QueryResult {
  frames: DataFrameJSON[];
  error?: string;
  status?: number;
}

export interface QueryResponse {
  results: Record<string, QueryResult>;
}

export interface VariableValue {
  value: string;
  text: string;
}

export interface VariablesResponse {
  values: VariableValue[];
}

export interface ReadyResponse {
  status: 'ready' | 'not_ready';
  database: { ok: boolean; flavour?: 'timescale' | 'postgres'; schemaVersion?: number; error?: string };
  /**
   * `warmed`: whether the first pass computing the provisioned dashboards' answers has
   * finished; until then (within READY_WAITS_FOR_WARMING_SECONDS) the service is not ready,
   * so a load balancer sends users to instances whose answers are cached. Absent from older
   * services.
   */
  cache: { state: 'up' | 'degraded' | 'disabled'; warmed?: boolean };
  /**
   * What an operator should fix although the service works (for example a published default
   * token). Shown in full to callers with a valid token; others are told only that there are some.
   * Always sent by this service (absent from older ones, so clients must not require it).
   */
  warnings?: string[];
}

export interface ErrorResponse {
  error: string;
  details?: Array<{ path: string; message: string }>;
}
