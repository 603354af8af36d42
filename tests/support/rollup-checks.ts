/** Compares every rollup with the same aggregation computed from raw rows, below its watermark. */
import assert from 'node:assert/strict';
import type { Pool } from 'pg';

export async function rollupDigest(pool: Pool, rollup: string): Promise<string> {
  const { rows } = await pool.query(
    `SELECT count(*)::int AS groups, coalesce(sum(execution_count), 0)::bigint AS n, coalesce(sum(exec_time_sum), 0) AS s,
            coalesce(sum(error_count), 0)::bigint AS e, md5(coalesce(string_agg(bucket::text || metric_type || coalesce(status, '') || execution_count::text || latency_sketch::text, ',' ORDER BY bucket, metric_type, status, execution_count, latency_sketch::text), '')) AS h
     FROM ${rollup}`
  );
  return JSON.stringify(rows[0]);
}

/** Every rollup equals the raw table below its watermark (from its oldest retained bucket): counts per bucket and sketch totals. */
export async function assertRollupsMatchRaw(pool: Pool): Promise<void> {
  const { rows: status } = await pool.query(
    'SELECT rollup, watermark, bucket_width, retained_from FROM ruleperf_rollup_status'
  );
  for (const s of status) {
    const { rows } = await pool.query(
      `WITH rr AS (SELECT bucket, sum(execution_count)::bigint AS n, sum(exec_time_sum) AS s, max(exec_time_max) AS mx,
                          sum((SELECT sum(e & 4294967295) FROM unnest(latency_sketch) AS e))::bigint AS sk
                   FROM ${s.rollup} WHERE bucket >= $3 GROUP BY bucket),
            raw AS (SELECT date_bin($2::interval, time, '2000-01-01Z') AS bucket, count(*)::bigint AS n, sum(execution_time_ms) AS s, max(execution_time_ms) AS mx
                    FROM metrics WHERE time < $1 AND time >= $3 GROUP BY 1)
       SELECT coalesce(rr.bucket, raw.bucket) AS bucket, rr.n AS rollup_n, raw.n AS raw_n, rr.sk AS sketch_n, rr.s AS rollup_s, raw.s AS raw_s, rr.mx AS rollup_max, raw.mx AS raw_max
       FROM rr FULL JOIN raw ON rr.bucket = raw.bucket
       WHERE rr.n IS DISTINCT FROM raw.n OR rr.sk IS DISTINCT FROM raw.n OR rr.mx IS DISTINCT FROM raw.mx
          OR abs(rr.s - raw.s) > 1e-9 * abs(raw.s)
       LIMIT 5`,
      [s.watermark, s.bucket_width, s.retained_from]
    );
    assert.deepEqual(
      rows,
      [],
      `${s.rollup} differs from raw rows below ${s.watermark?.toISOString?.() ?? s.watermark}`
    );
  }
}
