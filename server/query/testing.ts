/** Fixtures for the unit tests beside the query modules: rollup catalogs and normalized queries, without a database. */
import type { RuleperfQuery } from '../contract';
import type { RollupInfo } from './catalog';
import type { NormalizedQuery } from './normalize';
import { DAY_MS, HOUR_MS, MINUTE_MS } from './range';

/** Every dimension column, as the full rollups hold them. */
export const FULL_DIMS = ['metric_type', 'rule_id', 'parser_id', 'rule_category', 'source_type', 'status'];

export const rollup = (name: string, bucketMs: number, dims: string[]): RollupInfo => ({
  name,
  tier: name.replace(/^metrics_/, ''),
  source: 'metrics',
  bucketMs,
  dims,
  refreshEveryMs: 300_000,
  rankKeys: false,
});

/** Full hourly and daily rollups and a minute total: enough for routing and bucket widths. */
export const SMALL_CATALOG: RollupInfo[] = [
  rollup('metrics_hourly', HOUR_MS, FULL_DIMS),
  rollup('metrics_daily', DAY_MS, FULL_DIMS),
  rollup('metrics_minute_total', MINUTE_MS, []),
];

/** A fixed "now" in the middle of a minute. */
export const NOW = Date.parse('2026-06-10T13:37:42.123Z');

/** A validated query with the defaults zod would apply. */
export const query = (q: Partial<RuleperfQuery>): RuleperfQuery =>
  ({ refId: 'A', kind: 'stats', granularity: 'auto', ...q }) as RuleperfQuery;

/** A normalized query (a one-minute stats answer unless overridden). */
export const normalized = (over: Partial<NormalizedQuery> = {}): NormalizedQuery => ({
  kind: 'stats',
  filters: {},
  groupBy: null,
  metrics: [],
  limit: 0,
  sortBy: null,
  differsFromAsked: false,
  inWholeHours: false,
  movingStepMs: null,
  range: { from: 0, to: MINUTE_MS },
  bucketMs: null,
  coarserThanAskedMs: null,
  coarserBecause: over.coarserThanAskedMs ? 'rollups' : null,
  fields: [],
  ...over,
});
