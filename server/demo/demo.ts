/**
 * The demo behind `npm start` on the embedded database: a week of rule and parser
 * executions that keeps growing in real time.
 *
 * First start: the newest day is generated inside the database and its rollups built
 * (both with progress), then the service is ready; the six older days are back-filled
 * in the background, newest first, a few hours per statement with a refresh after each,
 * so dashboard queries get the session between them. Panels over a span not loaded yet
 * carry a notice saying so (DemoNotices). Restart: nothing to wait for; whatever a stop
 * interrupted resumes in the background, and the hours the service was down are
 * generated too (catch-up). Live: every few seconds the rows of the seconds just past are
 * inserted (DEMO_LIVE=false turns it off), so "last 5 minutes" is never empty and the
 * rollups advance with each scheduled refresh.
 *
 * All of it is one generator (sql-history.ts): rows are a function of time, so the
 * history, back-fill, catch-up and live feed never overlap or leave a seam.
 */
import type { Pool } from 'pg';
import type { Logger } from 'pino';
import { refreshEachRollup } from '../db/refresh';
import type { Flavour } from '../db/migrate';
import { expectedRows, SqlGenerator } from '../generator/sql-history';
import { rollupsProgress, rowsProgress } from '../cli/progress';
import { ensureDemoTable, inTransaction, moveMark, readDemoState, writeDemoState, type DemoState } from './state';

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
/** Loaded and built before the service is ready on a first start. */
const READY_SPAN_MS = DAY_MS;
/** Rows per statement in the background: about a second of the session each. */
const BACKGROUND_CHUNK_ROWS = 30_000;
/** Each second's rows a second later: fed every 5 s, a panel's newest point counted up to 5 s with no rows yet. */
const LIVE_TICK_MS = 1000;
/** The live feed trails the clock by up to a tick; only more than this counts as missing. */
const LIVE_SLACK_MS = 60_000;

export interface DemoSettings {
  days: number;
  rowsPerHour: number;
  seed: number;
  live: boolean;
  rules?: number;
  parsers?: number;
}

export interface DemoHooks {
  /** The background loading finished (history complete, caught up): e.g. clear the cache, warm again. */
  onLoaded?(): Promise<void>;
}

const iso = (ms: number) => new Date(ms).toISOString().slice(0, 16).replace('T', ' ');

export class Demo {
  /** Aborted by stop(): the loops end, and a refresh in progress finishes its rollup and builds no more. */
  private readonly stopped = new AbortController();
  private loops: Array<Promise<unknown>> = [];
  private readonly wakers = new Set<() => void>();

  private get stopping(): boolean {
    return this.stopped.signal.aborted;
  }

  private constructor(
    private readonly pool: Pool,
    private readonly flavour: Flavour,
    private readonly generator: SqlGenerator,
    private readonly state: DemoState,
    private readonly settings: DemoSettings,
    private readonly log: Logger
  ) {}

  /**
   * Before the service is ready: on a fresh database, loads and builds the newest day
   * (`show` draws progress on stderr); otherwise only reads where the demo stands.
   * Returns null when the demo is off (DEMO_DAYS=0). `signal` stops it between statements
   * (what was loaded stays; the next start carries on from there).
   */
  static async prepare(
    pool: Pool,
    flavour: Flavour,
    settings: DemoSettings,
    log: Logger,
    show: boolean,
    signal?: AbortSignal
  ): Promise<Demo | null> {
    if (settings.days <= 0) {
      return null;
    }
    await ensureDemoTable(pool);
    let state = await readDemoState(pool);
    const now = Date.now();
    const model = {
      seed: settings.seed,
      rowsPerHour: settings.rowsPerHour,
      rules: settings.rules ?? 500,
      parsers: settings.parsers ?? 30,
    };
    if (state && (state.seed !== model.seed || state.rowsPerHour !== model.rowsPerHour)) {
      log.warn(
        { seed: state.seed, rowsPerHour: state.rowsPerHour },
        'this data folder holds demo data of other DEMO_SEED / DEMO_ROWS_PER_HOUR settings; keeping those (delete the folder to change them)'
      );
    }
    const generator = new SqlGenerator(state ?? model);
    if (!state) {
      const { rows } = await pool.query('SELECT min(time) AS first, max(time) AS last FROM metrics');
      if (rows[0].last) {
        // Rows from before the demo kept its state (an older version): carry on from them.
        state = {
          ...model,
          historyFrom: rows[0].first.getTime(),
          loadedFrom: rows[0].first.getTime(),
          loadedTo: rows[0].last.getTime() + 1,
          builtFrom: rows[0].first.getTime(),
        };
        await writeDemoState(pool, state);
      } else {
        state = { ...model, historyFrom: now - settings.days * DAY_MS, loadedFrom: now, loadedTo: now, builtFrom: now };
        await generator.upsertDimensions(pool);
        const from = Math.max(state.historyFrom, now - READY_SPAN_MS);
        const progress = show ? rowsProgress('demo data, newest day', expectedRows(model, from, now)) : null;
        const client = await pool.connect();
        try {
          for (const c of generator.chunks(from, now, 50_000, true)) {
            signal?.throwIfAborted();
            const n = await inTransaction(client, async () => {
              const inserted = await generator.insert(client, c.fromMs, c.toMs);
              await writeDemoState(client, { ...state!, loadedFrom: c.fromMs });
              return inserted;
            });
            state.loadedFrom = c.fromMs;
            progress?.add(n);
          }
        } catch (err) {
          progress?.stop();
          throw err;
        } finally {
          client.release();
        }
        const loaded = progress?.stop(true);
        if (loaded) {
          log.info(
            { rows: loaded.rows, seconds: Number(loaded.seconds.toFixed(1)) },
            'demo data: newest day generated'
          );
        }
        await pool.query('ANALYZE metrics');
        await buildRollups(pool, flavour, log, show, signal);
        state.builtFrom = state.loadedFrom;
        await moveMark(pool, 'builtFrom', state.builtFrom);
      }
    }
    if (state.loadedTo < now - settings.days * DAY_MS) {
      // Down for longer than the demo spans: start a fresh window (older rows stay as they are).
      state = { ...state, historyFrom: now - settings.days * DAY_MS, loadedFrom: now, loadedTo: now, builtFrom: now };
      await writeDemoState(pool, state);
    }
    const wantedFrom = now - settings.days * DAY_MS;
    if (state.historyFrom - wantedFrom > HOUR_MS) {
      // DEMO_DAYS raised since this folder was made: the generator is a function of time, so
      // the earlier days are back-filled like the rest of the history (a lower DEMO_DAYS keeps
      // the rows the folder has).
      log.info(
        { days: settings.days, from: iso(wantedFrom), before: iso(state.historyFrom) },
        'demo data: DEMO_DAYS reaches further back than this data folder; back-filling the earlier days too'
      );
      state = { ...state, historyFrom: wantedFrom };
      await writeDemoState(pool, state);
    }
    return new Demo(pool, flavour, generator, state, settings, log);
  }

  /** Starts the back-fill, the catch-up and the live feed in the background. */
  start(hooks: DemoHooks = {}): void {
    const backfill = this.backfill();
    const live = this.settings.live ? this.live() : Promise.resolve();
    this.loops = [backfill, live];
    // Caught up means: history complete and (when live) no hours missing before the live edge.
    void Promise.all([backfill, this.settings.live ? this.caughtUp : Promise.resolve(false)]).then(
      async ([loadedSome, caughtUpSome]) => {
        if (this.stopping || !(loadedSome || caughtUpSome)) {
          return;
        }
        this.log.info('demo data complete: the whole history is loaded and its rollups built');
        await this.pool.query('ANALYZE metrics').catch(() => undefined);
        await hooks
          .onLoaded?.()
          .catch((err) => this.log.warn({ err: { message: (err as Error).message } }, 'after demo loading'));
      }
    );
  }

  /** A notice for a panel over [from, to) when part of it is not loaded yet, else null. */
  notice(from: number, to: number): string | null {
    const now = Date.now();
    const missing = this.missing(now);
    const overlapping = missing.filter(([a, b]) => a < to && b > from);
    if (!overlapping.length) {
      return null;
    }
    return (
      `Demo data is still being generated (${this.percentLoaded(now, missing)} % of ${this.spanName()} loaded): ${overlapping.map(([a, b]) => `${iso(a)}–${iso(b)}`).join(' and ')} UTC ` +
      `is not loaded yet, so this panel shows less than it will. It fills in within a few minutes.`
    );
  }

  /** The spans of the demo's history not in the rollups yet. */
  private missing(now: number): Array<[number, number]> {
    const missing: Array<[number, number]> = [];
    if (this.state.builtFrom > this.state.historyFrom) {
      missing.push([this.state.historyFrom, this.state.builtFrom]);
    }
    if (this.settings.live && this.state.loadedTo < now - LIVE_SLACK_MS) {
      missing.push([this.state.loadedTo, now]);
    }
    return missing;
  }

  /** The share of the demo's history (its first day to now) loaded and built, 0–99 while any is missing. */
  private percentLoaded(now = Date.now(), missing = this.missing(now)): number {
    const span = now - this.state.historyFrom;
    const absent = missing.reduce((sum, [a, b]) => sum + (b - a), 0);
    return Math.max(0, Math.min(absent > 0 ? 99 : 100, Math.floor((100 * (span - absent)) / span)));
  }

  /** The span the percentage is of: the folder's, which a later start with a smaller DEMO_DAYS keeps. */
  private spanName(): string {
    const days = Math.max(1, Math.round((Date.now() - this.state.historyFrom) / DAY_MS));
    return days === 7 ? 'the week' : days === 1 ? 'the day' : `the ${days} days`;
  }

  async stop(): Promise<void> {
    this.stopped.abort();
    for (const wake of this.wakers) {
      wake();
    }
    await Promise.all(this.loops);
  }

  private resolveCaughtUp: (loadedSome: boolean) => void = () => undefined;
  private readonly caughtUp = new Promise<boolean>((resolve) => (this.resolveCaughtUp = resolve));

  /**
   * Older days, newest first, each chunk followed by a refresh; first the rows a stop left
   * loaded but not built (an interrupted first start). Resolves true if it did anything.
   */
  private async backfill(): Promise<boolean> {
    const total = this.state.loadedFrom - this.state.historyFrom;
    const unbuilt = this.state.builtFrom > this.state.loadedFrom;
    if (total <= 0 && !unbuilt) {
      return false;
    }
    const started = Date.now();
    this.log.info(
      { from: iso(this.state.historyFrom), to: iso(this.state.builtFrom) },
      total > 0
        ? 'demo data: back-filling older days in the background'
        : 'demo data: building the rollups a stop interrupted, in the background'
    );
    let lastLog = 0;
    while (!this.stopping) {
      try {
        if (this.state.builtFrom > this.state.loadedFrom) {
          if (!(await this.refresh())) {
            break;
          }
          this.state.builtFrom = this.state.loadedFrom;
          await moveMark(this.pool, 'builtFrom', this.state.builtFrom);
        } else if (this.state.loadedFrom > this.state.historyFrom) {
          const [c] = this.generator.chunks(this.state.historyFrom, this.state.loadedFrom, BACKGROUND_CHUNK_ROWS, true);
          if (!c) {
            break;
          }
          await this.loadChunk(c.fromMs, c.toMs, 'loadedFrom');
          continue; // built at the next turn
        } else {
          break;
        }
      } catch (err) {
        if (this.stopping) {
          break;
        }
        this.log.warn({ err: { message: (err as Error).message } }, 'demo back-fill step failed; retrying in 5 s');
        await this.sleep(5000);
        continue;
      }
      // This run's share of what it had to do gives the rate; the percent is of the whole demo
      // (a restart carries on from where the last run stopped, not from 0 %).
      const done = total > 0 ? (total - (this.state.loadedFrom - this.state.historyFrom)) / total : 1;
      if (Date.now() - lastLog > 5000 || done >= 1) {
        lastLog = Date.now();
        const elapsed = (Date.now() - started) / 1000;
        this.log.info(
          {
            loadedFrom: iso(this.state.loadedFrom),
            percent: this.percentLoaded(),
            // Left out until this run has loaded something to take a rate from (after a restart).
            ...(done > 0 ? { etaSeconds: Math.round((elapsed * (1 - done)) / done) } : {}),
          },
          `demo data: back-fill progress (percent of ${this.spanName()} loaded and built)`
        );
      }
    }
    return !this.stopping;
  }

  /**
   * Refreshes the rollups one by one (sources first), so a stop waits for one at most;
   * false if it stopped first (rows loaded but not built are refreshed after the restart).
   * Another instance's refresh holding the lock absorbs the new rows itself.
   */
  private async refresh(): Promise<boolean> {
    try {
      await refreshEachRollup(this.pool, this.flavour, { signal: this.stopped.signal });
      return true;
    } catch (err) {
      if (this.stopping) {
        return false;
      }
      throw err;
    }
  }

  /** Inserts [from, to) and moves the matching mark, in one transaction. */
  private async loadChunk(fromMs: number, toMs: number, mark: 'loadedFrom' | 'loadedTo'): Promise<number> {
    const at = mark === 'loadedFrom' ? fromMs : toMs;
    const client = await this.pool.connect();
    try {
      const n = await inTransaction(client, async () => {
        const inserted = await this.generator.insert(client, fromMs, toMs);
        await moveMark(client, mark, at);
        return inserted;
      });
      this.state[mark] = at;
      return n;
    } finally {
      client.release();
    }
  }

  /** The hours since the last stop (in chunks, each refreshed), then every few seconds the seconds just past. */
  private async live(): Promise<void> {
    let caughtUpSome = false;
    let reported = false;
    while (!this.stopping) {
      const now = Date.now();
      const behind = now - this.state.loadedTo > LIVE_SLACK_MS;
      try {
        if (behind) {
          const [c] = this.generator.chunks(this.state.loadedTo, now, BACKGROUND_CHUNK_ROWS);
          if (!caughtUpSome) {
            this.log.info({ from: iso(this.state.loadedTo) }, 'demo data: generating the time the service was stopped');
          }
          await this.loadChunk(c.fromMs, c.toMs, 'loadedTo');
          await this.refresh();
          caughtUpSome = true;
          continue;
        }
        if (!reported) {
          reported = true;
          this.resolveCaughtUp(caughtUpSome);
        }
        if (now > this.state.loadedTo) {
          await this.loadChunk(this.state.loadedTo, now, 'loadedTo');
        }
      } catch (err) {
        if (this.stopping) {
          break;
        }
        this.log.warn({ err: { message: (err as Error).message } }, 'demo live feed step failed; retrying');
      }
      await this.sleep(LIVE_TICK_MS);
    }
    if (!reported) {
      this.resolveCaughtUp(false);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.wakers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.wakers.add(wake);
    });
  }
}

/** Builds every rollup once, in registry order (sources first), one refresh per rollup so progress can be shown. */
export async function buildRollups(
  pool: Pool,
  flavour: Flavour,
  log: Logger,
  show: boolean,
  signal?: AbortSignal
): Promise<void> {
  const bar = show ? rollupsProgress() : null;
  const started = Date.now();
  const built = await refreshEachRollup(pool, flavour, { signal, onStep: bar?.onStep }).finally(() => bar?.stop());
  log.info(
    { rollups: built?.length ?? 0, seconds: Number(((Date.now() - started) / 1000).toFixed(1)) },
    'demo data: rollups built'
  );
}
