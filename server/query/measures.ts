/**
 * The figures of one answer row, derived from exact sums (averages are sum / count, never
 * averages of averages) and percentiles read from the row's merged histogram; and the
 * data-frame fields that carry them.
 */
import type { FieldJSON } from '../contract';

export type Row = Record<string, any>;

const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

/** `v` to `digits` significant digits (exact for integers that fit). */
export function significant(v: number, digits: number): number {
  return Number.isInteger(v) || !Number.isFinite(v) ? v : Number(v.toPrecision(digits));
}

/** Every figure of a row; `seconds` is the time the row covers (for throughput). */
export function measures(row: Row | undefined, seconds: number) {
  const n = num(row?.execution_count) ?? 0;
  const min = num(row?.exec_time_min);
  const max = num(row?.exec_time_max);
  // Read off the merged histogram in SQL (sql.ts mergedSelect), clamped to the exact extremes.
  // A sketch's percentile is good to 1 %: six significant digits (5e-6) lose nothing of it and
  // take a third of the bytes of seventeen, in every point of every answer.
  const clamp = (v: unknown) =>
    v === null || v === undefined ? null : Math.max(min!, Math.min(max!, significant(Number(v), 6)));
  const [p50, p95, p99] = n > 0 && Array.isArray(row?.pct) ? row.pct.map(clamp) : [null, null, null];
  return {
    executionCount: n,
    // Ratios of exact integers: ten significant digits (5e-10) are beyond any display and any check.
    throughputPerSecond: seconds > 0 ? significant(n / seconds, 10) : null,
    avgExecutionTimeMs: n > 0 ? num(row!.exec_time_sum)! / n : null,
    p50ExecutionTimeMs: p50,
    p95ExecutionTimeMs: p95,
    p99ExecutionTimeMs: p99,
    minExecutionTimeMs: n > 0 ? min : null,
    maxExecutionTimeMs: n > 0 ? max : null,
    recordsProcessed: num(row?.records_processed) ?? 0,
    recordsFailed: num(row?.records_failed) ?? 0,
    errorCount: num(row?.error_count) ?? 0,
    successCount: num(row?.success_count) ?? 0,
    timeoutCount: num(row?.timeout_count) ?? 0,
    errorRate: n > 0 ? significant((num(row?.error_count) ?? 0) / n, 10) : null,
  };
}

export type Measures = ReturnType<typeof measures>;
export type MeasureName = keyof Measures;

const UNITS: Partial<Record<MeasureName, string>> = {
  throughputPerSecond: 'reqps',
  avgExecutionTimeMs: 'ms',
  p50ExecutionTimeMs: 'ms',
  p95ExecutionTimeMs: 'ms',
  p99ExecutionTimeMs: 'ms',
  minExecutionTimeMs: 'ms',
  maxExecutionTimeMs: 'ms',
  errorRate: 'percentunit',
};

export function numberField(name: MeasureName, labels?: Record<string, string>): FieldJSON {
  const unit = UNITS[name];
  return { name, type: 'number', ...(labels ? { labels } : {}), ...(unit ? { config: { unit } } : {}) };
}
