/**
 * Brings the rollups up to date. PostgreSQL flavour: ruleperf_refresh() recomputes the
 * invalidated and newly completed buckets in one transaction. TimescaleDB flavour:
 * refresh_continuous_aggregate per rollup, sources first, each up to the last complete
 * bucket of its source (where TimescaleDB's own jobs run, this is harmless extra work).
 * Both run under an advisory lock so only one instance refreshes at a time.
 */
import type { Pool, PoolClient } from 'pg';
import type { Flavour } from './migrate';

export interface RefreshReport {
  rollup: string;
  oldWatermark: Date | null;
  newWatermark: Date | null;
  durationMs: number;
}

export interface RollupStatus {
  rollup: string;
  source: string;
  bucketMs: number;
  dims: string[];
  refreshEveryMs: number;
  watermark: Date | null;
  lastRefreshAt: Date | null;
  lastDurationMs: number | null;
}

const LOCK_KEY = "hashtext('ruleperf_refresh')";

/** pg returns ±infinity timestamps as non-Date values; those mean "nothing materialized". */
function finite(d: unknown): Date | null {
  return d instanceof Date && Number.isFinite(d.getTime()) ? d : null;
}

export async function rollupStatus(db: Pool | PoolClient): Promise<RollupStatus[]> {
  const { rows } = await db.query(
    `SELECT rollup, source, extract(epoch FROM bucket_width) * 1000 AS bucket_ms, dims,
            extract(epoch FROM refresh_every) * 1000 AS refresh_ms, watermark, last_refresh_at, last_duration_ms
     FROM ruleperf_rollup_status ORDER BY position`
  );
  return rows.map((r) => ({
    rollup: r.rollup,
    source: r.source,
    bucketMs: Number(r.bucket_ms),
    dims: r.dims,
    refreshEveryMs: Number(r.refresh_ms),
    watermark: finite(r.watermark),
    lastRefreshAt: r.last_refresh_at,
    lastDurationMs: r.last_duration_ms === null ? null : Number(r.last_duration_ms),
  }));
}

/** Refreshes all rollups (or `only`); returns null when another instance holds the lock. */
export async function refreshRollups(
  pool: Pool,
  flavour: Flavour,
  options: { only?: string[]; until?: Date } = {}
): Promise<RefreshReport[] | null> {
  const until = options.until ?? new Date();
  const client = await pool.connect();
  try {
    if (flavour === 'postgres') {
      await client.query('BEGIN');
      try {
        const { rows } = await client.query('SELECT * FROM ruleperf_refresh($1::text[], $2)', [options.only ?? null, until]);
        await client.query('COMMIT');
        if (rows.length === 0) {
          return null;
        }
        return rows.map((r) => ({
          rollup: r.rollup,
          oldWatermark: finite(r.old_watermark),
          newWatermark: finite(r.new_watermark),
          durationMs: Number(r.duration_ms),
        }));
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      }
    }
    return await refreshTimescale(client, options.only, until);
  } finally {
    client.release();
  }
}

async function refreshTimescale(client: PoolClient, only: string[] | undefined, until: Date): Promise<RefreshReport[] | null> {
  const { rows: lock } = await client.query(`SELECT pg_try_advisory_lock(${LOCK_KEY}) AS ok`);
  if (!lock[0].ok) {
    return null;
  }
  try {
    const reports: RefreshReport[] = [];
    const status = await rollupStatus(client);
    // Watermarks as they stand, updated as each rollup is refreshed (sources come first).
    const marks = new Map(status.map((s) => [s.rollup, s.watermark]));
    const watermarkOf = async (name: string) =>
      finite((await client.query('SELECT watermark FROM ruleperf_rollup_status WHERE rollup = $1', [name])).rows[0]?.watermark ?? null);
    for (const rollup of status) {
      if (only && !only.includes(rollup.rollup)) {
        continue;
      }
      const started = performance.now();
      const sourceEnd = rollup.source === 'metrics' ? until : marks.get(rollup.source) ?? null;
      if (sourceEnd) {
        // Never below the current watermark: everything under it must be consistent after a refresh.
        const end = new Date(Math.max(Math.floor(sourceEnd.getTime() / rollup.bucketMs) * rollup.bucketMs, rollup.watermark?.getTime() ?? -Infinity));
        // CALL cannot run in a transaction block; the name comes from the registry, the time is an ISO literal.
        await client.query(`CALL refresh_continuous_aggregate('${rollup.rollup.replace(/'/g, "''")}', NULL, '${end.toISOString()}')`);
      }
      const durationMs = performance.now() - started;
      await client.query('UPDATE ruleperf_rollup_state SET last_refresh_at = now(), last_duration_ms = $2 WHERE rollup = $1', [rollup.rollup, durationMs]);
      const newWatermark = await watermarkOf(rollup.rollup);
      marks.set(rollup.rollup, newWatermark);
      reports.push({ rollup: rollup.rollup, oldWatermark: rollup.watermark, newWatermark, durationMs });
    }
    return reports;
  } finally {
    await client.query(`SELECT pg_advisory_unlock(${LOCK_KEY})`);
  }
}
