/**
 * What the planner needs to know of the database: each rollup's watermark, retention and
 * refresh times — kept for a couple of seconds, since an older watermark only moves more of
 * the range to finer tiers and raw rows — and the raw ranges changed since the rollups were
 * refreshed, read afresh for every answer computed, so that answer is exact when computed.
 */
import type { Pool } from 'pg';
import {
  hasRawChunks,
  pendingChanges,
  rawKeptFrom,
  readRawExtent,
  rollupStatus,
  type RawExtent,
  type RollupStatus,
} from '../db/refresh';
import type { TimeRange } from './range';

export interface DatabaseState {
  status: RollupStatus[];
  /** Raw time ranges [from, to] changed and not yet reflected in every rollup. */
  pending: TimeRange[];
}

/** Whether the schema lists pending changes (ruleperf_pending_changes, schema 7); older ones have none to read. */
async function hasPendingView(db: Pool): Promise<boolean> {
  const { rows } = await db.query("SELECT to_regclass('ruleperf_pending_changes') IS NOT NULL AS present");
  return rows[0].present;
}

export class WatermarkSource {
  private cached: { at: number; value: RollupStatus[] } | null = null;
  private reading: Promise<RollupStatus[]> | null = null;
  private hasView: Promise<boolean> | null = null;
  /** Whether the database has TimescaleDB's chunks (the flavour does not change while it runs). */
  private hasChunks: Promise<boolean> | null = null;
  /** The raw rows' oldest chunk and retention (TimescaleDB flavour; null: kept whole), read with the status. */
  private rawExtent: RawExtent | null = null;

  constructor(
    private readonly db: Pool,
    private readonly maxAgeMs: number
  ) {}

  /**
   * Where the raw retention drops rows from now (null: no retention): range ends before it are
   * covered in whole hours. The retention's edge, not the oldest chunk: history not loaded yet
   * (the demo's back-fill) is not history dropped.
   */
  get retentionEdge(): number | null {
    const ms = this.rawExtent?.retentionMs ?? null;
    return ms === null ? null : Date.now() - ms;
  }

  /** One connection at a time: the caller holds one admission slot. */
  async current(): Promise<DatabaseState> {
    const status = await this.status();
    this.hasView ??= hasPendingView(this.db).catch((err) => {
      this.hasView = null;
      throw err;
    });
    // Unbounded ends (a TRUNCATE) are null there: everything before or after.
    const pending = (await this.hasView)
      ? (await pendingChanges(this.db, rawKeptFrom(this.rawExtent, Date.now()))).map((r) => ({
          from: r.from?.getTime() ?? -Infinity,
          to: r.to?.getTime() ?? Infinity,
        }))
      : [];
    return { status, pending };
  }

  private async status(): Promise<RollupStatus[]> {
    if (this.cached && Date.now() - this.cached.at <= this.maxAgeMs) {
      return this.cached.value;
    }
    this.reading ??= rollupStatus(this.db)
      .then(async (value) => {
        this.hasChunks ??= hasRawChunks(this.db).catch((err) => {
          this.hasChunks = null;
          throw err;
        });
        this.rawExtent = (await this.hasChunks) ? await readRawExtent(this.db) : null;
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
