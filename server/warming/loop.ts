/**
 * The warming loop: on start and every WARM_INTERVAL_SECONDS, answers the provisioned
 * dashboards' queries (once per value of each short variable) and the most requested
 * recent ones, so dashboards hit the cache. It runs on the background pool: on the
 * embedded database its queries yield the session to dashboard queries.
 */
import type { Pool } from 'pg';
import type { Logger } from 'pino';
import { VARIABLE_NAMES, type QueryRequest, type RuleperfQuery, type VariableName } from '../contract';
import { variableValues } from '../http/variables';
import type { RollupInfo } from '../query/catalog';
import { MINUTE_MS, movingStep } from '../query/range';
import { dashboardWarmItems, warm, WARM_VARIABLE_MAX_VALUES, type RecentQueries, type WarmBounds } from './warmer';

export interface WarmingOptions {
  /** Answers one query through the cache (a QueryService on the background pool). */
  answer: (request: QueryRequest, query: RuleperfQuery) => Promise<unknown>;
  pool: Pool;
  rollups: () => readonly RollupInfo[];
  dashboardsDir: string;
  recent: RecentQueries;
  intervalSeconds: number;
  /**
   * Seconds before each minute to compute, for the queries asked recently, the answers the next
   * minute will ask for (now-relative ranges move to the next whole minute then); 0: off.
   */
  aheadSeconds?: number;
  logger: Logger;
}

export interface Warming {
  /** One full pass; passes never overlap (a second call waits for the running one). */
  warmAll(): Promise<void>;
  /** Whether the pass started with the service has finished (true at once when none was). */
  warmedOnce(): boolean;
  /** Computes the answers recently asked now-relative queries will ask for once `minute` (epoch ms, a whole minute) begins. */
  warmAhead(minute: number): Promise<{ warmed: number; failed: number }>;
  stop(): Promise<void>;
}

/** The next turn of the minute that is still more than `aheadSeconds` away from `now`. */
export function nextTurn(now: number, aheadSeconds: number): number {
  const next = Math.floor(now / 60_000) * 60_000 + 60_000;
  return next - aheadSeconds * 1000 <= now ? next + 60_000 : next;
}

/**
 * Recently asked queries are anybody's: replaying them must not cost more than a little of one
 * database slot. One at a time, none begun WARM_RECENT_MS after the pass began. Before, 100
 * heavy now-relative queries one client sent (answered or not) were replayed two at a time
 * every minute for ten minutes, holding both slots of a 2-core machine 30-37 s a minute.
 */
export const WARM_RECENT_MS = 10_000;
const recentBounds = (start: number): WarmBounds => ({ workers: 1, until: start + WARM_RECENT_MS });

export function startWarming(o: WarmingOptions, onStart: boolean): Warming {
  let running: Promise<void> | null = null;
  let stopped = false;
  const abort = new AbortController();
  const pass = async () => {
    // One value past the warming limit is enough to tell a long list (e.g. 500 rules) is not warmed value by value.
    const lists = await Promise.all(
      VARIABLE_NAMES.map((name) =>
        variableValues(o.pool, name, o.rollups(), WARM_VARIABLE_MAX_VALUES + 1).then(
          (v) => v.map((x) => x.value),
          () => []
        )
      )
    );
    const values = Object.fromEntries(VARIABLE_NAMES.map((name, i) => [name, lists[i]])) as Record<
      VariableName,
      string[]
    >;
    const dashboards = await warm(dashboardWarmItems(o.dashboardsDir, values), o.answer, Date.now(), abort.signal);
    const recentFrom = Date.now(); // after the dashboards' pass, however long it took
    const recent = await warm(o.recent.top(50), o.answer, recentFrom, abort.signal, recentBounds(recentFrom));
    if (abort.signal.aborted) {
      return;
    }
    o.logger.info(
      { warmed: dashboards.warmed + recent.warmed, failed: dashboards.failed + recent.failed },
      'cache warmed'
    );
  };
  const warmAll = async (): Promise<void> => {
    while (running) {
      await running;
    }
    if (stopped) {
      return;
    }
    running = pass()
      .catch((err) => o.logger.warn({ err: { message: (err as Error).message } }, 'cache warming failed'))
      .finally(() => (running = null));
    await running;
  };
  let warmedOnce = !onStart;
  if (onStart) {
    void warmAll().finally(() => (warmedOnce = true));
  }
  const timer = o.intervalSeconds > 0 ? setInterval(() => void warmAll(), o.intervalSeconds * 1000) : null;
  timer?.unref();

  // Ahead of each minute: a range ending "now" of an hour or more covers whole minutes up to the
  // end of the current one, so at the turn of the minute every such key changes at once.
  // Computing the next minute's answers for the recently asked queries a few seconds before
  // keeps that turn from being a burst of misses (the answers read rows up to the moment they
  // are computed, as any cached answer of the live edge does). Shorter ranges move in steps of
  // seconds (range.ts movingStep), most of which are not at a minute's turn: not warmed ahead.
  let ahead: NodeJS.Timeout | null = null;
  // Asked just after the minute turns: the range the next minute's requests cover.
  const warmAhead = (minute: number) =>
    warm(
      o.recent.top(100).filter((item) => movingStep(item.spanMs) === MINUTE_MS),
      o.answer,
      minute + 1,
      abort.signal,
      recentBounds(Math.min(Date.now(), minute - WARM_RECENT_MS))
    );
  const scheduleAhead = () => {
    if (stopped || !o.aheadSeconds) {
      return;
    }
    const next = nextTurn(Date.now(), o.aheadSeconds);
    ahead = setTimeout(
      async () => {
        if (!stopped) {
          const result = await warmAhead(next).catch(() => null);
          o.logger.debug({ ...result, minute: new Date(next).toISOString() }, 'next minute warmed');
        }
        scheduleAhead();
      },
      next - o.aheadSeconds * 1000 - Date.now()
    );
    ahead.unref();
  };
  scheduleAhead();
  return {
    warmAll,
    warmedOnce: () => warmedOnce,
    warmAhead,
    async stop() {
      stopped = true;
      abort.abort();
      if (timer) {
        clearInterval(timer);
      }
      if (ahead) {
        clearTimeout(ahead);
      }
      await running;
    },
  };
}
