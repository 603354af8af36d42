/**
 * The database work an answer would do, estimated before its statements run. The request
 * budget (budget.ts) bounds what an answer holds; this bounds what it reads: an answer with
 * percentiles merges every latency-histogram value of every source row in its range —
 * all groups, since "(other)" needs them too — and that is what makes a long, fine-grained,
 * grouped percentile panel take tens of seconds (30 days of hourly p95 per rule at 10M raw
 * rows: 6.9M values, 16–20 s, cancelled by the statement timeout). Such an answer is refused
 * at once with a 400 naming the estimate, the limit and how to narrow it, instead of holding a
 * database connection until the timeout.
 *
 * The estimate comes from the data itself, read every few minutes per rollup over its newest
 * 24 buckets (rows per bucket, histogram values per row, distinct values per dimension; and
 * its oldest bucket, before which a range reads nothing), so it follows the data's real
 * density and needs neither planner statistics nor flavour-specific catalogs. Until the first
 * reading, nothing is refused.
 */
import type { Pool } from 'pg';
import { NONE_GROUP, type FilterField } from '../contract';
import { Busy } from '../db/admission';

/** A refusal by a limit lowered to this machine's recent speed: busy (retry), not a query to narrow. */
export class SlowerThanUsual extends Busy {}
import { BudgetExceeded } from './budget';
import type { RollupInfo } from './catalog';
import { COLUMN_OF, fieldsOfColumns } from './columns';
import { KINDS } from './kinds';
import type { NormalizedQuery } from './normalize';
import type { Piece } from './plan';
import { ident } from './sql';

/** What one source (a rollup, or raw rows) holds per bucket of its width. */
export interface SourceDensity {
  bucketMs: number;
  /** Its oldest bucket (epoch ms): a range reaching further back reads nothing there. */
  first: number;
  rowsPerBucket: number;
  /** Histogram values (sketch entries) per row; 1 for raw rows (one value each). */
  valuesPerRow: number;
  /** Distinct values of each dimension in the sampled buckets. */
  distinct: Partial<Record<FilterField, number>>;
}

/** Densities by rollup name, and `raw` for raw rows. */
export type Densities = ReadonlyMap<string, SourceDensity>;

export const RAW_SOURCE = 'raw';

/**
 * The histogram values an answer would merge, or 0 when it merges none (its kind reads no
 * percentiles). Nothing is counted after `until` (now): a range reaching into the future reads
 * no rows there.
 */
export function histogramValues(
  q: NormalizedQuery,
  pieces: readonly Piece[],
  densities: Densities,
  until = Infinity
): number {
  if (!KINDS[q.kind].mergesHistograms(q)) {
    return 0;
  }
  let values = 0;
  for (const piece of pieces) {
    const d = densities.get(piece.rollup?.name ?? RAW_SOURCE);
    if (!d) {
      continue;
    }
    // Each filter keeps about its share of the values the dimension takes; "(none)" (rows
    // without the dimension, often the largest group) may keep any share of them.
    let share = 1;
    for (const [field, kept] of Object.entries(q.filters) as Array<[FilterField, string[]]>) {
      const distinct = d.distinct[field];
      if (distinct && !kept.includes(NONE_GROUP)) {
        share *= Math.min(1, kept.length / distinct);
      }
    }
    const span = Math.max(0, Math.min(piece.to, until) - Math.max(piece.from, d.first));
    values += (span / d.bucketMs) * d.rowsPerBucket * share * d.valuesPerRow;
  }
  return values;
}

/**
 * A value of a named series costs about this many times one folded into "(other)" or into an
 * ungrouped answer: a named series keeps its own (bucket, key) rows through the merge's sort,
 * where "(other)" folds hundreds of rows into one histogram a bucket. Measured at 10M rows
 * (2 cores): 12 days of 100 named series of 500 rules, 2.8M values, 6.4–8.5 s; 14 days of 10
 * named series, 3.2M values, 2.8 s; 30 days of daily points, 10 series, 2.0M values, 1.0 s.
 */
const NAMED_SERIES_WEIGHT = 5;

/**
 * The limit for this answer: the configured one, less as more of the grouping's values get
 * a series of their own (all of them when the number of values is not known).
 */
export function effectiveLimit(
  q: NormalizedQuery,
  pieces: readonly Piece[],
  densities: Densities,
  limit: number
): { limit: number; named: number; of: number } {
  if (!q.groupBy) {
    return { limit, named: 0, of: 0 };
  }
  const field = q.groupBy;
  // The values the grouping takes: in the data, or among those a filter on it keeps.
  const inData = Math.max(0, ...pieces.map((p) => densities.get(p.rollup?.name ?? RAW_SOURCE)?.distinct[field] ?? 0));
  const kept = q.filters[field]?.length ?? Infinity;
  const of = inData > 0 ? Math.min(inData, kept) : 0;
  const named = of > 0 ? Math.min(q.limit, of) : q.limit;
  const share = of > 0 ? named / of : 1;
  return { limit: limit / (1 + (NAMED_SERIES_WEIGHT - 1) * share), named, of };
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

/**
 * Throws BudgetExceeded when the answer would merge more histogram values than its limit.
 * Returns its work: the values weighted as the limit weighs them (a value of a named series
 * counts for what the limit lets through of one series' values), 0 when it merges none.
 */
export function checkWork(
  q: NormalizedQuery,
  pieces: readonly Piece[],
  densities: Densities,
  limit: number,
  until = Infinity
): number {
  const values = histogramValues(q, pieces, densities, until);
  const allowed = effectiveLimit(q, pieces, densities, limit);
  if (values <= allowed.limit) {
    return values > 0 ? (values * limit) / allowed.limit : 0;
  }
  const sources = [...new Set(pieces.map((p) => p.rollup?.name ?? 'raw rows'))].join(', ');
  const why = q.groupBy
    ? ` with ${allowed.named} named series of ${allowed.of ? fmt(allowed.of) : 'an unknown number of'} ${q.groupBy} values; ${fmt(limit)} for one series`
    : '';
  throw new BudgetExceeded(
    `this query would merge about ${fmt(values)} latency-histogram values (limit ${fmt(allowed.limit)}${why}) to compute its percentiles, more than the database can do within its time limit; narrow it: a shorter range, a filter, fewer series (a smaller limit), daily points (intervalMs of a day or more; in Grafana, Min interval 1d in the panel's query options), or no percentile metrics`,
    [{ path: `queries.${q.kind}`, message: `reads ${sources}: about ${fmt(values)} histogram values` }]
  );
}

/**
 * Reads each source's density over the span of its newest 24 buckets that hold rows (fewer
 * where it holds fewer), below its watermark: a quiet spell (no rows for the last minutes, a
 * demo whose generator stopped) measures the rows it had when busy, not an empty tier that
 * would make the planner read a wider rollup with more dimensions instead (plan.ts, worthReading).
 */
export async function readDensities(
  db: Pick<Pool, 'query'>,
  rollups: readonly RollupInfo[],
  watermarks: ReadonlyMap<string, number | null>
): Promise<Map<string, SourceDensity>> {
  const densities = new Map<string, SourceDensity>();
  for (const r of rollups) {
    const watermark = watermarks.get(r.name);
    if (watermark == null) {
      continue;
    }
    const fields = fieldsOfColumns(r.dims);
    const distinct = fields.map((f) => `count(DISTINCT ${ident(COLUMN_OF[f])})::float8 AS ${ident(COLUMN_OF[f])}`);
    const table = ident(r.name);
    // An index scan backwards over (bucket, …) reads just the rows of those buckets.
    const { rows } = await db.query(
      `WITH recent AS (SELECT DISTINCT bucket FROM ${table} WHERE bucket < $1 ORDER BY bucket DESC LIMIT 24)
       SELECT count(*)::float8 AS rows, coalesce(avg(cardinality(latency_sketch)), 0)::float8 AS values_per_row,
              coalesce(sum(execution_count), 0)::float8 AS executions,
              (SELECT extract(epoch FROM max(bucket) - min(bucket)) * 1000 FROM recent)::float8 AS spread_ms,
              (SELECT min(bucket) FROM ${table}) AS first${distinct.map((d) => `, ${d}`).join('')}
       FROM ${table} WHERE bucket >= (SELECT min(bucket) FROM recent) AND bucket < $1`,
      [new Date(watermark)]
    );
    const row = rows[0];
    const counts = Object.fromEntries(fields.map((f) => [f, Number(row[COLUMN_OF[f]])]));
    const first = row.first === null ? watermark : new Date(row.first).getTime();
    // Per unit of time from the oldest of those buckets to the newest: gaps between them (data
    // that arrives in bursts) count, a quiet spell after the newest does not.
    const buckets = row.spread_ms === null ? 1 : Number(row.spread_ms) / r.bucketMs + 1;
    densities.set(r.name, {
      bucketMs: r.bucketMs,
      first,
      rowsPerBucket: Number(row.rows) / buckets,
      valuesPerRow: Number(row.values_per_row),
      distinct: counts,
    });
    // Raw rows: the finest rollup built from them counts them (its executions), per its buckets.
    if (r.source === 'metrics' && !densities.has(RAW_SOURCE)) {
      densities.set(RAW_SOURCE, {
        bucketMs: r.bucketMs,
        first,
        rowsPerBucket: Number(row.executions) / buckets,
        valuesPerRow: 1,
        distinct: counts,
      });
    }
  }
  return densities;
}

/** How soon densities are read again when a rollup asked about was not measured. */
const UNMEASURED_REREAD_MS = 60_000;

/** Answers smaller than this share of the limit say little about the cost of a value (their fixed costs dominate). */
const MIN_OBSERVED_SHARE = 0.05;
/** How many recent answers' costs are kept, and for how long. */
const OBSERVED = 8;
/** Costs needed before the limit is lowered: one answer slowed by a lock or a stall says nothing of the machine. */
const LOWER_AFTER = 3;
// Three minutes: under a lowered limit the answers that could show the machine fast again are
// often refused, so what lowered it must age out soon (a cancelled answer is retried at most
// every few minutes on a machine that is really slow).
const OBSERVED_FOR_MS = 3 * 60_000;
/** The share of the statement timeout the heaviest accepted answer is expected to take. */
const TIMEOUT_SHARE = 0.6;
/** Retry-After of an answer refused by a lowered limit: within a minute faster answers may bring the typical cost down (slow ones age out within OBSERVED_FOR_MS). */
const LOWERED_RETRY_S = 60;

export interface WorkLimitOptions {
  /** Histogram values one series may merge (DB_MAX_HISTOGRAM_VALUES; 0: nothing is refused, densities are still read). */
  limit: number;
  /** The statement timeout answers run under (0 or absent: none, and no adaptation). */
  timeoutMs?: number;
  /** How old the densities may grow before they are read again (5 minutes). */
  maxAgeMs?: number;
  /** The clock (tests). */
  now?: () => number;
}

/**
 * Densities kept for a few minutes and re-read in the background; checkWork with the
 * service's limit — and, on a machine (or a day) too slow for that limit, a lower one: the
 * time large answers really took per unit of work is kept, and an answer whose expected time
 * (its work × the typical recent cost) exceeds TIMEOUT_SHARE of the statement timeout is
 * refused at once rather than cancelled by the timeout after holding a connection for all of
 * it. The fixed limit was calibrated on one machine; this follows the one the service runs on.
 *
 * The typical cost is the median of the recent ones (the lower middle), and only once three
 * are known: one answer slowed by something else (a lock, an event-loop stall, a refresh
 * holding the disk) does not lower the limit for everyone, as the costliest one did for ten
 * minutes. And an answer within the configured limit
 * but not within the lowered one is answered 503 busy (retry), not 400: nothing is wrong with
 * the query, the database is slower than usual now.
 */
export class WorkEstimator {
  private densities: Densities | null = null;
  private readAt = 0;
  private reading: Promise<void> | null = null;
  /** Recent answers' milliseconds per unit of work, with when each was seen. */
  private readonly costs: Array<{ msPerUnit: number; at: number }> = [];

  private readonly limit: number;
  private readonly maxAgeMs: number;
  private readonly timeoutMs: number;
  private readonly now: () => number;

  constructor(
    private readonly read: () => Promise<Densities>,
    o: WorkLimitOptions
  ) {
    this.limit = o.limit;
    this.maxAgeMs = o.maxAgeMs ?? 5 * 60_000;
    this.timeoutMs = o.timeoutMs ?? 0;
    this.now = o.now ?? Date.now;
  }

  /** The limit now: the configured one, or what the typical recent cost of work allows within the timeout. */
  currentLimit(): { limit: number; msPerUnit: number } {
    const since = this.now() - OBSERVED_FOR_MS;
    const recent = this.costs
      .filter((c) => c.at >= since)
      .map((c) => c.msPerUnit)
      .sort((a, b) => a - b);
    const cost = recent.length >= LOWER_AFTER ? recent[(recent.length - 1) >> 1] : 0;
    const fits = this.timeoutMs > 0 && cost > 0 ? Math.floor((TIMEOUT_SHARE * this.timeoutMs) / cost) : Infinity;
    return { limit: Math.min(fits, this.limit), msPerUnit: cost };
  }

  /**
   * What an answer of `work` units took at the database (ms); a cancelled one took at least
   * the timeout. Only large answers count.
   */
  observe(work: number, ms: number): void {
    if (work <= 0 || work < MIN_OBSERVED_SHARE * this.limit || !(ms > 0)) {
      return;
    }
    this.costs.push({ msPerUnit: ms / work, at: this.now() });
    if (this.costs.length > OBSERVED) {
      this.costs.shift();
    }
  }

  /** Re-reads the densities now (start-up, tests); a failed reading keeps the last one, and is tried again a reading interval later. */
  refresh(): Promise<void> {
    this.readAt = this.now();
    this.reading ??= this.read()
      .then((d) => {
        this.densities = d;
      })
      .catch(() => undefined)
      .finally(() => (this.reading = null));
    return this.reading;
  }

  /**
   * Throws BudgetExceeded when the answer would read too much; starts a re-read when the
   * densities are old. Returns the answer's work (checkWork's), 0 before the first reading.
   */
  check(q: NormalizedQuery, pieces: readonly Piece[]): number {
    if (this.now() - this.readAt > this.maxAgeMs) {
      void this.refresh();
    }
    if (!this.densities) {
      return 0;
    }
    if (this.limit <= 0) {
      return 0;
    }
    // Over the configured limit: a 400 saying how to narrow the query.
    const now = this.now();
    const work = checkWork(q, pieces, this.densities, this.limit, now);
    const { limit, msPerUnit } = this.currentLimit();
    if (work > limit) {
      const values = histogramValues(q, pieces, this.densities, now);
      throw new SlowerThanUsual(
        LOWERED_RETRY_S,
        `the database merges latency histograms slower than usual now: recent large answers took about ${(msPerUnit * 1000).toFixed(2)} µs per value of one series, so this query (about ${fmt(values)} values, as much work as ${fmt(work)} of one series) would take about ${((work * msPerUnit) / 1000).toFixed(1)} s, more than ${Math.round(TIMEOUT_SHARE * 100)} % of the ${this.timeoutMs} ms statement timeout; a narrower range or fewer series would fit now`
      );
    }
    return work;
  }

  /**
   * Rows a rollup held per bucket at the last reading (undefined before it): the planner's
   * measure of size. A rollup the last reading found empty (one being built, as after an
   * upgrade) has the densities read again within a minute rather than at their usual age.
   */
  rowsPerBucket(rollup: string): number | undefined {
    const rows = this.densities?.get(rollup)?.rowsPerBucket;
    if (rows === undefined && this.densities && this.now() - this.readAt > UNMEASURED_REREAD_MS) {
      void this.refresh();
    }
    return rows;
  }
}
