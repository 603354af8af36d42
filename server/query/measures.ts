/**
 * The figures of one answer row, derived from exact sums (averages are sum / count, never
 * averages of averages) and percentiles read from the row's merged histogram; and the
 * data-frame fields that carry them.
 */
import type { FieldJSON } from '../contract';
import type { PERCENTILE_COLUMNS } from './sql';
import { GAMMA, OFFSET, TOP_KEY } from './sketch';

type PercentileColumn = (typeof PERCENTILE_COLUMNS)[number];

export type Row = Record<string, any>;

const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

/** 10^0 … 10^22, each exact in a double. */
const POW10 = Array.from({ length: 23 }, (_, i) => Number(`1e${i}`));

/**
 * `v` to `digits` significant digits (exact for integers that fit): Number(v.toPrecision(digits)).
 * Every percentile of every point goes through here (4,300 values in a 24-hour per-minute
 * timeseries of three percentiles: 0.8 ms with toPrecision), so the usual case is arithmetic:
 * n = round(v · 10^k) for the k that leaves `digits` digits, then n / 10^k, which is the double
 * nearest n·10^-k as parsing the string gives (both exact powers of ten up to 10^22). Where
 * the product's rounding error could decide the rounding (within 1e-6 of a half) or log10 was
 * off by one, toPrecision decides.
 */
export function significant(v: number, digits: number): number {
  if (Number.isInteger(v) || !Number.isFinite(v)) {
    return v;
  }
  const k = digits - 1 - Math.floor(Math.log10(Math.abs(v)));
  if (k >= 0 && k <= 22 && digits <= 15) {
    const scale = POW10[k];
    const scaled = v * scale;
    const n = Math.round(scaled);
    const fraction = Math.abs(scaled - Math.trunc(scaled));
    const magnitude = Math.abs(n);
    if (Math.abs(fraction - 0.5) > 1e-6 && magnitude >= POW10[digits - 1] && magnitude < POW10[digits]) {
      return n / scale;
    }
  }
  return Number(v.toPrecision(digits));
}

const count = (row: Row | undefined) => num(row?.execution_count) ?? 0;

/**
 * The sketch's top key holds Infinity, NaN and every latency above GAMMA^2499 (about 2.3e17 ms)
 * alike, and stands for Infinity (sketch.ts); the keys below it hold up to that.
 */
const BELOW_TOP_KEY = GAMMA ** (TOP_KEY - 1 - OFFSET);

/**
 * Whether a row's latencies include values no figure can carry (Infinity, NaN, or in the
 * sketch's top key): its average, maximum or a percentile is then empty. The maximum is read
 * wherever a percentile is, the sum wherever an average is.
 */
export function hasUnreadableLatency(row: Row): boolean {
  const sum = row.exec_time_sum;
  const max = row.exec_time_max;
  return (
    (sum !== null && sum !== undefined && !Number.isFinite(Number(sum))) ||
    (max !== null && max !== undefined && !(Number(max) <= BELOW_TOP_KEY))
  );
}

/** The notice of an answer over such values. */
export const UNREADABLE_LATENCY_NOTICE = {
  severity: 'warning',
  text: 'Some executions in this range have a latency that is not a number a panel can show (Infinity or NaN, or more than about 2.3e17 ms): percentiles that reach them are left empty, as are averages and maxima over Infinity or NaN, and top rules ranks them slowest.',
} as const;

/** The integer sums of a row; past 2^53 a JSON number no longer carries each digit. */
const INTEGER_SUMS = [
  'execution_count',
  'records_processed',
  'records_failed',
  'error_count',
  'success_count',
  'timeout_count',
];

/** Whether a row holds a count or a sum above Number.MAX_SAFE_INTEGER (the database's bigint holds up to 9.2e18). */
export function hasInexactInteger(row: Row): boolean {
  return INTEGER_SUMS.some((column) => {
    const v = row[column];
    return v !== null && v !== undefined && Math.abs(Number(v)) > Number.MAX_SAFE_INTEGER;
  });
}

/** The notice of an answer holding such a figure. */
export const INEXACT_INTEGER_NOTICE = {
  severity: 'warning',
  text: 'Some counts or sums in this range are larger than 9,007,199,254,740,991 (2^53), past which a JSON number cannot carry every digit: they are shown to about 16 significant digits, their last digits rounded.',
} as const;

/**
 * What a ranking sorts by: the figure, except a percentile that reaches the sketch's top key
 * and a NaN rank above every number (Infinity), as percentile_cont and ORDER BY over the raw
 * rows would, where the answer shows them empty.
 */
export function rankValue(row: Row, seconds: number, name: MeasureName): number | null {
  const column = PERCENTILE_OF[name];
  const raw = column && count(row) > 0 ? num(row[column]) : null;
  if (raw !== null && !Number.isFinite(raw)) {
    return Infinity;
  }
  const v = FIGURES[name](row, seconds);
  return v !== null && Number.isNaN(v) ? Infinity : v;
}

/**
 * A percentile read off the merged histogram in SQL (sql.ts mergedSelect), clamped to the exact
 * extremes. A sketch's percentile is good to 1 %: six significant digits (5e-6) lose nothing of
 * it and take a third of the bytes of seventeen, in every point of every answer.
 */
function percentile(row: Row | undefined, column: PercentileColumn): number | null {
  const v = count(row) > 0 ? row![column] : null;
  // Infinity or NaN where it reaches the sketch's top key: no number (percentile_cont gives the same).
  if (v === null || v === undefined || !Number.isFinite(Number(v))) {
    return null;
  }
  // A NaN latency among the rows (the table lets one in) makes the maximum NaN: no bound then.
  const [min, max] = [num(row!.exec_time_min)!, num(row!.exec_time_max)!].map((b) => (Number.isNaN(b) ? null : b));
  return Math.max(min ?? -Infinity, Math.min(max ?? Infinity, significant(Number(v), 6)));
}

/** How each figure is read off a row; `seconds` is the time the row covers (for throughput). */
const FIGURES = {
  executionCount: (row: Row | undefined) => count(row),
  // Ratios of exact integers: ten significant digits (5e-10) are beyond any display and any check.
  throughputPerSecond: (row: Row | undefined, seconds: number) =>
    seconds > 0 ? significant(count(row) / seconds, 10) : null,
  avgExecutionTimeMs: (row: Row | undefined) => (count(row) > 0 ? num(row!.exec_time_sum)! / count(row) : null),
  p50ExecutionTimeMs: (row: Row | undefined) => percentile(row, 'p50'),
  p95ExecutionTimeMs: (row: Row | undefined) => percentile(row, 'p95'),
  p99ExecutionTimeMs: (row: Row | undefined) => percentile(row, 'p99'),
  minExecutionTimeMs: (row: Row | undefined) => (count(row) > 0 ? num(row!.exec_time_min) : null),
  maxExecutionTimeMs: (row: Row | undefined) => (count(row) > 0 ? num(row!.exec_time_max) : null),
  recordsProcessed: (row: Row | undefined) => num(row?.records_processed) ?? 0,
  recordsFailed: (row: Row | undefined) => num(row?.records_failed) ?? 0,
  errorCount: (row: Row | undefined) => num(row?.error_count) ?? 0,
  successCount: (row: Row | undefined) => num(row?.success_count) ?? 0,
  timeoutCount: (row: Row | undefined) => num(row?.timeout_count) ?? 0,
  errorRate: (row: Row | undefined) =>
    count(row) > 0 ? significant((num(row?.error_count) ?? 0) / count(row), 10) : null,
} satisfies Record<string, (row: Row | undefined, seconds: number) => number | null>;

export type MeasureName = keyof typeof FIGURES;

const PERCENTILE_OF: Partial<Record<MeasureName, PercentileColumn>> = {
  p50ExecutionTimeMs: 'p50',
  p95ExecutionTimeMs: 'p95',
  p99ExecutionTimeMs: 'p99',
};
export type Measures = Record<MeasureName, number | null>;

const percentileReads = (column: PercentileColumn) => ['execution_count', 'exec_time_min', 'exec_time_max', column];
/** The answer-row columns each figure reads (above): an answer asked for a few figures fetches only these. */
const READS: Record<MeasureName, readonly string[]> = {
  executionCount: ['execution_count'],
  throughputPerSecond: ['execution_count'],
  avgExecutionTimeMs: ['execution_count', 'exec_time_sum'],
  p50ExecutionTimeMs: percentileReads('p50'),
  p95ExecutionTimeMs: percentileReads('p95'),
  p99ExecutionTimeMs: percentileReads('p99'),
  minExecutionTimeMs: ['execution_count', 'exec_time_min'],
  maxExecutionTimeMs: ['execution_count', 'exec_time_max'],
  recordsProcessed: ['records_processed'],
  recordsFailed: ['records_failed'],
  errorCount: ['error_count'],
  successCount: ['success_count'],
  timeoutCount: ['timeout_count'],
  errorRate: ['execution_count', 'error_count'],
};

/** The columns the given figures read, execution_count always among them (rows without executions are dropped by it). */
export function columnsRead(names: readonly MeasureName[]): string[] {
  return [...new Set(['execution_count', ...names.flatMap((n) => READS[n])])];
}

/** One figure of a row (a timeseries reads only the metrics it was asked for, point by point). */
export function measure(row: Row | undefined, seconds: number, name: MeasureName): number | null {
  return FIGURES[name](row, seconds);
}

/** Every figure of a row; `seconds` is the time the row covers (for throughput). */
export function measures(row: Row | undefined, seconds: number): Measures {
  const out = {} as Measures;
  for (const name of Object.keys(FIGURES) as MeasureName[]) {
    out[name] = FIGURES[name](row, seconds);
  }
  return out;
}

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
