/**
 * Builds the parameterized SQL for a normalized query. The answer is assembled from up to
 * three stretches of the aligned range, each read at the finest tier that is complete
 * there: the primary rollup below its watermark, the finer rollup up to its own, and raw
 * rows after that (the live edge). All three yield rows of one shape, then one outer query
 * adds counts and sums and merges latency sketches per output group, and reads
 * percentiles off the merged histogram (never percentiles of percentiles). Identifiers
 * come only from the rollup registry and fixed lists; every value is a parameter.
 */
import type { Tier } from '../contract';
import { FILTER_COLUMNS, type NormalizedQuery } from './normalize';
import { representativeSql } from './sketch';

export interface BuiltQuery {
  text: string;
  values: unknown[];
  tiers: Tier[];
}

export class Params {
  readonly values: unknown[] = [];
  add(value: unknown): string {
    this.values.push(value);
    return `$${this.values.length}`;
  }
}

const ident = (name: string) => {
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) {
    throw new Error(`refusing identifier ${JSON.stringify(name)}`);
  }
  return `"${name}"`;
};

/**
 * What each stretch yields per row besides counts: the fine sketch (answers), the coarse one
 * (keys / 16, for bounding percentiles cheaply), or only min, max and rank keys (the
 * cheapest bounds; rollups that store them, see sql/postgres/004_rank_keys.sql).
 */
export type SourceShape = 'fine' | 'coarse' | 'rankKeys';

const SKETCH_FROM_RAW = { fine: 'ruleperf_sketch_key(execution_time_ms)', coarse: 'ruleperf_sketch_key(execution_time_ms) / 16' };
const SKETCH_FROM_ROLLUP = { fine: 'latency_sketch', coarse: 'latency_coarse AS latency_sketch' };

const measuresFromRaw = (shape: SourceShape) =>
  shape === 'rankKeys'
    ? `min(execution_time_ms) AS exec_time_min, max(execution_time_ms) AS exec_time_max,
      ruleperf_sketch_rank_keys(ruleperf_sketch(ruleperf_sketch_key(execution_time_ms))) AS rank_keys`
    : `count(*)::bigint AS execution_count,
      sum(execution_time_ms) AS exec_time_sum, min(execution_time_ms) AS exec_time_min, max(execution_time_ms) AS exec_time_max,
      ruleperf_sketch(${SKETCH_FROM_RAW[shape]}) AS latency_sketch,
      sum(records_processed)::bigint AS records_processed, sum(records_failed)::bigint AS records_failed,
      count(*) FILTER (WHERE status = 'ERROR')::bigint AS error_count,
      count(*) FILTER (WHERE status = 'SUCCESS')::bigint AS success_count,
      count(*) FILTER (WHERE status = 'TIMEOUT')::bigint AS timeout_count`;
const measuresFromRollup = (shape: SourceShape) =>
  shape === 'rankKeys'
    ? 'exec_time_min, exec_time_max, latency_rank_keys AS rank_keys'
    : `execution_count, exec_time_sum, exec_time_min, exec_time_max, ${SKETCH_FROM_ROLLUP[shape]},
      records_processed, records_failed, error_count, success_count, timeout_count`;

export const SORT_SQL: Record<NormalizedQuery['sortBy'], string> = {
  p95ExecutionTimeMs: 'b.p95',
  p99ExecutionTimeMs: 'b.p99',
  avgExecutionTimeMs: 'b.exec_time_sum / b.execution_count',
  errorRate: 'b.error_count::float8 / b.execution_count',
  executionCount: 'b.execution_count',
};

interface Stretch {
  table: string; // a rollup or 'metrics'
  timeColumn: 'bucket' | 'time';
  from: number;
  to: number;
  tier: Tier;
}

/** Splits [from, to) between the primary rollup, the finer rollup and raw rows. */
export function stretches(q: NormalizedQuery, watermarks: Map<string, Date | null>): Stretch[] {
  const out: Stretch[] = [];
  let cursor = q.from;
  const take = (table: string, timeColumn: Stretch['timeColumn'], until: number, tier: Tier) => {
    const end = Math.min(until, q.to);
    if (end > cursor) {
      out.push({ table, timeColumn, from: cursor, to: end, tier });
      cursor = end;
    }
  };
  const { primary, finer } = q.route;
  take(primary.name, 'bucket', watermarks.get(primary.name)?.getTime() ?? -Infinity, primary.tier);
  if (finer) {
    take(finer.name, 'bucket', watermarks.get(finer.name)?.getTime() ?? -Infinity, finer.tier);
  }
  take('metrics', 'time', Infinity, 'raw');
  return out;
}

/** The output grouping: expressions over the unified rows, and their names. */
function groupColumns(q: NormalizedQuery): string[] {
  switch (q.kind) {
    case 'stats':
      return [];
    case 'timeseries':
      return q.groupBy ? ['bucket', 'grp'] : ['bucket'];
    case 'topRules':
      return ['grp'];
    case 'errorBreakdown':
      return ['grp'];
  }
}

/** The rows of every stretch, in one shape: bucket, grp, counts, sums and a sketch. */
export function sourceRows(
  q: NormalizedQuery,
  watermarks: Map<string, Date | null>,
  p: Params,
  shape: SourceShape,
  /** One more condition on every stretch (fixed SQL from this module's callers, never input). */
  extraCondition?: string
): { sql: string; tiers: Tier[] } {
  const parts = stretches(q, watermarks);
  const grpColumn = q.kind === 'topRules' ? 'rule_id' : q.groupBy ? FILTER_COLUMNS[q.groupBy] : null;
  const bucketWidth = q.kind === 'timeseries' ? p.add(`${q.route.bucketMs / 1000} seconds`) : '';
  const origin = q.kind === 'timeseries' ? p.add(new Date(0).toISOString()) : '';

  const filterSql = (extra: string[]) => {
    const conditions = [...extra];
    for (const [column, values] of Object.entries(q.filters)) {
      conditions.push(values!.length === 1 ? `${ident(column)} = ${p.add(values![0])}` : `${ident(column)} = ANY(${p.add(values)}::text[])`);
    }
    if (q.kind === 'topRules') {
      conditions.push('rule_id IS NOT NULL');
    }
    if (extraCondition) conditions.push(extraCondition);
    return conditions.join(' AND ');
  };

  const selects = parts.map((s) => {
    const time = ident(s.timeColumn);
    const bucketExpr = q.kind === 'timeseries' ? `date_bin(${bucketWidth}::interval, ${time}, ${origin}::timestamptz)` : 'NULL::timestamptz';
    // NULL dimension values (a parser run has no rule) form their own group, shown as "(none)".
    const grpExpr = grpColumn ? `coalesce(${ident(grpColumn)}, '(none)')` : "''";
    const where = filterSql([`${time} >= ${p.add(new Date(s.from))}`, `${time} < ${p.add(new Date(s.to))}`]);
    if (s.table === 'metrics') {
      return `SELECT ${bucketExpr} AS bucket, ${grpExpr} AS grp, ${measuresFromRaw(shape)}
    FROM metrics WHERE ${where} GROUP BY 1, 2`;
    }
    return `SELECT ${bucketExpr} AS bucket, ${grpExpr} AS grp, ${measuresFromRollup(shape)}
    FROM ${ident(s.table)} WHERE ${where}`;
  });
  return { sql: selects.join('\n  UNION ALL\n  '), tiers: parts.map((s) => s.tier) };
}

export function buildQuery(q: NormalizedQuery, watermarks: Map<string, Date | null>): BuiltQuery {
  const p = new Params();
  const src = sourceRows(q, watermarks, p, 'fine');
  const g = groupColumns(q);
  const gList = g.length ? g.join(', ') : "''";
  const needPercentiles = q.kind !== 'errorBreakdown';
  const rep = representativeSql('h.k');
  const quantile = (name: string, quant: number) => {
    // percentile_cont's rank, interpolated between the values at the ranks around it.
    const h = `(${quant} * (h.n - 1))`;
    return `min(${rep}) FILTER (WHERE h.before <= floor(${h}) AND floor(${h}) < h.before + h.c) AS ${name}_lo,
      min(${rep}) FILTER (WHERE h.before <= ceil(${h}) AND ceil(${h}) < h.before + h.c) AS ${name}_hi,
      ${h} - floor(${h}) AS ${name}_f`;
  };
  const finish = (name: string) =>
    `greatest(a.exec_time_min, least(a.exec_time_max, q.${name}_lo + q.${name}_f * (q.${name}_hi - q.${name}_lo))) AS ${name}`;

  const base = `WITH src AS (
  ${src.sql}
), agg AS (
  SELECT ${g.length ? g.join(', ') + ',' : ''}
    sum(execution_count)::bigint AS execution_count, sum(exec_time_sum) AS exec_time_sum,
    min(exec_time_min) AS exec_time_min, max(exec_time_max) AS exec_time_max,
    sum(records_processed)::bigint AS records_processed, sum(records_failed)::bigint AS records_failed,
    sum(error_count)::bigint AS error_count, sum(success_count)::bigint AS success_count, sum(timeout_count)::bigint AS timeout_count
  FROM src ${g.length ? `GROUP BY ${gList}` : ''}
)${
    needPercentiles
      ? `, hist AS (
  SELECT ${g.length ? g.join(', ') + ',' : ''} (e >> 32)::int AS k, sum(e & 4294967295)::float8 AS c
  FROM src, unnest(latency_sketch) AS e
  GROUP BY ${g.length ? g.join(', ') + ',' : ''} k
), cum AS (
  SELECT *, sum(c) OVER (${g.length ? `PARTITION BY ${gList} ` : ''}ORDER BY k) - c AS before,
         sum(c) OVER (${g.length ? `PARTITION BY ${gList}` : ''}) AS n
  FROM hist
), q AS (
  SELECT ${g.length ? g.map((c) => `h.${c}`).join(', ') + ',' : ''}
      ${quantile('p50', 0.5)},
      ${quantile('p95', 0.95)},
      ${quantile('p99', 0.99)}
  FROM cum h
  GROUP BY ${g.length ? g.map((c) => `h.${c}`).join(', ') + ',' : ''} h.n
)`
      : ''
  }
SELECT ${g.length ? g.map((c) => `a.${c}`).join(', ') + ',' : ''} a.execution_count, a.exec_time_sum, a.exec_time_min, a.exec_time_max,
  a.records_processed, a.records_failed, a.error_count, a.success_count, a.timeout_count${
    needPercentiles ? `,\n  ${finish('p50')}, ${finish('p95')}, ${finish('p99')}` : ''
  }
FROM agg a${needPercentiles ? ` LEFT JOIN q ON ${g.length ? g.map((c) => `q.${c} = a.${c}`).join(' AND ') : 'true'}` : ''}
WHERE a.execution_count > 0`;

  let text: string;
  switch (q.kind) {
    case 'timeseries':
      text = `${base}\nORDER BY ${g.map((c) => `a.${c}`).join(', ')}`;
      break;
    case 'topRules': {
      const order = SORT_SQL[q.sortBy];
      text = `SELECT b.*, r.rule_name AS name, r.rule_category AS category FROM (\n${base}\n) b
LEFT JOIN rules r ON r.rule_id = b.grp
ORDER BY ${order} DESC NULLS LAST, b.grp LIMIT ${p.add(q.limit)}`;
      break;
    }
    case 'errorBreakdown': {
      const names = q.groupBy === 'ruleId' ? 'LEFT JOIN rules n ON n.rule_id = b.grp' : q.groupBy === 'parserId' ? 'LEFT JOIN parsers n ON n.parser_id = b.grp' : '';
      const nameCol = q.groupBy === 'ruleId' ? 'n.rule_name' : q.groupBy === 'parserId' ? 'n.parser_name' : 'NULL::text';
      text = `SELECT b.*, ${nameCol} AS name FROM (\n${base}\n) b ${names}
ORDER BY b.error_count + b.timeout_count DESC, b.grp LIMIT ${p.add(q.limit)}`;
      break;
    }
    default:
      text = base;
  }
  return { text, values: p.values, tiers: src.tiers };
}
