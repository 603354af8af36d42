/**
 * Where each stretch of a covered range is read from (the aggregate navigator, tiled).
 *
 * For every bucket width the rollups offer (a day, an hour, a minute), the smallest rollup
 * holding every dimension the query needs answers whole buckets of that width that lie
 * inside the range, below the rollup's watermark, within its retention, and clear of raw
 * changes it has not absorbed yet; coarser widths first, finer ones for the stretches
 * left at the ends, raw rows for whatever no rollup holds (the live edge, changes not yet
 * refreshed, minutes older than the minute tier keeps). Sketches and sums merge, so the
 * pieces add up to the exact answer over the covered range.
 */
import type { FilterField } from '../contract';
import { RAW_TIER, type RollupInfo } from './catalog';
import { fieldsOfColumns } from './columns';
import { ceilTo, DAY_MS, floorTo, HOUR_MS, type TimeRange } from './range';

/** A rollup's state as the database reports it (epoch ms; null when nothing is materialized or kept). */
export interface RollupState {
  watermark: number | null;
  /** The oldest bucket still kept (null: everything is kept). */
  retainedFrom: number | null;
}

export interface Piece extends TimeRange {
  /** The rollup read, or null for raw rows. */
  rollup: RollupInfo | null;
}

export interface PlanInput {
  range: TimeRange;
  fields: readonly FilterField[];
  rollups: readonly RollupInfo[];
  state: ReadonlyMap<string, RollupState>;
  /** Raw time ranges [from, to] changed since the rollups were last refreshed. */
  pending: readonly TimeRange[];
  /** Timeseries bucket width: only rollups whose width divides it can be used. */
  bucketMs?: number | null;
  /** Rows a rollup holds per bucket, as last measured (undefined: not known yet); see `levels`. */
  rowsPerBucket?: RowsPerBucket;
  /** The time the plan is made at (epoch ms; Date.now() when absent): rollups with a retention drop their buckets older than it less the retention. */
  now?: number;
}

/**
 * A rollup with a retention drops its oldest buckets at every refresh, made by this instance or
 * by any other (a second instance, cron): the retained_from a plan reads can be behind by the
 * time its statement runs (read up to WATERMARK_CACHE_MS before, the statement queued after), and
 * a bucket deleted since would be read as no rows. Buckets within this margin of the retention's
 * edge are read from other tiers. (A second instance answered 263 executions for a 5-minute range
 * 7 days back, against 344, and cached it for an hour.)
 */
export const RETENTION_MARGIN_MS = 10 * 60_000;

export type RowsPerBucket = (rollup: string) => number | undefined;

/** A rollup measured this much smaller than the one with fewer dimensions is read instead. */
const CLEARLY_SMALLER = 0.8;

/** Where the values of a field are found, for the variables' lists and the unknown-value look. */
export interface ValueSources {
  /** The coarsest rollup holding the field: all its history, a few rows a day. */
  coarsest: RollupInfo;
  /** The widest of an hour or less: the hours the coarsest has not yet (absent: none that fine). */
  hourly?: RollupInfo;
  /** The finest: the last minutes. */
  finest: RollupInfo;
  /** Whether the rollups index the field as (field, bucket): rule and parser ids. */
  indexed: boolean;
}

/** The rollups to read the values of `field` from; null when none holds it. */
export function valueSources(rollups: readonly RollupInfo[], field: FilterField): ValueSources | null {
  const having = levels(rollups, [field]).sort((a, b) => a.bucketMs - b.bucketMs);
  if (having.length === 0) {
    return null;
  }
  return {
    coarsest: having[having.length - 1],
    hourly: having.filter((r) => r.bucketMs <= HOUR_MS).pop(),
    finest: having[0],
    indexed: field === 'ruleId' || field === 'parserId',
  };
}

/**
 * The smallest rollup of each width holding `fields`, widest first: the one with the fewest
 * dimensions, unless another was measured clearly smaller (fewer rows per bucket). Dimensions
 * alone mislead where one is wide: at 10M rows, per rule (rule, category, type) holds 1.6
 * times the rows an hour of per category (category, type, source, status) with 500 rules,
 * and 12 times with 5,000, so a question about categories reads the latter. A rollup kept
 * for less time than the chosen one never replaces it. Answers are exact from either.
 */
export function levels(
  rollups: readonly RollupInfo[],
  fields: readonly FilterField[],
  bucketMs?: number | null,
  rowsPerBucket?: RowsPerBucket
): RollupInfo[] {
  const candidates = new Map<number, RollupInfo[]>();
  for (const r of rollups) {
    if (bucketMs && bucketMs % r.bucketMs !== 0) {
      continue;
    }
    const have = fieldsOfColumns(r.dims);
    if (!fields.every((f) => have.includes(f))) {
      continue;
    }
    candidates.set(r.bucketMs, [...(candidates.get(r.bucketMs) ?? []), r]);
  }
  const best = [...candidates.values()].map((of) => {
    // Of as many dimensions, the one kept longer: ranges that start beyond a shorter
    // retention read it instead of raw rows.
    const fewestDims = of.reduce((a, b) =>
      b.dims.length < a.dims.length || (b.dims.length === a.dims.length && !keptAsLong(a, b)) ? b : a
    );
    const base = rowsPerBucket?.(fewestDims.name);
    if (base === undefined) {
      return fewestDims;
    }
    let chosen = fewestDims;
    let chosenRows = base;
    for (const r of of) {
      const n = rowsPerBucket!(r.name);
      if (n !== undefined && n < CLEARLY_SMALLER * base && n < chosenRows && keptAsLong(r, fewestDims)) {
        [chosen, chosenRows] = [r, n];
      }
    }
    return chosen;
  });
  return worthReading(
    best.sort((a, b) => a.bucketMs - b.bucketMs),
    rowsPerBucket
  ).reverse();
}

/**
 * Of one rollup per width (finest first), those worth reading. A wider rollup replaces rows of
 * the finer level kept below it, so one that holds more dimensions than that level is read
 * only where it holds fewer rows per unit of time: a 10-minute rollup by rule (about 450 rows
 * a bucket at 45M) serves per-rule questions, for which the finer level is the minute one by
 * rule (4,400 rows in ten minutes), but not unfiltered, per-category or per-metric-type ones,
 * whose minute rollups hold 1 to 35 rows a minute. Measured densities decide; before they are
 * read, more dimensions count as denser; with one of the two unmeasured, or the finer one
 * measured empty (a quiet spell), the wider one is kept. A rollup with no more dimensions than
 * the finer level is always kept, and so is one the finer level could not replace for lack of
 * retention (hours are never given up for a minute tier kept a week), so no measurement can
 * send a question to raw rows or make it read days as hours within one family of rollups.
 */
function worthReading(byWidth: RollupInfo[], rowsPerBucket?: RowsPerBucket): RollupInfo[] {
  const kept: RollupInfo[] = [];
  for (const wider of byWidth) {
    const finer = kept[kept.length - 1];
    if (finer && wider.dims.length > finer.dims.length && keptAsLong(finer, wider)) {
      const [w, f] = [rowsPerBucket?.(wider.name), rowsPerBucket?.(finer.name)];
      const denser =
        w !== undefined && f !== undefined
          ? f > 0 && w / wider.bucketMs >= f / finer.bucketMs
          : w === undefined && f === undefined;
      if (denser) {
        continue;
      }
    }
    kept.push(wider);
  }
  return kept;
}

/** Whether `a` keeps its buckets at least as long as `b` (no retention: as long as the raw rows). */
const keptAsLong = (a: RollupInfo, b: RollupInfo) =>
  a.retentionMs == null || (b.retentionMs != null && a.retentionMs >= b.retentionMs);

/** [from, to) minus the intervals in `holes` (sorted, possibly overlapping). */
function subtract(from: number, to: number, holes: TimeRange[]): TimeRange[] {
  const out: TimeRange[] = [];
  let cursor = from;
  for (const h of holes) {
    if (h.to <= cursor || h.from >= to) {
      continue;
    }
    if (h.from > cursor) {
      out.push({ from: cursor, to: h.from });
    }
    cursor = Math.max(cursor, h.to);
  }
  if (cursor < to) {
    out.push({ from: cursor, to });
  }
  return out;
}

export interface Plan {
  pieces: Piece[];
  /**
   * Raw rows past every rollup's watermark are read: rows still arriving there change the answer,
   * and are not tracked as changes until a refresh passes them.
   */
  live: boolean;
  /**
   * The whole day around the range's partial first day, when a rollup one day wide holds it
   * (materialized, kept, no pending change) and the range reaches past it: a piece that reads
   * more than the range, for bounds that allow it (top rules' first phase); null otherwise.
   */
  firstDay: Piece | null;
  /**
   * The pieces tiling the same range without a bucket width (the widest rollups holding it):
   * totals over the whole range, as a grouped timeseries ranks its groups by, from a few rows
   * per group where the bucketed pieces read one per group and bucket.
   */
  wholeRange: Piece[];
}

/** The pieces tiling `range`, coarsest rollups first (see the module comment). */
function tiles(input: PlanInput, tiers: readonly RollupInfo[], range: TimeRange): Piece[] {
  const pieces: Piece[] = [];
  const now = input.now ?? Date.now();
  const tile = (from: number, to: number, level: number): void => {
    if (from >= to) {
      return;
    }
    const rollup = tiers[level];
    if (!rollup) {
      pieces.push({ rollup: null, from, to });
      return;
    }
    const w = rollup.bucketMs;
    const state = input.state.get(rollup.name);
    const watermark = state?.watermark ?? null;
    const kept = rollup.retentionMs ? now - rollup.retentionMs + RETENTION_MARGIN_MS : -Infinity;
    const start = ceilTo(Math.max(from, state?.retainedFrom ?? -Infinity, kept), w);
    const end = watermark === null ? -Infinity : floorTo(Math.min(to, watermark), w);
    if (!(start < end)) {
      return tile(from, to, level + 1);
    }
    // Buckets holding a change the rollup has not absorbed are read from finer tiers.
    const stale = input.pending
      .map((p) => ({ from: floorTo(p.from, w), to: floorTo(p.to, w) + w }))
      .sort((a, b) => a.from - b.from);
    let cursor = from;
    for (const usable of subtract(start, end, stale)) {
      tile(cursor, usable.from, level + 1);
      pieces.push({ rollup, from: usable.from, to: usable.to });
      cursor = usable.to;
    }
    tile(cursor, to, level + 1);
  };
  tile(range.from, range.to, 0);
  return pieces;
}

/** The day bucket around a range's partial first day, when one rollup piece holds it whole (Plan.firstDay). */
function wholeFirstDay(input: PlanInput, tiers: readonly RollupInfo[]): Piece | null {
  const day = floorTo(input.range.from, DAY_MS);
  if (day === input.range.from || day + DAY_MS >= input.range.to) {
    return null;
  }
  const read = tiles(input, tiers, { from: day, to: day + DAY_MS });
  return read.length === 1 && read[0].rollup?.bucketMs === DAY_MS ? read[0] : null;
}

export function plan(input: PlanInput): Plan {
  const tiers = levels(input.rollups, input.fields, input.bucketMs, input.rowsPerBucket);
  const pieces = tiles(input, tiers, input.range);
  // Rows before the newest watermark of any rollup are tracked as changes when they arrive (they
  // invalidate a rollup): an answer read from raw rows there (no usable rollup holds its fields)
  // does not wait on rows still arriving.
  const newest = Math.max(-Infinity, ...input.rollups.map((r) => input.state.get(r.name)?.watermark ?? -Infinity));
  const last = pieces[pieces.length - 1];
  // Worked out when read (top rules' first phase, grouped timeseries): not on every other answer's plan.
  let firstDay: Piece | null | undefined;
  let wholeRange: Piece[] | undefined;
  return {
    pieces,
    live: !!last && last.rollup === null && input.range.to > newest,
    get firstDay() {
      if (firstDay === undefined) {
        firstDay = wholeFirstDay(input, tiers);
      }
      return firstDay;
    },
    get wholeRange() {
      if (wholeRange === undefined) {
        wholeRange = input.bucketMs
          ? tiles(input, levels(input.rollups, input.fields, null, input.rowsPerBucket), input.range)
          : pieces;
      }
      return wholeRange;
    },
  };
}

/** Tier names in the order read (coarsest first), `raw` last when raw rows are read. */
export function tiersOf(pieces: readonly Piece[]): string[] {
  const names = [
    ...new Set(
      pieces
        .filter((p) => p.rollup)
        .sort((a, b) => b.rollup!.bucketMs - a.rollup!.bucketMs)
        .map((p) => p.rollup!.tier)
    ),
  ];
  return pieces.some((p) => !p.rollup) ? [...names, RAW_TIER] : names;
}
