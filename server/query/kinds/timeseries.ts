/**
 * `timeseries`: chosen metrics per time bucket, optionally one series per value of a
 * dimension — the `limit` busiest groups over the range, everything else summed into one
 * "(other)" series, so a grouping by a dimension with thousands of values stays bounded.
 */
import type { SeriesMetric } from '../../contract';
import { columnsRead, measure, numberField, type Row } from '../measures';
import { floorTo, points } from '../range';
import { groupColumns, measureColumns, mergedSelect, Params, sourceRows } from '../sql';
import { DEFAULT_SERIES_LIMIT, DEFAULT_SERIES_METRICS, OTHER_GROUP } from './defaults';
import { seriesBound, type KindSpec } from './types';

/** Metrics read off the merged latency histograms (the rest are sums). */
const PERCENTILE_METRICS = new Set<SeriesMetric>(['p50ExecutionTimeMs', 'p95ExecutionTimeMs', 'p99ExecutionTimeMs']);
/** Metrics that are zero, not missing, in a bucket without executions. */
const COUNT_LIKE = new Set<SeriesMetric>([
  'executionCount',
  'throughputPerSecond',
  'errorCount',
  'timeoutCount',
  'recordsProcessed',
  'recordsFailed',
]);

export const timeseries: KindSpec = {
  params: (query) => ({
    groupBy: query.groupBy ?? null,
    metrics: [...new Set(query.metrics ?? DEFAULT_SERIES_METRICS)],
    limit: query.groupBy ? (query.limit ?? DEFAULT_SERIES_LIMIT) : 0,
    sortBy: null,
  }),
  ownFields: [],
  bucketed: true,
  names: () => ({ rules: false, parsers: false }),
  size(q, cardinality) {
    const series = seriesBound(q, cardinality);
    const n = points(q.range, q.bucketMs!) * series;
    return { rows: n, cells: n * (q.metrics.length + 1), frames: series };
  },
  mergesHistograms: (q) => q.metrics.some((m) => PERCENTILE_METRICS.has(m)),
  async read(db, q, plan) {
    const p = new Params();
    const o = { bucketMs: q.bucketMs, group: q.groupBy };
    const percentiles = q.metrics.some((m) => PERCENTILE_METRICS.has(m));
    const shape = percentiles ? 'fine' : 'counts';
    const src = sourceRows(q, plan.pieces, p, { shape, ...o });
    const g = groupColumns(o);
    let ctes = `src AS (\n  ${src}\n)`;
    if (q.groupBy) {
      // Grouped: the busiest `limit` groups keep their name, the rest become one series. The
      // busiest by their totals over the range, read from the widest rollups holding it (the
      // same sums as over the buckets' rows, from a few rows per group), in the same statement
      // (one snapshot), so the series' rows are read once. A value actually spelled "(other)" is
      // never named: its series would carry the same label as the rest's; it is in the rest.
      const whole = sourceRows(q, plan.wholeRange, p, { shape: 'counts', bucketMs: null, group: q.groupBy });
      const other = p.add(OTHER_GROUP);
      ctes = `top AS (
  SELECT grp FROM (
  ${whole}
  ) w WHERE grp IS DISTINCT FROM ${other} GROUP BY grp ORDER BY sum(execution_count) DESC, grp LIMIT ${p.add(q.limit)}
), src AS (
  SELECT bucket, CASE WHEN grp IN (SELECT grp FROM top) THEN grp ELSE ${other} END AS grp, ${measureColumns(shape)} FROM (
  ${src}
  ) s
)`;
    }
    const statement = {
      text: `WITH ${ctes}\n${mergedSelect(g, percentiles, db.native, columnsRead(q.metrics))}\nORDER BY ${g.map((c) => `a.${c}`).join(', ')}`,
      values: p.values,
    };
    return { rows: await db.rows(statement), statements: [{ statement }] };
  },
  *frames(q, rows, computedAt) {
    const bucketMs = q.bucketMs!;
    const groups = new Map<string, Map<number, Row>>();
    for (const row of rows) {
      const key = q.groupBy ? String(row.grp) : '';
      if (!groups.has(key)) {
        groups.set(key, new Map());
      }
      groups.get(key)!.set(new Date(row.bucket).getTime(), row);
    }
    if (!q.groupBy && groups.size === 0) {
      groups.set('', new Map());
    }
    const fields = (labels?: Record<string, string>) => [
      { name: 'time', type: 'time' as const },
      ...q.metrics.map((m) => numberField(m, labels)),
    ];
    if (groups.size === 0) {
      // Grouped, and no group has a row: one empty frame, so the covered range and notices still reach the panel.
      yield { schema: { name: 'timeseries', fields: fields() }, data: { values: [[], ...q.metrics.map(() => [])] } };
      return;
    }
    // "(other)" last; the others by name.
    const ordered = [...groups.keys()].sort((a, b) =>
      a === OTHER_GROUP ? 1 : b === OTHER_GROUP ? -1 : a < b ? -1 : a > b ? 1 : 0
    );
    const times: number[] = [];
    for (let t = floorTo(q.range.from, bucketMs); t < q.range.to; t += bucketMs) {
      times.push(t);
    }
    // The seconds each bucket covers: partial at the range's ends and at the live edge; none for
    // one whose part in the range begins after the answer was computed, unless it holds rows
    // (dated ahead: a producer's clock running fast), whose rates are then over that part.
    const seconds = times.map(
      (t) => Math.max(0, Math.min(t + bucketMs, q.range.to, Math.max(computedAt, t)) - Math.max(t, q.range.from)) / 1000
    );
    const ahead = (t: number) => (Math.min(t + bucketMs, q.range.to) - Math.max(t, q.range.from)) / 1000;
    for (const group of ordered) {
      const byTime = groups.get(group)!;
      const labels = q.groupBy ? { [q.groupBy]: group } : undefined;
      const values: unknown[][] = [times];
      const perBucket = times.map((t) => byTime.get(t));
      for (const metric of q.metrics) {
        values.push(
          // A bucket with no row: counts are 0 for the seconds it covers; one covering none (it
          // begins after the answer was computed: the future) has nothing, not zeros.
          perBucket.map((row, i) =>
            row
              ? measure(row, seconds[i] > 0 ? seconds[i] : ahead(times[i]), metric)
              : COUNT_LIKE.has(metric) && seconds[i] > 0
                ? 0
                : null
          )
        );
      }
      yield {
        schema: {
          name: q.groupBy ? group : 'timeseries',
          fields: fields(labels),
        },
        data: { values },
      };
    }
  },
};
