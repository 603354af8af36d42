/** Words the editors show for the contract's values. */
import type { CacheStatus, FilterField, Granularity, QueryKind, SeriesMetric, TopRulesSort } from './contract';

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

export const CACHE_LABELS: Record<CacheStatus, string> = {
  hit: 'cache hit',
  miss: 'cache miss, read from the database',
  stale: 'stale cache entry, refreshing in the background',
  bypass: 'cache bypassed',
};

// Rollup names read "<grain>[_by_<dimension>]"; a few dimensions are abbreviated in them.
const WIDTH_WORDS: Record<string, string> = { min: 'minute', h: 'hour', d: 'day' };
const DIMENSION_WORDS: Record<string, string> = { type: 'metric type', 'category type': 'category and metric type' };

/**
 * A tier as words, derived from the rollup's name so that a rollup added to the
 * registry (say `minute_by_rule`) is named without a change here:
 * `hourly` → "hourly rollup", `daily_by_type` → "daily rollup by metric type",
 * `hourly_total` → "hourly rollup of totals", `raw` → "raw rows (live edge)".
 */
export function tierLabel(tier: string): string {
  const name = tier.replace(/^metrics_/, '');
  if (name === 'raw') {
    return 'raw rows (live edge)';
  }
  const [grain, ...rest] = name.split('_').filter(Boolean);
  // "10min", "6h": a width in the name.
  const width = /^(\d+)(min|h|d)$/.exec(grain ?? '');
  if (!grain || !(width || /^[a-z]+$/.test(grain))) {
    return name.replace(/_/g, ' ');
  }
  const base = width ? `${width[1]}-${WIDTH_WORDS[width[2]]} rollup` : `${grain} rollup`;
  if (rest.length === 0) {
    return base;
  }
  if (rest[0] === 'by' && rest.length > 1) {
    const dimension = rest.slice(1).join(' ');
    return `${base} by ${DIMENSION_WORDS[dimension] ?? dimension}`;
  }
  if (rest.length === 1 && rest[0] === 'total') {
    return `${base} of totals`;
  }
  return `${base} (${rest.join(' ')})`;
}
