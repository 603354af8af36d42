/**
 * Turns result rows into Grafana data frames (the /api/ds/query wire shape), one kind
 * at a time. Derived figures are computed here from exact sums: averages are
 * sum / count (weighted), never averages of averages.
 */
import type { DataFrameJSON, FieldJSON, SeriesMetric } from '../contract';
import type { NormalizedQuery } from './normalize';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Row = Record<string, any>;

const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

function measures(row: Row | undefined, bucketMs: number) {
  const n = num(row?.execution_count) ?? 0;
  const ratio = (x: unknown) => (n > 0 ? (num(x) ?? 0) / n : null);
  return {
    executionCount: n,
    throughputPerSecond: n / (bucketMs / 1000),
    avgExecutionTimeMs: n > 0 ? num(row!.exec_time_sum)! / n : null,
    p50ExecutionTimeMs: n > 0 ? num(row!.p50) : null,
    p95ExecutionTimeMs: n > 0 ? num(row!.p95) : null,
    p99ExecutionTimeMs: n > 0 ? num(row!.p99) : null,
    minExecutionTimeMs: n > 0 ? num(row!.exec_time_min) : null,
    maxExecutionTimeMs: n > 0 ? num(row!.exec_time_max) : null,
    recordsProcessed: num(row?.records_processed) ?? 0,
    recordsFailed: num(row?.records_failed) ?? 0,
    errorCount: num(row?.error_count) ?? 0,
    successCount: num(row?.success_count) ?? 0,
    timeoutCount: num(row?.timeout_count) ?? 0,
    errorRate: ratio(row?.error_count),
  };
}

type Measures = ReturnType<typeof measures>;

const UNITS: Partial<Record<keyof Measures, string>> = {
  throughputPerSecond: 'reqps',
  avgExecutionTimeMs: 'ms',
  p50ExecutionTimeMs: 'ms',
  p95ExecutionTimeMs: 'ms',
  p99ExecutionTimeMs: 'ms',
  minExecutionTimeMs: 'ms',
  maxExecutionTimeMs: 'ms',
  errorRate: 'percentunit',
};

function numberField(name: keyof Measures, labels?: Record<string, string>): FieldJSON {
  const unit = UNITS[name];
  return { name, type: 'number', ...(labels ? { labels } : {}), ...(unit ? { config: { unit } } : {}) };
}

const STATS_FIELDS: Array<keyof Measures> = [
  'executionCount',
  'avgExecutionTimeMs',
  'p50ExecutionTimeMs',
  'p95ExecutionTimeMs',
  'p99ExecutionTimeMs',
  'minExecutionTimeMs',
  'maxExecutionTimeMs',
  'recordsProcessed',
  'recordsFailed',
  'errorCount',
  'successCount',
  'timeoutCount',
  'errorRate',
];

/** Metrics that are zero, not missing, in a bucket without executions. */
const COUNT_LIKE = new Set<SeriesMetric>(['executionCount', 'throughputPerSecond', 'errorCount', 'timeoutCount', 'recordsProcessed', 'recordsFailed']);

export function buildFrames(q: NormalizedQuery, rows: Row[], refId: string): DataFrameJSON[] {
  const bucketMs = q.route.bucketMs;
  switch (q.kind) {
    case 'stats': {
      const m = measures(rows[0], q.to - q.from);
      return [{ schema: { refId, name: 'stats', fields: STATS_FIELDS.map((f) => numberField(f)) }, data: { values: STATS_FIELDS.map((f) => [m[f]]) } }];
    }
    case 'timeseries': {
      const groups = new Map<string, Map<number, Row>>();
      for (const row of rows) {
        const key = q.groupBy ? String(row.grp) : '';
        if (!groups.has(key)) groups.set(key, new Map());
        groups.get(key)!.set(new Date(row.bucket).getTime(), row);
      }
      if (!q.groupBy && groups.size === 0) {
        groups.set('', new Map());
      }
      const times: number[] = [];
      for (let t = q.from; t < q.to; t += bucketMs) times.push(t);
      return [...groups.entries()].map(([group, byTime]) => {
        const labels = q.groupBy ? { [q.groupBy]: group } : undefined;
        const values: unknown[][] = [times];
        for (const metric of q.metrics) {
          values.push(
            times.map((t) => {
              const row = byTime.get(t);
              return row ? measures(row, bucketMs)[metric] : COUNT_LIKE.has(metric) ? 0 : null;
            })
          );
        }
        return {
          schema: {
            refId,
            name: q.groupBy ? group : 'timeseries',
            fields: [{ name: 'time', type: 'time' }, ...q.metrics.map((m) => numberField(m, labels))],
          },
          data: { values },
        };
      });
    }
    case 'topRules': {
      const cols: Array<keyof Measures> = ['executionCount', 'avgExecutionTimeMs', 'p50ExecutionTimeMs', 'p95ExecutionTimeMs', 'p99ExecutionTimeMs', 'maxExecutionTimeMs', 'errorCount', 'errorRate'];
      const ms = rows.map((r) => measures(r, bucketMs));
      return [
        {
          schema: {
            refId,
            name: 'topRules',
            fields: [
              { name: 'ruleId', type: 'string' },
              { name: 'ruleName', type: 'string' },
              { name: 'ruleCategory', type: 'string' },
              ...cols.map((c) => numberField(c)),
            ],
            meta: { preferredVisualisationType: 'table' },
          },
          data: { values: [rows.map((r) => r.grp), rows.map((r) => r.name ?? null), rows.map((r) => r.category ?? null), ...cols.map((c) => ms.map((m) => m[c]))] },
        },
      ];
    }
    case 'errorBreakdown': {
      const cols: Array<keyof Measures> = ['executionCount', 'errorCount', 'timeoutCount', 'errorRate'];
      const ms = rows.map((r) => measures(r, bucketMs));
      const withNames = q.groupBy === 'ruleId' || q.groupBy === 'parserId';
      return [
        {
          schema: {
            refId,
            name: 'errorBreakdown',
            fields: [
              { name: q.groupBy!, type: 'string' },
              ...(withNames ? [{ name: 'name', type: 'string' as const }] : []),
              ...cols.map((c) => numberField(c)),
            ],
            meta: { preferredVisualisationType: 'table' },
          },
          data: { values: [rows.map((r) => r.grp), ...(withNames ? [rows.map((r) => r.name ?? null)] : []), ...cols.map((c) => ms.map((m) => m[c]))] },
        },
      ];
    }
  }
}
