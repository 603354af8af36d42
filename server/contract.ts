/**
 * The query contract shared by the service (runtime validation with zod) and the
 * Grafana plugin (which imports only the types, so zod never reaches the bundle).
 * Everything a client may send or receive is described here, in one place.
 */
import { z } from 'zod/v4';

export const QUERY_KINDS = ['stats', 'timeseries', 'topRules', 'errorBreakdown'] as const;
export const GRANULARITIES = ['auto', 'hourly', 'daily'] as const;
export const STATUSES = ['SUCCESS', 'ERROR', 'TIMEOUT'] as const;

/** Filters a query may carry; each is one value or a list (Grafana multi-value variables). */
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

export const TOP_RULES_SORT = ['p95ExecutionTimeMs', 'p99ExecutionTimeMs', 'avgExecutionTimeMs', 'errorRate', 'executionCount'] as const;

/** Names accepted by GET /api/v1/variables/:name. */
export const VARIABLE_NAMES = ['rules', 'parsers', 'categories', 'metricTypes', 'sourceTypes', 'statuses'] as const;

export const LIMITS = {
  maxQueries: 50,
  maxFilterValues: 500,
  maxValueLength: 200,
  maxTopRulesLimit: 1000,
  maxDataPoints: 10_000,
  maxRangeDays: 400,
} as const;

export type QueryKind = (typeof QUERY_KINDS)[number];
export type Granularity = (typeof GRANULARITIES)[number];
export type FilterField = (typeof FILTER_FIELDS)[number];
export type GroupByField = (typeof GROUP_BY_FIELDS)[number];
export type SeriesMetric = (typeof SERIES_METRICS)[number];
export type TopRulesSort = (typeof TOP_RULES_SORT)[number];
export type VariableName = (typeof VARIABLE_NAMES)[number];

const filterValue = z
  .string()
  .min(1)
  .max(LIMITS.maxValueLength)
  .refine((v) => !v.includes('\u0000'), 'must not contain NUL characters');
const filter = z.union([filterValue, z.array(filterValue).max(LIMITS.maxFilterValues)]).optional();

/** A time: epoch milliseconds (number or digit string) or an ISO-8601 string. */
const instant = z.union([z.number().finite(), z.string().max(64)]).transform((v, ctx) => {
  const ms = typeof v === 'number' ? v : /^\d+$/.test(v) ? Number(v) : Date.parse(v);
  if (!Number.isFinite(ms) || ms < 0 || ms > 8.64e15) {
    ctx.addIssue({ code: 'custom', message: 'must be epoch milliseconds or an ISO-8601 time' });
    return z.NEVER;
  }
  return Math.trunc(ms);
});

export const querySchema = z.object({
  refId: z.string().min(1).max(64).default('A'),
  kind: z.enum(QUERY_KINDS).default('stats'),
  granularity: z.enum(GRANULARITIES).default('auto'),
  metricType: filter,
  ruleId: filter,
  parserId: filter,
  ruleCategory: filter,
  sourceType: filter,
  status: z.union([z.enum(STATUSES), z.array(z.enum(STATUSES)).max(STATUSES.length)]).optional(),
  /** timeseries: which metrics to return (default p50/p95/p99). */
  metrics: z.array(z.enum(SERIES_METRICS)).min(1).max(SERIES_METRICS.length).optional(),
  /** timeseries and errorBreakdown: split into one series / row per value of this dimension. */
  groupBy: z.enum(GROUP_BY_FIELDS).optional(),
  /** topRules and errorBreakdown: how many rows (default 10). */
  limit: z.number().int().min(1).max(LIMITS.maxTopRulesLimit).optional(),
  /** topRules: the ordering (default p95, slowest first). */
  sortBy: z.enum(TOP_RULES_SORT).optional(),
  hide: z.boolean().optional(),
});

export const queryRequestSchema = z
  .object({
    range: z.object({ from: instant, to: instant }),
    intervalMs: z.number().int().min(1).max(366 * 86_400_000).optional(),
    maxDataPoints: z.number().int().min(1).max(LIMITS.maxDataPoints).optional(),
    queries: z.array(querySchema).min(1).max(LIMITS.maxQueries),
  })
  .superRefine((req, ctx) => {
    const { from, to } = req.range;
    if (to <= from) {
      ctx.addIssue({ code: 'custom', path: ['range', 'to'], message: 'must be after range.from' });
    } else if (to - from > LIMITS.maxRangeDays * 86_400_000) {
      ctx.addIssue({
        code: 'custom',
        path: ['range'],
        message: `must not span more than ${LIMITS.maxRangeDays} days`,
      });
    }
    const seen = new Set<string>();
    req.queries.forEach((q, i) => {
      if (seen.has(q.refId)) {
        ctx.addIssue({ code: 'custom', path: ['queries', i, 'refId'], message: 'must be unique' });
      }
      seen.add(q.refId);
    });
  });

export const invalidateSchema = z.union([
  z.object({ ruleId: filterValue }).strict(),
  z.object({ parserId: filterValue }).strict(),
  z.object({ all: z.literal(true) }).strict(),
]);

/** What a client sends (before defaults are applied). */
export type RuleperfQueryInput = z.input<typeof querySchema>;
/** A query after validation, with defaults applied. */
export type RuleperfQuery = z.output<typeof querySchema>;
export type QueryRequestInput = z.input<typeof queryRequestSchema>;
export type QueryRequest = z.output<typeof queryRequestSchema>;
export type InvalidateRequest = z.output<typeof invalidateSchema>;

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
  /** Rollups that answered, finest last, plus `raw` when the live edge was read. */
  tiers: Tier[];
  /** The range actually answered, aligned to the rollup's buckets (epoch ms). */
  alignedRange: { from: number; to: number };
  /** Bucket width of the answer in ms. */
  bucketMs: number;
  /** Rollup data is complete up to this instant (epoch ms); later rows come from the raw table. */
  watermark: number | null;
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
  data: { values: unknown[][] };
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
  cache: { state: 'up' | 'degraded' | 'disabled' };
}

export interface ErrorResponse {
  error: string;
  details?: Array<{ path: string; message: string }>;
}
