/**
 * `topRules`: the `limit` slowest rules (by p95, p99, average, error rate or count), with
 * names and categories, read in two phases so that exact sketches are merged for the few
 * rules that can rank, not for every rule.
 *
 * Phase one bounds each rule's percentile from below and above; a rule whose upper bound is
 * below the limit-th largest lower bound cannot make the list (ties kept). Two ways to bound,
 * cheapest first:
 * - rank keys (rollups that store them, see the registry's rank_keys): a quantile of a union
 *   of parts lies between its parts' quantiles. For part i with n_i values and level p, let
 *   lo_i be the key at 0-based rank floor(p(n_i - 1)) and hi_i the key at rank
 *   min(n_i - 1, ceil(p n_i)). Fewer than sum floor(p(n_i - 1)) <= floor(p(N - 1)) values lie
 *   below min lo_i, so the union's key at rank floor(p(N - 1)) is at least min lo_i; at least
 *   sum (rank_i + 1) > ceil(p(N - 1)) values lie at or below max hi_i, so its key at rank
 *   ceil(p(N - 1)) is at most max hi_i. The answer interpolates between those two keys' values
 *   and is clamped to [min, max]: so are the bounds. Reads four integers per rollup row.
 * - coarse sketches (every rollup): merge keys / 16 per rule and read the keys at those
 *   ranks; a coarse key spans 16 fine ones, so its value range bounds the answer.
 * In SQL, rank keys are tight when rows hold many values and loose when they hold few, so
 * where they exist they narrow the rules first and, when more than twice `limit` survive,
 * coarse sketches narrow the survivors, in one statement. Where the sketch functions run in C
 * (ruleperf_native_keys_at_agg), the coarse sketches of every rule are merged in one pass
 * instead: merging costs little more than reading the rows, and rank keys (even weighed by
 * part size in C) left a third of the rules, whose rows were then read a second time. With
 * 5,000 rules over 7 days at 10M rows: 1,535 survivors and 210 ms p50 for the answer, against
 * 107 ms; with 500 rules 35 against 22 ms. Other orderings (average, error rate, count) are
 * exact sums: phase one ranks them directly.
 *
 * With ruleperf_native 1.3, phase one reads the range's partial first day as its whole day
 * (one row a rule in place of up to 22 at five widths; `phaseOnePieces`), and the aggregate
 * bounds the range's keys from the rows inside it and all rows together, whatever part of that
 * day lies in the range (`ruleperf_native_keys_within_agg`; native/ruleperf_native.c gives the
 * bounds and their proof).
 *
 * When it reads many rows and a second admission slot is free, phase one reads the two halves
 * of the rules (split at the middle known rule id) on two connections, one per core, each half
 * judged against its own threshold; the rows of both, judged again together, hold every rule
 * one statement would choose (`chooseCandidates`). At 5,000 rules over 7 days at 10M rows: 86 ms p50
 * for the answer against 116 ms with one statement.
 *
 * Phase two merges the fine sketches of the candidates (split over two connections when
 * there are several, so both cores work), and the service ranks them exactly.
 */
import type { Notice, TopRulesSort } from '../../contract';
import { measures, numberField, rankValue, type MeasureName, type Row } from '../measures';
import type { NormalizedQuery } from '../normalize';
import type { Piece, Plan } from '../plan';
import { DAY_MS } from '../range';
import { GAMMA, OFFSET, representativeSql, TOP_KEY } from '../sketch';
import { mergedSelect, Params, sourceRows, type RepeatedStatement, type Statement } from '../sql';
import { DEFAULT_ROW_LIMIT, DEFAULT_SORT } from './defaults';
import type { RuleSplit } from '../rule-split';
import type { KindRead, KindSpec, Reader } from './types';
import { NO_NATIVE, type NativeFunctions } from '../../db/native';

const COLUMNS: MeasureName[] = [
  'executionCount',
  'avgExecutionTimeMs',
  'p50ExecutionTimeMs',
  'p95ExecutionTimeMs',
  'p99ExecutionTimeMs',
  'maxExecutionTimeMs',
  'errorCount',
  'errorRate',
];

/** Phase one's exact orderings (sums over src rows in CTE `agg` as `a`). */
const SUM_ORDER: Partial<Record<TopRulesSort, string>> = {
  avgExecutionTimeMs: 'a.exec_time_sum / a.execution_count',
  errorRate: 'a.error_count / a.execution_count',
  executionCount: 'a.execution_count',
};
const PERCENTILE: Partial<Record<TopRulesSort, 0.95 | 0.99>> = { p95ExecutionTimeMs: 0.95, p99ExecutionTimeMs: 0.99 };
/** Positions in rank keys: {p95 lower, p95 upper, p99 lower, p99 upper}. */
const RANK_KEY_INDEX = { 0.95: 1, 0.99: 3 } as const;

/** Coarse key c holds fine keys 16c … 16c+15: its value range, as SQL. */
const coarseLowSql = (k: string) =>
  `(CASE WHEN ${k} = 0 THEN 0::float8 ELSE power(${GAMMA}::float8, (16 * ${k} - ${OFFSET + 1})::float8) END)`;
// The coarse key holding the top key bounds nothing above: the top key stands for Infinity (sketch.ts).
const coarseHighSql = (k: string) =>
  `(CASE WHEN 16 * ${k} + 15 >= ${TOP_KEY} THEN 'Infinity'::float8 ELSE power(${GAMMA}::float8, (16 * ${k} + 15 - ${OFFSET})::float8) END)`;

const byRule = { bucketMs: null, group: 'ruleId' as const, notNull: ['ruleId' as const] };

/**
 * CTEs ending in `bounds` (grp, klo, khi, lo, hi): per rule of CTE `src` (grp, exec_time_min,
 * exec_time_max, latency_sketch), the keys at ranks floor(h) and ceil(h), h = level·(n − 1), of
 * its merged coarse sketches, and the value range they bound, clamped to the rule's [min, max].
 * In SQL a histogram walk joined to the minima and maxima; in C, where the ruleperf_native
 * extension serves the sketch functions, one aggregate pass (src read once, not kept): the
 * same keys, and rules without entries left out alike.
 */
export function coarseBounds(level: number, nativeSketches: boolean, partlyOutside = false): string {
  // Rows partly outside the range (its first day read whole) may leave a rule no lower bound.
  const low = `greatest(mn, ${coarseLowSql('klo')})`;
  const bounded = (keyed: string) => `bounds AS (
  SELECT grp, klo, khi, ${partlyOutside ? `CASE WHEN klo IS NULL THEN NULL ELSE ${low} END` : low} AS lo, least(mx, ${coarseHighSql('khi')}) AS hi FROM (
    ${keyed}) k
)`;
  if (nativeSketches) {
    const keys = partlyOutside
      ? `ruleperf_native_keys_within_agg(latency_sketch, outside, ${level}::float8)`
      : `ruleperf_native_keys_at_agg(latency_sketch, ${level}::float8)`;
    return bounded(`SELECT grp, mn, mx, kk[1] AS klo, kk[2] AS khi FROM (
      SELECT grp, min(exec_time_min) AS mn, max(exec_time_max) AS mx, ${keys} AS kk
      FROM src GROUP BY grp) a
    WHERE kk IS NOT NULL`);
  }
  if (partlyOutside) {
    throw new Error('coarseBounds: rows partly outside the range need the ruleperf_native extension');
  }
  return `agg AS (
  SELECT grp, min(exec_time_min) AS mn, max(exec_time_max) AS mx FROM src GROUP BY grp
), hist AS (
  SELECT grp, (e >> 32)::int AS k, sum(e & 4294967295)::float8 AS c FROM src, unnest(latency_sketch) AS e GROUP BY grp, k
), cum AS (
  SELECT *, sum(c) OVER (w ORDER BY k) - c AS before, ${level} * (sum(c) OVER w - 1) AS h FROM hist WINDOW w AS (PARTITION BY grp)
), keys AS (
  SELECT grp, min(k) FILTER (WHERE before <= floor(h) AND floor(h) < before + c) AS klo, min(k) FILTER (WHERE before <= ceil(h) AND ceil(h) < before + c) AS khi
  FROM cum GROUP BY grp
), ${bounded('SELECT k.grp, a.mn, a.mx, k.klo, k.khi FROM keys k JOIN agg a ON a.grp = k.grp')}`;
}

/** One half of the rules for phase one: ids below `at`, or from `at` on (byte order, as rule_id columns compare). */
export interface RuleHalf {
  side: 'below' | 'from';
  at: string;
}

/**
 * Phase one: rows (grp, lo, hi) of the rules that can rank, by percentile bounds, or (grp, v)
 * of the `limit` first by an exact sum ordering. With `half`, over that half of the rules
 * only, each half judged against its own threshold: `chooseCandidates` over both halves' rows
 * holds every rule one statement over all would choose.
 */
export function candidatesStatement(
  q: NormalizedQuery,
  pieces: readonly Piece[],
  nativeSketches = false,
  half?: RuleHalf,
  firstDay: Piece | null = null
): Statement & { method: 'exact' | 'rankKeys' | 'coarse' } {
  const p = new Params();
  const percentile = PERCENTILE[q.sortBy!];
  if (firstDay && !(percentile && nativeSketches)) {
    // Read any other way, the pieces alone would be less than the range.
    throw new Error(
      'candidatesStatement: a first day read whole needs a percentile order and the ruleperf_native extension'
    );
  }
  // One byte order in every table (rollup and raw columns alike), so each rule falls in one
  // half; `|| ''` keeps it a filter on the rows the time ranges select (half the rules over
  // every bucket, through the by-rule index, is far more: a 100 ms bitmap at 10M rows).
  const inHalf = half
    ? { extraCondition: `("rule_id" || '') COLLATE "C" ${half.side === 'below' ? '<' : '>='} ${p.add(half.at)}` }
    : {};
  if (!percentile) {
    const src = sourceRows(q, pieces, p, { shape: 'counts', ...byRule, ...inHalf });
    const text = `WITH src AS (\n  ${src}\n), agg AS (
  SELECT grp, sum(execution_count)::float8 AS execution_count, sum(exec_time_sum) AS exec_time_sum, sum(error_count)::float8 AS error_count
  FROM src GROUP BY grp)
SELECT grp, ${SUM_ORDER[q.sortBy!]} AS v FROM agg a ORDER BY v DESC NULLS LAST, grp LIMIT ${p.add(q.limit)}`;
    return { text, values: p.values, method: 'exact' };
  }
  const limit = p.add(q.limit);
  /** Coarse-sketch bounds per rule over the rows of CTE `src` (the keys around rank h = q·(n − 1)), then the candidates. */
  const coarseCandidates = (
    partlyOutside = false
  ) => `${coarseBounds(percentile, nativeSketches, partlyOutside)}, threshold AS (
  SELECT lo FROM bounds ORDER BY lo DESC NULLS LAST OFFSET ${limit} - 1 LIMIT 1
)
SELECT grp, lo, hi FROM bounds WHERE hi >= coalesce((SELECT lo FROM threshold), '-infinity'::float8)`;

  if (firstDay) {
    // The range from the end of its first day, and that whole day, marked as partly outside.
    const inside = sourceRows(q, pieces, p, { shape: 'coarse', ...byRule, ...inHalf });
    const day = sourceRows(q, [firstDay], p, { shape: 'coarse', ...byRule, ...inHalf });
    const text = `WITH inside AS (\n  ${inside}\n), first_day AS (\n  ${day}\n), src AS (
  SELECT grp, exec_time_min, exec_time_max, latency_sketch, false AS outside FROM inside
  UNION ALL
  SELECT grp, exec_time_min, exec_time_max, latency_sketch, true FROM first_day
), ${coarseCandidates(true)}`;
    return { text, values: p.values, method: 'coarse' };
  }

  // In SQL, rank keys first where any rollup piece stores them (pieces that don't compute them
  // on the fly). In C the coarse merge of every rule costs little more than reading its rows,
  // and reading them once beats reading the rank keys' survivors again.
  if (!nativeSketches && pieces.some((piece) => piece.rollup?.rankKeys)) {
    const ranked = sourceRows(q, pieces, p, { shape: 'rankKeys', ...byRule, ...inHalf });
    const i = RANK_KEY_INDEX[percentile];
    const clamp = (v: string) => `greatest(r.mn, least(r.mx, ${v}))`;
    // Coarse sketches only when rank keys left many rules (rows holding few values each).
    const many = `(SELECT count(*) FROM rank_candidates) > 2 * ${limit}`;
    const survivors = sourceRows(q, pieces, p, {
      shape: 'coarse',
      ...byRule,
      extraCondition: `${many} AND rule_id = ANY(ARRAY(SELECT grp FROM rank_candidates))`,
    });
    const ranks = `SELECT grp, min(exec_time_min) AS mn, max(exec_time_max) AS mx, min(rank_keys[${i}]) AS klo, max(rank_keys[${i + 1}]) AS khi
  FROM ranked GROUP BY grp`;
    const text = `WITH ranked AS (
  ${ranked}
), ranks AS (
  ${ranks}
), rank_bounds AS (
  SELECT grp, ${clamp(representativeSql('r.klo'))} AS lo, ${clamp(representativeSql('r.khi'))} AS hi FROM ranks r
), rank_threshold AS (
  SELECT lo FROM rank_bounds ORDER BY lo DESC OFFSET ${limit} - 1 LIMIT 1
), rank_candidates AS (
  SELECT grp, lo, hi FROM rank_bounds WHERE hi >= coalesce((SELECT lo FROM rank_threshold), '-infinity'::float8)
), src AS (
  ${survivors}
), ${coarseCandidates()}
UNION ALL
SELECT grp, lo, hi FROM rank_candidates WHERE NOT ${many}`;
    return { text, values: p.values, method: 'rankKeys' };
  }
  const src = sourceRows(q, pieces, p, { shape: 'coarse', ...byRule, ...inHalf });
  return { text: `WITH src AS (\n  ${src}\n), ${coarseCandidates()}`, values: p.values, method: 'coarse' };
}

/**
 * The rows of statements run side by side, once every one has finished: when one fails the
 * answer gives up its slot only after the other is done, so the admission count stays the
 * number of connections in use.
 */
async function everyStatement(runs: Array<Promise<Row[]>>): Promise<Row[][]> {
  const settled = await Promise.allSettled(runs);
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    throw failed.reason;
  }
  return settled.map((r) => (r as PromiseFulfilledResult<Row[]>).value);
}

/** Top rules' order: value descending, nulls last, then rule id in byte order (the rule_id columns are COLLATE "C"). */
interface Ranked {
  v: number | null;
  id: Buffer;
}
const rankOrder = (a: Ranked, b: Ranked): number => {
  if (a.v !== b.v) {
    return a.v === null ? 1 : b.v === null ? -1 : b.v - a.v;
  }
  return Buffer.compare(a.id, b.id);
};

/** The `limit` first of items by rankOrder. */
function firstRanked<T>(items: T[], rank: (item: T) => Ranked, limit: number): T[] {
  return items
    .map((item) => ({ item, ...rank(item) }))
    .sort(rankOrder)
    .slice(0, limit)
    .map((r) => r.item);
}

/**
 * The candidates among phase one's rows, which may come from two halves of the rules: by
 * percentile, the rules whose upper bound reaches the limit-th largest lower bound (each half
 * returned every rule reaching its own, lower or equal, threshold, so these hold every rule one
 * statement over all would return, and are the same ones with one-step bounds; with rank keys
 * a half may narrow on coarse sketches where the whole did not); by an exact sum, the `limit`
 * first of both halves' `limit` first (value descending, nulls last, then rule id in byte
 * order), as one statement orders them.
 */
export function chooseCandidates(rows: Row[], q: NormalizedQuery): string[] {
  if (!PERCENTILE[q.sortBy!]) {
    const ranked = (r: Row) => ({ v: r.v === null ? null : Number(r.v), id: Buffer.from(String(r.grp)) });
    return firstRanked(rows, ranked, q.limit).map((r) => String(r.grp));
  }
  // A missing bound bounds nothing: it lowers the threshold, or keeps its rule.
  const bound = (v: unknown, missing: number) => (v === null || v === undefined ? missing : Number(v));
  const lows = rows.map((r) => bound(r.lo, -Infinity)).sort((a, b) => b - a);
  const threshold = lows.length >= q.limit ? lows[q.limit - 1] : -Infinity;
  return rows.filter((r) => bound(r.hi, Infinity) >= threshold).map((r) => String(r.grp));
}

/** Phase two's candidates in one group, or two when there are enough to share between two connections. */
export function splitCandidates(ids: string[]): string[][] {
  const sorted = [...ids].sort();
  if (sorted.length === 0) {
    return [];
  }
  if (sorted.length <= 4) {
    return [sorted];
  }
  return [sorted.filter((_, i) => i % 2 === 0), sorted.filter((_, i) => i % 2 === 1)];
}

/** Exact figures for the given rules (all rules when null), names and categories joined. */
export function exactStatement(
  q: NormalizedQuery,
  pieces: readonly Piece[],
  ruleIds: string[] | null,
  native: NativeFunctions = NO_NATIVE
): Statement {
  const p = new Params();
  const src = sourceRows(q, pieces, p, {
    shape: 'fine',
    ...byRule,
    filters: ruleIds ? { ...q.filters, ruleId: ruleIds } : q.filters,
  });
  const text = `WITH src AS (\n  ${src}\n)
SELECT b.*, r.rule_name AS name, r.rule_category AS category FROM (${mergedSelect(['grp'], true, native)}) b
LEFT JOIN rules r ON r.rule_id = b.grp`;
  return { text, values: p.values };
}

/**
 * Rows phase one reads, estimated, from which two statements beat one: at 45M rows with 500
 * rules, 7 days (about 8,500 rows) reads as fast in one (~11 ms in `psql`; halves ~10 ms
 * each: planning and index scans cost the same in each), 30 days (about 30,000) 45 → 41 ms
 * p50 split, and 5,000 rules over 7 days at 10M rows (60,000 to 100,000) 116 → 86 ms.
 */
const SPLIT_FROM_ROWS = 20_000;

/**
 * Whether phase one reads enough rows to split: the rules it reads (the known ones, or those a
 * rule filter names) × their buckets in the pieces (raw rows counted as minutes).
 */
export function worthSplitting(
  split: RuleSplit | null,
  q: NormalizedQuery,
  pieces: readonly Piece[]
): split is RuleSplit {
  if (split === null) {
    return false;
  }
  const rules = Math.min(split.rules, q.filters.ruleId?.length ?? Infinity);
  const bucketsPerRule = pieces.reduce((n, p) => n + (p.to - p.from) / (p.rollup?.bucketMs ?? 60_000), 0);
  return rules * bucketsPerRule >= SPLIT_FROM_ROWS;
}

/** What phase one reads: pieces inside the range, and the range's first day whole where it may (phaseOnePieces). */
export interface PhaseOnePieces {
  inside: readonly Piece[];
  firstDay: Piece | null;
}

/**
 * Range after its first day from which that day is read whole in phase one: the day then adds
 * at most about a sixth to the values bounding a rule, and the candidates stay few.
 */
const WHOLE_FIRST_DAY_AFTER_MS = 5 * DAY_MS;

/**
 * Phase one's pieces: the plan's, or, where the extension bounds from rows partly outside the
 * range (ruleperf_native 1.3), the order is a percentile and a rollup holds the range's first
 * day whole (Plan.firstDay), the range's pieces from the end of that day and the whole day:
 * one row a rule in place of the partial day's minutes, ten-minutes, hours and six-hours (up
 * to 22; at 5,000 rules over 7 days, about a third of phase one's rows). Exact sums (average,
 * error rate, count) read the range itself.
 */
export function phaseOnePieces(q: NormalizedQuery, plan: Plan, withinBounds: boolean): PhaseOnePieces {
  const day = plan.firstDay;
  const asPlanned = { inside: plan.pieces, firstDay: null };
  if (!withinBounds || !PERCENTILE[q.sortBy!] || !day || q.range.to - day.to < WHOLE_FIRST_DAY_AFTER_MS) {
    return asPlanned;
  }
  // A piece running past the day's end is read from there: whole buckets only where its width
  // divides a day (a registry may hold a 7-hour rollup, whose bucket there would be cut).
  const straddling = plan.pieces.filter((p) => p.from < day.to && p.to > day.to);
  if (straddling.some((p) => p.rollup && DAY_MS % p.rollup.bucketMs !== 0)) {
    return asPlanned;
  }
  const inside = plan.pieces.filter((p) => p.to > day.to).map((p) => (p.from < day.to ? { ...p, from: day.to } : p));
  return { inside, firstDay: day };
}

/**
 * Phase one, over the two halves of the rules side by side when it reads many rows and a
 * second admission slot is free at this moment (each reads and merges half the rows, one per
 * core: at 5,000 rules over 7 days, ~47 ms each against ~76 ms for one statement), else in
 * one statement. Busy, the service never waits for a slot to split, nor splits onto a queue.
 */
async function candidates(
  db: Reader,
  q: NormalizedQuery,
  plan: Plan
): Promise<{ ids: string[]; statements: KindRead['statements'] }> {
  const { inside, firstDay } = phaseOnePieces(q, plan, db.native.withinBounds);
  const read = firstDay ? [firstDay, ...inside] : inside;
  const wholeDay = firstDay ? ', its first day read whole' : '';
  const split = await db.ruleSplit();
  if (worthSplitting(split, q, read)) {
    const { at } = split;
    const [below, from] = (['below', 'from'] as const).map((side) =>
      candidatesStatement(q, inside, db.native.sketches, { side, at }, firstDay)
    );
    const beside = db.besideNow(from);
    if (beside) {
      const rows = (await everyStatement([db.rows(below), beside])).flat();
      return {
        ids: chooseCandidates(rows, q),
        statements: [
          {
            title: `phase 1 (1/2, side by side): candidate rules below ${at} (${below.method}${wholeDay})`,
            statement: below,
          },
          {
            title: `phase 1 (2/2, side by side): candidate rules from ${at} on (${from.method}${wholeDay})`,
            statement: from,
          },
        ],
      };
    }
  }
  const one = candidatesStatement(q, inside, db.native.sketches, undefined, firstDay);
  return {
    ids: chooseCandidates(await db.rows(one), q),
    statements: [{ title: `phase 1: candidate rules (${one.method}${wholeDay})`, statement: one }],
  };
}

/**
 * Phase two's statements: the first on the answer's slot, the others beside it on slots free at
 * this moment, else after it on the same slot; their rows, and whether they all ran side by side.
 */
async function phaseTwoRows(db: Reader, exact: Statement[]): Promise<{ rows: Row[]; sideBySide: boolean }> {
  const [first, ...rest] = exact;
  const onSlot = first ? [db.rows(first)] : [];
  const beside = rest.map((s) => db.besideNow(s));
  const results = await everyStatement([...onSlot, ...beside.map((b, i) => b ?? db.rows(rest[i]))]);
  return { rows: results.flat(), sideBySide: beside.every((b) => b !== null) };
}

/** Phase two as the inspector shows it: statements of one text (the candidates split in two) shown once, with each run's values. */
function phaseTwo(
  exact: Statement[],
  groups: string[][],
  sideBySide: boolean
): Array<{ title: string; statement: Statement | RepeatedStatement }> {
  if (exact.length > 1 && exact.every((s) => s.text === exact[0].text)) {
    const sizes = groups.map((g) => g.length).join(' and ');
    return [
      {
        title: `phase 2: exact answers for ${sizes} candidates, ${sideBySide ? 'side by side' : 'one after the other'}`,
        statement: { ...exact[0], runs: exact.map((s) => s.values) },
      },
    ];
  }
  return exact.map((statement, i) => ({
    title: `phase 2 (${i + 1}/${exact.length}): exact answers for ${groups[i].length} candidates`,
    statement,
  }));
}

/** The `limit` first rows by the sort value descending (nulls last), then rule id in byte order (dimension columns are COLLATE "C"). */
export function rankTopRules(rows: Row[], q: NormalizedQuery, seconds: number, limit = q.limit): Row[] {
  const key: MeasureName = q.sortBy!; // every sort is a measure (checked by the compiler)
  const ranked = (row: Row) => ({ v: rankValue(row, seconds, key), id: Buffer.from(String(row.grp)) });
  return firstRanked(rows, ranked, limit);
}

/**
 * Ranked by a percentile, the rule listed last and the first candidate left out may stand in
 * the other order exactly: each figure is the sketch's, within 0.8 % of the exact value
 * (sketch.ts), so two within a factor GAMMA of each other can be either way round (a probe
 * against percentile_cont found 13 of 400 such lists). Said, naming both. Rules phase one left
 * out are below every listed one exactly (its bounds hold the exact values too).
 */
export function nearTieAtCut(rows: Row[], q: NormalizedQuery, seconds: number): Notice | null {
  const level = PERCENTILE[q.sortBy!];
  if (!level || rows.length <= q.limit) {
    return null;
  }
  const [last, next] = rankTopRules(rows, q, seconds, q.limit + 1).slice(q.limit - 1);
  const [a, b] = [last, next].map((r) => rankValue(r, seconds, q.sortBy!));
  // (1e-5 more: both figures are rounded to six digits.)
  if (a === null || b === null || a >= b * GAMMA * (1 + 1e-5)) {
    return null;
  }
  const p = `p${Math.round(level * 100)}`;
  return {
    severity: 'info',
    text:
      `Rules are ranked by their ${p} as the latency sketch gives it, each within 0.8 % of the exact value: ` +
      `${String(last.grp)} (listed last, ${a} ms) and ${String(next.grp)} (the first left out, ${b} ms) are that close, ` +
      `so over the exact values ${String(next.grp)} may rank in its place.`,
  };
}

export const topRules: KindSpec = {
  params: (query) => ({
    groupBy: null,
    metrics: [],
    limit: query.limit ?? DEFAULT_ROW_LIMIT,
    sortBy: query.sortBy ?? DEFAULT_SORT,
  }),
  ownFields: ['ruleId'],
  bucketed: false,
  names: () => ({ rules: true, parsers: false }),
  size: (q) => ({ rows: q.limit, cells: q.limit * (COLUMNS.length + 3), frames: 1 }),
  // Ranked on rank keys or coarse histograms; only the `limit` chosen rules' histograms are merged.
  mergesHistograms: () => false,
  async read(db, q, plan) {
    const phaseOne = await candidates(db, q, plan);
    const groups = splitCandidates(phaseOne.ids);
    const exact = groups.map((group) => exactStatement(q, plan.pieces, group, db.native));
    const two = await phaseTwoRows(db, exact);
    const seconds = (q.range.to - q.range.from) / 1000;
    const nearTie = nearTieAtCut(two.rows, q, seconds);
    return {
      rows: rankTopRules(two.rows, q, seconds),
      statements: [...phaseOne.statements, ...phaseTwo(exact, groups, two.sideBySide)],
      ...(nearTie ? { notices: [nearTie] } : {}),
    };
  },
  notices(q, rows) {
    // Rows are filtered by the category each execution recorded; the label is the rule's
    // category now (the rules table, as its name). A rule moved since shows the new one.
    const wanted = q.filters.ruleCategory;
    if (!wanted) {
      return [];
    }
    // (A rule the rules table does not hold has no category now: nothing to explain.)
    const moved = rows.filter((r) => r.category != null && !wanted.includes(String(r.category)));
    if (!moved.length) {
      return [];
    }
    const listed = moved
      .slice(0, 5)
      .map((r) => `${String(r.grp)} (now ${JSON.stringify(r.category)})`)
      .join(', ');
    return [
      {
        severity: 'info',
        text:
          `The ruleCategory filter keeps the executions recorded under ${wanted.map((c) => JSON.stringify(c)).join(' or ')}; ` +
          `${moved.length === 1 ? 'a rule listed is' : `${moved.length} rules listed are`} in another category now, shown as it is now: ${listed}${moved.length > 5 ? ', …' : ''}.`,
      },
    ];
  },
  frames(q, rows) {
    const ms = rows.map((r) => measures(r, (q.range.to - q.range.from) / 1000));
    return [
      {
        schema: {
          name: 'topRules',
          fields: [
            { name: 'ruleId', type: 'string' },
            { name: 'ruleName', type: 'string' },
            { name: 'ruleCategory', type: 'string' },
            ...COLUMNS.map((c) => numberField(c)),
          ],
          meta: { preferredVisualisationType: 'table' },
        },
        data: {
          values: [
            rows.map((r) => r.grp),
            rows.map((r) => r.name ?? null),
            rows.map((r) => r.category ?? null),
            ...COLUMNS.map((c) => ms.map((m) => m[c])),
          ],
        },
      },
    ];
  },
};
