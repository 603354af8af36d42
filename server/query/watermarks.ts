/**
 * What the planner needs to know of the database: each rollup's watermark, retention and
 * refresh times — kept for a couple of seconds, since an older watermark only moves more of
 * the range to finer tiers and raw rows — and the raw ranges changed since the rollups were
 * refreshed, read afresh for every answer computed, so that answer is exact when computed.
 */
import type { Pool } from 'pg';
import { rollupStatus, type RollupStatus } from '../db/refresh';
import type { TimeRange } from './range';

export interface DatabaseState {
  status: RollupStatus[];
  /** Raw time ranges [from, to] changed and not yet reflected in every rollup. */
  pending: TimeRange[];
}

/** Where pending changes are kept: the view where migrations made it, else the PostgreSQL invalidation log, else nowhere. */
async function pendingSource(db: Pool): Promise<string | null> {
  const { rows } = await db.query(
    `SELECT CASE WHEN to_regclass('ruleperf_pending_changes') IS NOT NULL THEN 'ruleperf_pending_changes'
                 WHEN to_regclass('ruleperf_invalidations') IS NOT NULL THEN 'ruleperf_invalidations' END AS source`
  );
  return rows[0].source;
}

async function pendingChanges(db: Pool, table: string | null): Promise<TimeRange[]> {
  if (!table) return [];
  // Merged: a live feed logs one range per statement, mostly overlapping.
  const pending = await db.query(
    `SELECT extract(epoch FROM lower(r)) * 1000 AS lo, extract(epoch FROM upper(r)) * 1000 AS hi
     FROM (SELECT unnest(range_agg(tstzrange(lo, hi, '[]'))) AS r FROM ${table}) s`
  );
  return pending.rows.map((r) => ({ from: Number(r.lo), to: Number(r.hi) }));
}

export class WatermarkSource {
  private cached: { at: number; value: RollupStatus[] } | null = null;
  private reading: Promise<RollupStatus[]> | null = null;
  private source: Promise<string | null> | null = null;

  constructor(
    private readonly db: Pool,
    private readonly maxAgeMs: number
  ) {}

  /** One connection at a time: callers hold one admission slot. */
  async current(): Promise<DatabaseState> {
    const status = await this.status();
    this.source ??= pendingSource(this.db).catch((err) => {
      this.source = null;
      throw err;
    });
    return { status, pending: await pendingChanges(this.db, await this.source) };
  }

  private async status(): Promise<RollupStatus[]> {
    if (this.cached && Date.now() - this.cached.at <= this.maxAgeMs) return this.cached.value;
    this.reading ??= rollupStatus(this.db)
      .then((value) => {
        this.cached = { at: Date.now(), value };
        return value;
      })
      .finally(() => {
        this.reading = null;
      });
    return this.reading;
  }

  /** Forget what was read (after a refresh this instance ran). */
  reset(): void {
    this.cached = null;
  }
}
