/**
 * Generates rows inside the database: one INSERT … SELECT over generate_series per few
 * hours, with the model's rules, parsers, weights, daily curve and error bursts passed as
 * arrays. Nothing crosses the wire row by row, so the embedded WASM database loads a day
 * in seconds where batched INSERTs from Node took over a minute.
 *
 * The rows are a pure function of (seed, model, rows per hour, time): every random draw is
 * a hash of (hour, row, draw) under the seed (hashint8extended), and row i of an hour of n
 * rows falls in the i-th n-th of the hour. So any time window [from, to) can be generated
 * alone, in any order or chunking, and windows that do not overlap never share a row: a
 * history, a back-fill, a catch-up after a restart and a live feed are all the same call.
 * The distributions are hourRows' (same model, same per-rule latency, error and weight);
 * the rows are not the same rows, and arrivals are spread evenly over each hour.
 */
import type { Pool, PoolClient } from 'pg';
import {
  buildModel,
  CATEGORIES,
  hourBurst,
  METRIC_COLUMNS,
  METRIC_TYPES,
  ruleQuantiles,
  rowsInHour,
  SOURCE_TYPES,
  type Model,
} from './model';
import { upsertDimensions } from './load';

const HOUR_MS = 3_600_000;
/** Resolution of the weighted rule pick: the rarest of 500 rules still gets ~50 slots. */
const PICK_SLOTS = 65_536;
/** Rows of one hour are numbered below this (the draw key packs hour, row and draw). */
export const MAX_SQL_ROWS_PER_HOUR = 1 << 24;

/** A uniform draw in [0, 1): 53 bits of a hash of (row key + j) under the seed. */
const u = (j: number) => `((hashint8extended(k + ${j}, $1) & 9007199254740991)::float8 / 9007199254740992.0)`;

/**
 * $1 seed; per hour: $2 start, $3 rows in the hour, $4 first and $5 last row index to
 * consider, $6/$7 the window within the hour (ms), $8 burst parser (0-based, -1 none),
 * $9/$10 burst window; $11–$26 the model (modelParams).
 */
const INSERT_SQL = `INSERT INTO metrics (${METRIC_COLUMNS.join(', ')})
SELECT to_timestamp((start_ms + off) / 1000.0), mt, rule_id, parser_id, category, source_type, status,
       floor(latency * 1000 + 0.5) / 1000, processed, floor(processed * u_match * 0.1)::bigint,
       CASE WHEN status = 'SUCCESS' THEN 0 ELSE floor(processed * u_fail * 0.5)::bigint END,
       floor((20 + latency * 0.05 + u_mem * 100) * 100 + 0.5) / 100, floor(u_cpu * 9000 + 0.5) / 100
FROM (
  SELECT s.*, CASE WHEN status = 'TIMEOUT' THEN 5000 + u_timeout * 1000
                   ELSE median * exp(sigma * sqrt(-2 * ln(1 - u_n1)) * cos(2 * pi() * u_n2)) END AS latency
  FROM (
    SELECT e.*, CASE WHEN u_status < err THEN 'ERROR' WHEN u_status < err + 0.003 THEN 'TIMEOUT' ELSE 'SUCCESS' END AS status
    FROM (
      SELECT p.start_ms, p.off, p.u_status, p.u_n1, p.u_n2, p.u_timeout, p.u_match, p.u_fail, p.u_mem, p.u_cpu,
             1 + floor(p.u_proc * 2000)::bigint AS processed,
             CASE WHEN p.ri IS NULL THEN NULL WHEN p.ri < 10000 THEN 'rule-' || lpad(p.ri::text, 4, '0') ELSE 'rule-' || p.ri END AS rule_id,
             CASE WHEN p.pi < 1000 THEN 'parser-' || lpad(p.pi::text, 3, '0') ELSE 'parser-' || p.pi END AS parser_id,
             CASE WHEN p.ri IS NULL THEN NULL ELSE ($26::text[])[($20::int[])[p.ri]] END AS category,
             ($25::text[])[($24::int[])[p.pi]] AS source_type,
             ($23::text[])[CASE WHEN p.ri IS NULL THEN ($22::int[])[p.pi] ELSE ($21::int[])[p.ri] END] AS mt,
             CASE WHEN p.ri IS NULL THEN ($17::float8[])[p.pi] ELSE ($14::float8[])[p.ri] END AS median,
             CASE WHEN p.ri IS NULL THEN ($18::float8[])[p.pi] ELSE ($15::float8[])[p.ri] END AS sigma,
             CASE WHEN p.pi - 1 = p.bp AND p.off >= p.bf AND p.off < p.bt
                  THEN greatest(0.35, CASE WHEN p.ri IS NULL THEN ($19::float8[])[p.pi] ELSE ($16::float8[])[p.ri] END)
                  ELSE CASE WHEN p.ri IS NULL THEN ($19::float8[])[p.pi] ELSE ($16::float8[])[p.ri] END END AS err
      FROM (
        SELECT r.*, CASE WHEN r.ri IS NULL THEN 1 + floor(r.u_parser * array_length($17::float8[], 1))::int
                         ELSE ($12::int[])[(r.ri - 1) * 3 + 1 + floor(r.u_rparser * ($13::int[])[r.ri])::int] END AS pi
        FROM (
          SELECT d.*, CASE WHEN d.u_kind < 0.8 THEN ($11::int[])[1 + floor(d.u_rule * ${PICK_SLOTS})::int] END AS ri
          FROM (
            SELECT start_ms, bp, bf, bt, off,
                   ${u(1)} AS u_kind, ${u(2)} AS u_rule, ${u(3)} AS u_rparser, ${u(4)} AS u_parser, ${u(5)} AS u_status,
                   ${u(6)} AS u_n1, ${u(7)} AS u_n2, ${u(8)} AS u_timeout, ${u(9)} AS u_proc, ${u(10)} AS u_match,
                   ${u(11)} AS u_fail, ${u(12)} AS u_mem, ${u(13)} AS u_cpu
            FROM (
              SELECT keys.*, floor((i + ${u(0)}) * ${HOUR_MS} / n)::int AS off
              FROM (
                SELECT h.start_ms, h.n, h.bp, h.bf, h.bt, h.lo, h.hi, i, ((h.start_ms / ${HOUR_MS}) * ${MAX_SQL_ROWS_PER_HOUR} + i) * 16 AS k
                FROM unnest($2::bigint[], $3::int[], $4::int[], $5::int[], $6::int[], $7::int[], $8::int[], $9::float8[], $10::float8[])
                       AS h(start_ms, n, i_from, i_to, lo, hi, bp, bf, bt),
                     generate_series(h.i_from, h.i_to) AS i
              ) keys
              OFFSET 0
            ) w
            WHERE off >= lo AND off < hi
            OFFSET 0
          ) d OFFSET 0
        ) r OFFSET 0
      ) p OFFSET 0
    ) e OFFSET 0
  ) s OFFSET 0
) t`;

/** The model as the array parameters $11–$26 of INSERT_SQL (indexes are 1-based, as SQL arrays). */
function modelParams(model: Model): unknown[] {
  const parserIndex = new Map(model.parsers.map((p, i) => [p.parserId, i + 1]));
  const ruleParsers: number[] = [];
  for (const r of model.rules) {
    for (let j = 0; j < 3; j++) {
      ruleParsers.push(parserIndex.get(r.parserIds[j] ?? r.parserIds[0])!);
    }
  }
  const idx = (list: readonly string[], v: string) => list.indexOf(v) + 1;
  return [
    ruleQuantiles(model, PICK_SLOTS).map((i) => i + 1), // $11 the rule each slot picks
    ruleParsers, // $12 three parser slots per rule
    model.rules.map((r) => r.parserIds.length), // $13
    model.rules.map((r) => r.medianMs), // $14
    model.rules.map((r) => r.sigma), // $15
    model.rules.map((r) => r.errorRate), // $16
    model.parsers.map((p) => p.medianMs), // $17
    model.parsers.map((p) => p.sigma), // $18
    model.parsers.map((p) => p.errorRate), // $19
    model.rules.map((r) => idx(CATEGORIES, r.category)), // $20
    model.rules.map((r) => idx(METRIC_TYPES, r.metricType)), // $21
    model.parsers.map((p) => idx(METRIC_TYPES, p.metricType)), // $22
    [...METRIC_TYPES], // $23
    model.parsers.map((p) => idx(SOURCE_TYPES, p.sourceType)), // $24
    [...SOURCE_TYPES], // $25
    [...CATEGORIES], // $26
  ];
}

export interface ModelOptions {
  rowsPerHour: number;
  rules: number;
  parsers: number;
  seed: number;
}

/** One hour's share of a window: which rows to consider and which of them fall inside. */
interface HourSlice {
  start: number;
  rows: number;
  iFrom: number;
  iTo: number;
  lo: number;
  hi: number;
}

function slices(options: ModelOptions, fromMs: number, toMs: number): HourSlice[] {
  const out: HourSlice[] = [];
  for (let h = Math.floor(fromMs / HOUR_MS) * HOUR_MS; h < toMs; h += HOUR_MS) {
    const rows = rowsInHour(h, options.rowsPerHour);
    const lo = Math.max(0, fromMs - h);
    const hi = Math.min(HOUR_MS, toMs - h);
    if (rows === 0 || hi <= lo) {
      continue;
    }
    // Row i lies in [i, i + 1) * HOUR / rows: only these indexes can fall in [lo, hi).
    const iFrom = Math.max(0, Math.floor((lo * rows) / HOUR_MS) - 1);
    const iTo = Math.min(rows - 1, Math.ceil((hi * rows) / HOUR_MS));
    out.push({ start: h, rows, iFrom, iTo, lo, hi });
  }
  return out;
}

/** About how many rows [fromMs, toMs) holds (for progress; the inserts report exact counts). */
export function expectedRows(options: ModelOptions, fromMs: number, toMs: number): number {
  return Math.round(slices(options, fromMs, toMs).reduce((sum, s) => sum + (s.rows * (s.hi - s.lo)) / HOUR_MS, 0));
}

/**
 * Writes the rows of [fromMs, toMs) into `metrics`, oldest or newest hours first, in
 * statements of about `chunkRows` rows; onRows is told each statement's row count.
 * A statement never spans more than `chunkRows` worth of hours, so on the embedded
 * database other queries get the session between them. Dimension tables are not touched
 * (see upsertDimensions).
 */
export class SqlGenerator {
  readonly model: Model;
  private readonly params: unknown[];

  constructor(readonly options: ModelOptions) {
    if (options.rowsPerHour * 1.6 >= MAX_SQL_ROWS_PER_HOUR) {
      throw new RangeError(
        `at most ${Math.floor(MAX_SQL_ROWS_PER_HOUR / 1.6)} rows per hour can be generated in the database`
      );
    }
    this.model = buildModel(options.seed, options.rules, options.parsers);
    this.params = modelParams(this.model);
  }

  async upsertDimensions(db: Pool | PoolClient): Promise<void> {
    await upsertDimensions(db, this.model);
  }

  /** The windows, each at most `chunkRows` rows, that insert() runs as separate statements. */
  chunks(
    fromMs: number,
    toMs: number,
    chunkRows = 50_000,
    newestFirst = false
  ): Array<{ fromMs: number; toMs: number }> {
    const hours = slices(this.options, fromMs, toMs);
    if (newestFirst) {
      hours.reverse();
    }
    const out: Array<{ fromMs: number; toMs: number }> = [];
    let current: { fromMs: number; toMs: number } | null = null;
    let rows = 0;
    for (const s of hours) {
      const n = (s.rows * (s.hi - s.lo)) / HOUR_MS;
      if (current && rows + n <= chunkRows) {
        current.fromMs = Math.min(current.fromMs, s.start + s.lo);
        current.toMs = Math.max(current.toMs, s.start + s.hi);
        rows += n;
      } else {
        current = { fromMs: s.start + s.lo, toMs: s.start + s.hi };
        out.push(current);
        rows = n;
      }
    }
    return out;
  }

  /** Inserts the rows of [fromMs, toMs) in one statement; returns how many. */
  async insert(db: Pool | PoolClient, fromMs: number, toMs: number): Promise<number> {
    const hours = slices(this.options, fromMs, toMs);
    if (!hours.length) {
      return 0;
    }
    const bursts = hours.map((s) => hourBurst(this.model, this.options.seed, s.start));
    const result = await db.query(INSERT_SQL, [
      String(Math.trunc(this.options.seed)),
      hours.map((s) => s.start),
      hours.map((s) => s.rows),
      hours.map((s) => s.iFrom),
      hours.map((s) => s.iTo),
      hours.map((s) => s.lo),
      hours.map((s) => s.hi),
      bursts.map((b) => b.parserIndex ?? -1),
      bursts.map((b) => b.from),
      bursts.map((b) => b.to),
      ...this.params,
    ]);
    return result.rowCount ?? 0;
  }

  /** Inserts [fromMs, toMs) chunk by chunk (dimension tables first); returns the rows written. */
  async load(
    db: Pool | PoolClient,
    fromMs: number,
    toMs: number,
    onRows: (n: number) => void = () => undefined,
    chunkRows?: number
  ): Promise<number> {
    await this.upsertDimensions(db);
    let total = 0;
    for (const c of this.chunks(fromMs, toMs, chunkRows)) {
      const n = await this.insert(db, c.fromMs, c.toMs);
      total += n;
      onRows(n);
    }
    return total;
  }
}
