/**
 * Keeps rollups fresh where the database does not (the PostgreSQL flavour, and the
 * embedded WASM TimescaleDB, which runs no background jobs): every tick, refresh the
 * rollups whose interval has passed, under the database's advisory lock so only one
 * instance does it. On every flavour it publishes refresh lag and duration.
 */
import type { Pool } from 'pg';
import type { Logger } from 'pino';
import type { Flavour } from '../db/migrate';
import { refreshRollups, rollupStatus, type RollupStatus } from '../db/refresh';
import type { Metrics } from '../observability/metrics';

export interface SchedulerOptions {
  pool: Pool;
  flavour: Flavour;
  metrics: Metrics;
  logger: Logger;
  refresh: boolean;
  tickMs?: number;
  onRefreshed?: () => void;
}

export function publishRefreshMetrics(metrics: Metrics, status: RollupStatus[], now = Date.now()): void {
  for (const s of status) {
    const sinceRefresh = s.lastRefreshAt ? (now - s.lastRefreshAt.getTime()) / 1000 : Infinity;
    const lag = Math.max(0, sinceRefresh - s.refreshEveryMs / 1000);
    metrics.refreshLag.set({ rollup: s.rollup }, Number.isFinite(lag) ? lag : 1e9);
    if (s.lastDurationMs !== null) {
      metrics.refreshDuration.set({ rollup: s.rollup }, s.lastDurationMs / 1000);
    }
    if (s.watermark) {
      metrics.watermarkAge.set({ rollup: s.rollup }, (now - s.watermark.getTime()) / 1000);
    }
  }
}

export class RefreshScheduler {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;

  constructor(private readonly o: SchedulerOptions) {}

  start(): void {
    const tick = () => {
      this.running ??= this.tick().finally(() => (this.running = null));
    };
    this.timer = setInterval(tick, this.o.tickMs ?? 15_000);
    this.timer.unref();
    tick();
  }

  async stop(): Promise<void> {
    if (this.timer) {
      clearInterval(this.timer);
    }
    await this.running;
  }

  /** Refreshes what is due; returns after publishing metrics. */
  async tick(): Promise<void> {
    try {
      let status = await rollupStatus(this.o.pool);
      if (this.o.refresh) {
        const now = Date.now();
        const due = status
          .filter((s) => !s.lastRefreshAt || now - s.lastRefreshAt.getTime() >= s.refreshEveryMs)
          .map((s) => s.rollup);
        if (due.length) {
          const reports = await refreshRollups(this.o.pool, this.o.flavour, { only: due });
          if (reports) {
            this.o.logger.info(
              {
                rollups: reports.map((r) => ({
                  rollup: r.rollup,
                  ms: Math.round(r.durationMs),
                  watermark: r.newWatermark,
                })),
              },
              'rollups refreshed'
            );
            this.o.onRefreshed?.();
            status = await rollupStatus(this.o.pool);
          }
        }
      }
      publishRefreshMetrics(this.o.metrics, status);
    } catch (err) {
      this.o.logger.warn({ err: { message: (err as Error).message } }, 'refresh tick failed; will retry');
    }
  }
}
