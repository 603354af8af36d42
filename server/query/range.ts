/**
 * The range an answer covers, and the width of timeseries buckets.
 *
 * A range that ended more than a minute ago is answered exactly as asked, to the
 * millisecond: whole days, hours and minutes from rollups, the seconds at either end from
 * raw rows, and the same range asked again (an absolute range, a zoomed graph) is the same
 * cache entry. A range ending "now" (or given relative to now: `to: now-5m`) moves with every
 * request: each end is moved forward to
 * the next whole minute, so "last 24 hours" sent a few seconds later is the same cache entry
 * — never more than 59.999 s from what was asked, and the newest rows still in it. Grafana's
 * relative ends share their second of the minute, so the span is kept; an end already whole
 * (`now/d`, a future `to`) stays, and the span gains or loses up to a minute (the notice says so). Under an hour, to a step of at most a sixtieth of the span (30, 15, 10, 5 s, and
 * whole seconds under five minutes): a minute moved half of a 70-second range away from the
 * one asked. Whole seconds at least, so that viewers asking the same range share answers. The answer says what it covered (meta.custom.coveredRange) and carries a notice
 * whenever that differs from the asked range.
 */
import type { Granularity } from '../contract';

export const MINUTE_MS = 60_000;
export const HOUR_MS = 3_600_000;
export const DAY_MS = 24 * HOUR_MS;

export interface TimeRange {
  from: number;
  to: number;
  /** Given relative to now (validation.ts checkRange): it moves like a range ending now. */
  movesWithNow?: boolean;
}

export const ceilTo = (t: number, width: number) => Math.ceil(t / width) * width;
export const floorTo = (t: number, width: number) => Math.floor(t / width) * width;

/** A range ending later than this before now is still moving (a now-relative range). */
export const MOVING_WITHIN_MS = MINUTE_MS;

/** Steps the ends of a range ending now are moved forward to, coarsest first. */
export const MOVING_STEPS = [MINUTE_MS, 30_000, 15_000, 10_000, 5_000, 1_000] as const;

/** The step a range ending now of `spanMs` moves by: the coarsest of at most a sixtieth of it, a second at least. */
export function movingStep(spanMs: number): number {
  return MOVING_STEPS.find((step) => step * 60 <= spanMs) ?? 1000;
}

/** Whether `asked` ends now, or later, or was given relative to now: then it moves with every request. */
export const isMoving = (asked: TimeRange, now: number) =>
  asked.to > now - MOVING_WITHIN_MS || asked.movesWithNow === true;

export function coverRange(asked: TimeRange, now = Date.now(), rawKeptFrom: number | null = null): TimeRange {
  if (!isMoving(asked, now)) {
    return inWholeHoursBefore(asked, rawKeptFrom);
  }
  const step = movingStep(asked.to - asked.from);
  const to = ceilTo(asked.to, step);
  const from = Math.min(ceilTo(asked.from, step), to - step);
  return inWholeHoursBefore({ from, to }, rawKeptFrom);
}

/**
 * Ends before `rawKeptFrom` (the raw retention drops rows there: TimescaleDB's, see db/refresh.ts
 * rawKeptFrom) moved out to whole hours, which the hourly rollups keep: the minutes of a partial
 * hour there exist in no raw row, and would count as none.
 */
function inWholeHoursBefore(asked: TimeRange, rawKeptFrom: number | null): TimeRange {
  if (rawKeptFrom === null) {
    return { from: asked.from, to: asked.to };
  }
  return {
    from: asked.from < rawKeptFrom ? floorTo(asked.from, HOUR_MS) : asked.from,
    to: asked.to < rawKeptFrom ? ceilTo(asked.to, HOUR_MS) : asked.to,
  };
}

/** Whether `covered` has an end moved to whole hours because no raw rows are kept there. */
export function coveredInHours(covered: TimeRange, asked: TimeRange, rawKeptFrom: number | null): boolean {
  if (rawKeptFrom === null) {
    return false;
  }
  // A start moved to its hour lies before rawKeptFrom; asked.from may too, and yet be moved
  // past it to the minute only (Grafana's "Last 90 days": asked a few milliseconds before the
  // oldest raw row, read from the next whole minute, said to be read in whole hours).
  return (
    (covered.from !== asked.from && covered.from < rawKeptFrom) || (covered.to !== asked.to && asked.to < rawKeptFrom)
  );
}

/**
 * Whether the covered range differs from the asked one at all: rows in a shifted millisecond
 * change a count (a range ending 300 ms before a minute counted 1,759 rows, its covered one
 * 1,758), so any shift is said, not only one over a second.
 */
export function differsFromAsked(covered: TimeRange, asked: TimeRange): boolean {
  return covered.from !== asked.from || covered.to !== asked.to;
}

const GRANULARITY_MIN: Record<Granularity, number> = { auto: 0, hourly: HOUR_MS, daily: DAY_MS };

/** Spans up to this long may be bucketed by the minute from raw rows when no rollup has minutes. */
export const RAW_MINUTES_MAX_SPAN = 6 * HOUR_MS;

/**
 * Timeseries bucket width: never finer than Grafana's interval nor than the granularity
 * asked, never more points than maxDataPoints; on the grid of the largest available tier
 * width not above that, as a multiple of it (so every bucket is whole tier buckets).
 * `widths` are the tier widths of the rollups holding the query's dimensions; when none is
 * fine enough, minute buckets are read from raw rows for spans of at most RAW_MINUTES_MAX_SPAN,
 * and longer spans take the finest rollup's width (fewer points than asked, never a scan of
 * days of raw rows). Returns the width, the width asked (under a minute too: no point is
 * finer), and whether no width held was as fine as that (then fewer points than asked).
 */
export function chooseBucket(
  range: TimeRange,
  o: { intervalMs?: number; maxDataPoints?: number; granularity: Granularity },
  widths: readonly number[]
): { bucketMs: number; askedMs: number; coarser: boolean } {
  const span = range.to - range.from;
  const asked = Math.max(
    o.intervalMs ?? 0,
    o.maxDataPoints ? span / o.maxDataPoints : 0,
    GRANULARITY_MIN[o.granularity]
  );
  // A minute is the finest width (the finest rollup's, and raw rows read by the minute).
  const wanted = Math.max(asked, MINUTE_MS);
  const available = [
    ...new Set([...widths, ...(span <= RAW_MINUTES_MAX_SPAN || widths.length === 0 ? [MINUTE_MS] : [])]),
  ].sort((a, b) => a - b);
  const fine = available.filter((w) => w <= wanted).pop();
  const tier = fine ?? available[0];
  let multiple = Math.ceil(wanted / tier - 1e-9);
  // Buckets are on the grid: a range not aligned to it touches one more than span / width.
  // The next multiples until the points fit maxDataPoints (a step or two; bounded for the
  // degenerate maxDataPoints of 1, which two grid buckets may still hold).
  for (let steps = 0; o.maxDataPoints && points(range, tier * multiple) > o.maxDataPoints && steps < 100; steps++) {
    multiple++;
  }
  return { bucketMs: tier * multiple, askedMs: asked, coarser: fine === undefined };
}

/** Buckets of `width` on the grid that a range touches (the points of a timeseries over it). */
export function points(range: TimeRange, width: number): number {
  return Math.ceil((range.to - floorTo(range.from, width)) / width);
}
