/**
 * Rollup watermarks and refresh times, read from the database and kept for a couple of
 * seconds: an older watermark only moves more of the range to finer tiers and raw rows,
 * so the answer stays exact while most requests skip the lookup.
 */
import type { Pool } from 'pg';
import { rollupStatus, type RollupStatus } from '../db/refresh';

export class WatermarkSource {
  private cached: { at: number; value: RollupStatus[] } | null = null;
  private pending: Promise<RollupStatus[]> | null = null;

  constructor(
    private readonly db: Pool,
    private readonly maxAgeMs: number
  ) {}

  async current(): Promise<RollupStatus[]> {
    if (this.cached && Date.now() - this.cached.at <= this.maxAgeMs) {
      return this.cached.value;
    }
    this.pending ??= rollupStatus(this.db)
      .then((value) => {
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
