/**
 * The reference answers: the same questions asked of the raw `metrics` table with
 * exact SQL (percentile_cont, plain averages), to compare the service against.
 */
import type { Queryable } from '../server/db/types';
import { COLUMN_OF } from '../server/query/columns';

export interface RawStats {
  n: number;
  sum: number | null;
  min: number | null;
  max: number | null;
  p50: number | null;
  p95: number | null;
  p99: number | null;
  errors: number;
  timeouts: number;
  processed: number;
}

export function filterSql(filters: Record<string, string | string[] | undefined>, values: unknown[]): string {
  const parts: string[] = [];
  for (const [field, value] of Object.entries(filters)) {
    if (value === undefined) {
      continue;
    }
    const column = COLUMN_OF[field as keyof typeof COLUMN_OF];
    const list = Array.isArray(value) ? value : [value];
    values.push(list);
    // "(none)", the group of rows without the dimension, keeps those rows (the contract's NONE_GROUP).
    const none = list.includes('(none)') ? ` OR ${column} IS NULL` : '';
    parts.push(`(${column} = ANY($${values.length}::text[])${none})`);
  }
  return parts.length ? ' AND ' + parts.join(' AND ') : '';
}

/**
 * Exact figures over [from, to) per group; with bucketMs, per bucket too (keys
 * "<bucket start ms>|<group>").
 */
export async function rawStats(
  db: Queryable,
  from: number,
  to: number,
  filters: Record<string, string | string[] | undefined> = {},
  groupBy?: string,
  bucketMs?: number
): Promise<Map<string, RawStats>> {
  const values: unknown[] = [new Date(from), new Date(to)];
  const where = filterSql(filters, values);
  const group = groupBy ? `coalesce(${groupBy}, '(none)')` : "''";
  const g = bucketMs
    ? `(extract(epoch FROM date_bin('${bucketMs / 1000} seconds', time, '1970-01-01Z')) * 1000)::bigint || '|' || ${group}`
    : group;
  const { rows } = await db.query(
    `SELECT ${g} AS grp, count(*)::int AS n, sum(execution_time_ms) AS sum, min(execution_time_ms) AS min, max(execution_time_ms) AS max,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY execution_time_ms) AS p50,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY execution_time_ms) AS p95,
       percentile_cont(0.99) WITHIN GROUP (ORDER BY execution_time_ms) AS p99,
       count(*) FILTER (WHERE status = 'ERROR')::int AS errors, count(*) FILTER (WHERE status = 'TIMEOUT')::int AS timeouts,
       coalesce(sum(records_processed), 0)::float8 AS processed
     FROM metrics WHERE time >= $1 AND time < $2${where} GROUP BY 1`,
    values
  );
  return new Map(
    rows.map((r) => [r.grp, { ...r, sum: r.sum === null ? null : Number(r.sum), processed: Number(r.processed) }])
  );
}

/** Relative difference, with exact zeros equal. */
export function relErr(actual: number | null, expected: number | null): number {
  if (actual === null || expected === null) {
    return actual === expected ? 0 : Infinity;
  }
  if (expected === 0) {
    return actual === 0 ? 0 : Math.abs(actual);
  }
  return Math.abs(actual - expected) / Math.abs(expected);
}
