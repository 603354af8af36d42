/**
 * SQL building blocks shared by the query kinds. An answer is assembled from the pieces of
 * its plan (plan.ts): each piece yields rows of one shape (bucket, group, counts, sums, a
 * latency sketch) from a rollup or from raw rows; one outer query adds counts and sums per
 * output group and merges the sketches into one histogram per group, which the service
 * reads percentiles from (never percentiles of percentiles). Identifiers come only from
 * the rollup registry and fixed lists; every value is a parameter.
 */
import type { FilterField } from '../contract';
import { COLUMN_OF } from './columns';
import type { NormalizedQuery } from './normalize';
import type { Piece } from './plan';
import { representativeSql } from './sketch';

export interface Statement {
  text: string;
  values: unknown[];
}

export class Params {
  readonly values: unknown[] = [];
  add(value: unknown): string {
    this.values.push(value);
    return `$${this.values.length}`;
  }
}

export const ident = (name: string) => {
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`refusing identifier ${JSON.stringify(name)}`);
  return `"${name}"`;
};

/**
 * What each piece yields per row besides bucket and group: the fine sketch (answers), the
 * coarse one (keys / 16, for bounding percentiles cheaply), or only min, max and rank keys
 * (the cheapest bounds; computed on the fly where a rollup does not store them).
 */
export type SourceShape = 'fine' | 'coarse' | 'rankKeys';

const RAW_SKETCH = { fine: 'ruleperf_sketch_key(execution_time_ms)', coarse: 'ruleperf_sketch_key(execution_time_ms) / 16' };
const ROLLUP_SKETCH = { fine: 'latency_sketch', coarse: 'latency_coarse AS latency_sketch' };

function rawMeasures(shape: SourceShape): string {
  if (shape === 'rankKeys') {
    return `min(execution_time_ms) AS exec_time_min, max(execution_time_ms) AS exec_time_max,
      ruleperf_sketch_rank_keys(ruleperf_sketch(ruleperf_sketch_key(execution_time_ms))) AS rank_keys`;
  }
  return `count(*)::bigint AS execution_count,
      sum(execution_time_ms) AS exec_time_sum, min(execution_time_ms) AS exec_time_min, max(execution_time_ms) AS exec_time_max,
      ruleperf_sketch(${RAW_SKETCH[shape]}) AS latency_sketch,
      sum(records_processed)::bigint AS records_processed, sum(records_failed)::bigint AS records_failed,
      count(*) FILTER (WHERE status = 'ERROR')::bigint AS error_count,
      count(*) FILTER (WHERE status = 'SUCCESS')::bigint AS success_count,
      count(*) FILTER (WHERE status = 'TIMEOUT')::bigint AS timeout_count`;
}

function rollupMeasures(shape: SourceShape, storesRankKeys: boolean): string {
  if (shape === 'rankKeys') {
    return `exec_time_min, exec_time_max, ${storesRankKeys ? 'latency_rank_keys' : 'ruleperf_sketch_rank_keys(latency_sketch)'} AS rank_keys`;
  }
  return `execution_count, exec_time_sum, exec_time_min, exec_time_max, ${ROLLUP_SKETCH[shape]},
      records_processed, records_failed, error_count, success_count, timeout_count`;
}

/** The measure columns of a `fine` or `coarse` source row, in order (for re-selecting them). */
export const MEASURE_COLUMNS =
  'execution_count, exec_time_sum, exec_time_min, exec_time_max, latency_sketch, records_processed, records_failed, error_count, success_count, timeout_count';

export interface SourceOptions {
  shape: SourceShape;
  /** Output bucket width (timeseries), or null for one bucket over the whole range. */
  bucketMs: number | null;
  /** The dimension rows are grouped by, or null. */
  group: FilterField | null;
  /** Filters to apply (default: the query's). */
  filters?: Partial<Record<FilterField, string[]>>;
  /** Dimensions that must not be NULL (top rules reads rules only). */
  notNull?: readonly FilterField[];
  /** One more condition on every piece (fixed SQL from the kinds, never input). */
  extraCondition?: string;
}

/** The rows of every piece, in one shape: bucket, grp, then the shape's measures. */
export function sourceRows(q: NormalizedQuery, pieces: readonly Piece[], p: Params, o: SourceOptions): string {
  const width = o.bucketMs ? p.add(`${o.bucketMs / 1000} seconds`) : null;
  const grp = o.group ? `coalesce(${ident(COLUMN_OF[o.group])}, '(none)')` : "''";
  const filters = o.filters ?? q.filters;
  const conditions: string[] = [];
  for (const [field, values] of Object.entries(filters) as Array<[FilterField, string[]]>) {
    const column = ident(COLUMN_OF[field]);
    conditions.push(values.length === 1 ? `${column} = ${p.add(values[0])}` : `${column} = ANY(${p.add(values)}::text[])`);
  }
  for (const field of o.notNull ?? []) conditions.push(`${ident(COLUMN_OF[field])} IS NOT NULL`);
  if (o.extraCondition) conditions.push(o.extraCondition);
  const selects = pieces.map((piece) => {
    const time = piece.rollup ? 'bucket' : 'time';
    const bucket = width ? `date_bin(${width}::interval, ${time}, '1970-01-01Z')` : 'NULL::timestamptz';
    const where = [`${time} >= ${p.add(new Date(piece.from))}`, `${time} < ${p.add(new Date(piece.to))}`, ...conditions].join(' AND ');
    if (!piece.rollup) {
      return `SELECT ${bucket} AS bucket, ${grp} AS grp, ${rawMeasures(o.shape)}
    FROM metrics WHERE ${where} GROUP BY 1, 2`;
    }
    return `SELECT ${bucket} AS bucket, ${grp} AS grp, ${rollupMeasures(o.shape, piece.rollup.rankKeys)}
    FROM ${ident(piece.rollup.name)} WHERE ${where}`;
  });
  return selects.join('\n  UNION ALL\n  ');
}

/** Output grouping columns over the source rows. */
export function groupColumns(o: { bucketMs: number | null; group: FilterField | null }): string[] {
  return [...(o.bucketMs ? ['bucket'] : []), ...(o.group ? ['grp'] : [])];
}

/** The percentile levels every merged answer reads, in the order of its `pct` array. */
export const PERCENTILE_LEVELS = [0.5, 0.95, 0.99] as const;

/**
 * Counts, sums, minima and maxima per output group over CTE `src`, groups with no execution
 * dropped; with `withPercentiles`, `pct` holds p50, p95 and p99 read off the group's merged
 * latency histogram, interpolated as percentile_cont interpolates between the values at the
 * ranks around q·(n − 1) (clamp them to [min, max] on use). The result is a SELECT the kinds
 * wrap (order, limit, names).
 */
export function mergedSelect(g: string[], withPercentiles: boolean): string {
  const cols = g.length ? `${g.join(', ')}, ` : '';
  const agg = `SELECT ${cols}
    sum(execution_count)::bigint AS execution_count, sum(exec_time_sum) AS exec_time_sum,
    min(exec_time_min) AS exec_time_min, max(exec_time_max) AS exec_time_max,
    sum(records_processed)::bigint AS records_processed, sum(records_failed)::bigint AS records_failed,
    sum(error_count)::bigint AS error_count, sum(success_count)::bigint AS success_count, sum(timeout_count)::bigint AS timeout_count
  FROM src${g.length ? ` GROUP BY ${g.join(', ')}` : ''}`;
  if (!withPercentiles) return `SELECT a.* FROM (${agg}) a WHERE a.execution_count > 0`;
  const rank = (round: 'floor' | 'ceil') => `${round}(lvl * (n - 1))`;
  const at = (round: 'floor' | 'ceil') => `min(${representativeSql('k')}) FILTER (WHERE before <= ${rank(round)} AND ${rank(round)} < before + c)`;
  const pct = `SELECT ${cols}array_agg(lo + (h - floor(h)) * (hi - lo) ORDER BY lvl) AS pct FROM (
    SELECT ${cols}lvl, lvl * (n - 1) AS h, ${at('floor')} AS lo, ${at('ceil')} AS hi
    FROM (SELECT *, sum(c) OVER (${g.length ? `PARTITION BY ${g.join(', ')} ` : ''}ORDER BY k) - c AS before, sum(c) OVER (${g.length ? `PARTITION BY ${g.join(', ')}` : ''}) AS n
          FROM (SELECT ${cols}(e >> 32)::int AS k, sum(e & 4294967295)::float8 AS c FROM src, unnest(latency_sketch) AS e GROUP BY ${cols}k) hist) cum,
         unnest('{${PERCENTILE_LEVELS.join(',')}}'::float8[]) AS lvl
    GROUP BY ${cols}lvl, n) ranks
  ${g.length ? `GROUP BY ${g.join(', ')}` : ''}`;
  const join = g.length ? g.map((c) => `p.${c} = a.${c}`).join(' AND ') : 'true';
  return `SELECT a.*, p.pct FROM (${agg}) a LEFT JOIN (${pct}) p ON ${join} WHERE a.execution_count > 0`;
}

/** A statement as the query inspector shows it: the text, then each parameter's value. */
export function showStatement(s: Statement, title?: string): string {
  const shown = s.values.map((v, i) => `-- $${i + 1} = ${v instanceof Date ? v.toISOString() : JSON.stringify(v)}`);
  return [...(title ? [`-- ${title}`] : []), s.text, ...shown].join('\n');
}
