/**
 * What the planner needs to know of the database, read together and kept for a couple of
 * seconds: each rollup's watermark, retention and refresh times, and the raw ranges changed
 * since the rollups were refreshed. Reading it late is safe: an older watermark only moves
 * more of the range to finer tiers and raw rows; pending changes are read in the same round.
 */
import type { Pool } from 'pg';
import { rollupStatus, type RollupStatus } from '../db/refresh';
import type { TimeRange } from './range';

export interface DatabaseState {
  status: RollupStatus[];
  /** Raw time ranges [from, to] changed and not yet reflected in every rollup. */
  pending: TimeRange[];
}

/** Pending changes as the flavour exposes them: the view where migrations made it, else the PostgreSQL invalidation log. */
async function pendingChanges(db: Pool): Promise<TimeRange[]> {
  const { rows } = await db.query(
    `SELECT CASE WHEN to_regclass('ruleperf_pending_changes') IS NOT NULL THEN 'view'
                 WHEN to_regclass('ruleperf_invalidations') IS NOT NULL THEN 'log' END AS source`
  );
  if (!rows[0].source) return [];
  const table = rows[0].source === 'view' ? 'ruleperf_pending_changes' : 'ruleperf_invalidations';
  // Merged: a live feed logs one range per statement, mostly overlapping.
  const pending = await db.query(
    `SELECT extract(epoch FROM lower(r)) * 1000 AS lo, extract(epoch FROM upper(r)) * 1000 AS hi
     FROM (SELECT unnest(range_agg(tstzrange(lo, hi, '[]'))) AS r FROM ${table}) s`
  );
  return pending.rows.map((r) => ({ from: Number(r.lo), to: Number(r.hi) }));
}

export class WatermarkSource {
  private cached: { at: number; value: DatabaseState } | null = null;
  private pending: Promise<DatabaseState> | null = null;

  constructor(
    private readonly db: Pool,
    private readonly maxAgeMs: number
  ) {}

  async current(): Promise<DatabaseState> {
    if (this.cached && Date.now() - this.cached.at <= this.maxAgeMs) return this.cached.value;
    this.pending ??= Promise.all([rollupStatus(this.db), pendingChanges(this.db)])
      .then(([status, pending]) => {
        const value = { status, pending };
        this.cached = { at: Date.now(), value };
        return value;
      })
      .finally(() => {
        this.pending = null;
      });
    return this.pending;
  }

  /** Forget what was read (after a refresh this instance ran). */
  reset(): void {
    this.cached = null;
  }
}
