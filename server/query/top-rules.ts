/**
 * Top rules, phase one: the few rules that can be among the `limit` slowest, so that
 * phase two (the ordinary exact query) merges fine sketches for those rules only.
 *
 * Ordering by a percentile, each rule's value is bounded from below and above; a rule
 * whose upper bound is below the limit-th largest lower bound cannot make the list (ties
 * included: the comparison keeps equal values). Two ways to bound, cheapest first:
 *
 * - rank keys (rollups that store them, sql/postgres/004_rank_keys.sql): a quantile of a
 *   union of parts lies between its parts' quantiles. For part i with n_i values and level
 *   p, let lo_i be the key at 0-based rank floor(p(n_i - 1)) and hi_i the key at rank
 *   min(n_i - 1, ceil(p n_i)). Fewer than sum floor(p(n_i - 1)) <= floor(p(N - 1)) values
 *   lie below min lo_i, so the union's key at rank floor(p(N - 1)) is at least min lo_i;
 *   at least sum (rank_i + 1) > ceil(p(N - 1)) values lie at or below max hi_i, so its key
 *   at rank ceil(p(N - 1)) is at most max hi_i. The answer interpolates between those two
 *   keys' values and is clamped to [min, max]: so are the bounds. Reads four integers per
 *   rollup row.
 * - coarse sketches (every rollup): merge keys / 16 per rule and read the keys at those
 *   ranks; a coarse key spans 16 fine ones, so its value range bounds the answer.
 *
 * Rank keys are tight when rows hold many values and loose when they hold few (a p95 of a
 * few dozen values varies a lot), so where they exist they narrow the rules first and, when
 * more than twice `limit` survive, coarse sketches narrow the survivors, in one statement.
 *
 * Other orderings (average, error rate, count) are exact sums: phase one ranks them directly.
 */
import type { NormalizedQuery } from './normalize';
import type { RollupInfo } from './catalog';
import { Params, SORT_SQL, sourceRows, type BuiltQuery } from './sql';
import { GAMMA, OFFSET, representativeSql } from './sketch';

/** Coarse key c holds fine keys 16c … 16c+15: its value range, as SQL. */
const coarseLowSql = (k: string) => `(CASE WHEN ${k} = 0 THEN 0::float8 ELSE power(${GAMMA}::float8, (16 * ${k} - ${OFFSET + 1})::float8) END)`;
const coarseHighSql = (k: string) => `power(${GAMMA}::float8, (16 * ${k} + 15 - ${OFFSET})::float8)`;

/** Positions in latency_rank_keys: {p95 lower, p95 upper, p99 lower, p99 upper}. */
const RANK_KEY_INDEX = { 0.95: 1, 0.99: 3 } as const;

/** Whether every rollup stretch of this query stores rank keys. */
export function canUseRankKeys(q: NormalizedQuery): boolean {
  const rollups: Array<RollupInfo | null> = [q.route.primary, q.route.finer];
  return rollups.every((r) => r === null || r.rankKeys);
}

export function buildTopRulesCandidates(q: NormalizedQuery, watermarks: Map<string, Date | null>): BuiltQuery & { method: 'exact' | 'rankKeys' | 'coarse' } {
  const p = new Params();
  const percentile = q.sortBy === 'p95ExecutionTimeMs' ? 0.95 : q.sortBy === 'p99ExecutionTimeMs' ? 0.99 : null;

  if (percentile === null) {
    const src = sourceRows(q, watermarks, p, 'coarse');
    const order = SORT_SQL[q.sortBy].replaceAll('b.', 'a.');
    const text = `WITH src AS (\n  ${src.sql}\n), agg AS (
  SELECT grp, sum(execution_count)::float8 AS execution_count, sum(exec_time_sum) AS exec_time_sum, sum(error_count)::float8 AS error_count
  FROM src GROUP BY grp)
SELECT grp FROM agg a ORDER BY ${order} DESC NULLS LAST, grp LIMIT ${p.add(q.limit)}`;
    return { text, values: p.values, tiers: src.tiers, method: 'exact' };
  }

  const limit = p.add(q.limit);
  const h = `(${percentile} * (n - 1))`;
  /** Coarse-sketch bounds per rule over the rows of CTE `src`, then the candidates. */
  const coarseCandidates = `agg AS (
  SELECT grp, min(exec_time_min) AS exec_time_min, max(exec_time_max) AS exec_time_max FROM src GROUP BY grp
), hist AS (
  SELECT grp, (e >> 32)::int AS k, sum(e & 4294967295)::float8 AS c FROM src, unnest(latency_sketch) AS e GROUP BY grp, k
), cum AS (
  SELECT *, sum(c) OVER (PARTITION BY grp ORDER BY k) - c AS before, sum(c) OVER (PARTITION BY grp) AS n FROM hist
), keys AS (
  SELECT grp, min(k) FILTER (WHERE before <= floor(${h}) AND floor(${h}) < before + c) AS klo,
              min(k) FILTER (WHERE before <= ceil(${h}) AND ceil(${h}) < before + c) AS khi
  FROM cum GROUP BY grp, n
), bounds AS (
  SELECT a.grp, greatest(a.exec_time_min, ${coarseLowSql('k.klo')}) AS lo, least(a.exec_time_max, ${coarseHighSql('k.khi')}) AS hi
  FROM keys k JOIN agg a ON a.grp = k.grp
), threshold AS (
  SELECT lo FROM bounds ORDER BY lo DESC OFFSET ${limit} - 1 LIMIT 1
)
SELECT grp FROM bounds WHERE hi >= coalesce((SELECT lo FROM threshold), '-infinity'::float8)`;

  if (canUseRankKeys(q)) {
    const ranked = sourceRows(q, watermarks, p, 'rankKeys');
    const i = RANK_KEY_INDEX[percentile];
    const clamp = (v: string) => `greatest(r.mn, least(r.mx, ${v}))`;
    // Coarse sketches only when rank keys left many rules (rows holding few values each).
    const many = `(SELECT count(*) FROM rank_candidates) > 2 * ${limit}`;
    const survivors = sourceRows(q, watermarks, p, 'coarse', `${many} AND rule_id = ANY(ARRAY(SELECT grp FROM rank_candidates))`);
    const text = `WITH ranked AS (
  ${ranked.sql}
), ranks AS (
  SELECT grp, min(exec_time_min) AS mn, max(exec_time_max) AS mx, min(rank_keys[${i}]) AS klo, max(rank_keys[${i + 1}]) AS khi
  FROM ranked GROUP BY grp
), rank_bounds AS (
  SELECT grp, ${clamp(representativeSql('r.klo'))} AS lo, ${clamp(representativeSql('r.khi'))} AS hi FROM ranks r
), rank_threshold AS (
  SELECT lo FROM rank_bounds ORDER BY lo DESC OFFSET ${limit} - 1 LIMIT 1
), rank_candidates AS (
  SELECT grp FROM rank_bounds WHERE hi >= coalesce((SELECT lo FROM rank_threshold), '-infinity'::float8)
), src AS (
  ${survivors.sql}
), ${coarseCandidates}
UNION ALL
SELECT grp FROM rank_candidates WHERE NOT ${many}`;
    return { text, values: p.values, tiers: ranked.tiers, method: 'rankKeys' };
  }

  const src = sourceRows(q, watermarks, p, 'coarse');
  const text = `WITH src AS (\n  ${src.sql}\n), ${coarseCandidates}`;
  return { text, values: p.values, tiers: src.tiers, method: 'coarse' };
}

/** Phase two's candidates in one group, or two when there are enough to share between two connections. */
export function splitCandidates(ids: string[]): string[][] {
  const sorted = [...ids].sort();
  if (sorted.length === 0) return [];
  if (sorted.length <= 4) return [sorted];
  return [sorted.filter((_, i) => i % 2 === 0), sorted.filter((_, i) => i % 2 === 1)];
}

/* eslint-disable @typescript-eslint/no-explicit-any */
const SORT_VALUE: Record<NormalizedQuery['sortBy'], (row: Record<string, any>) => number | null> = {
  p95ExecutionTimeMs: (r) => (r.p95 === null ? null : Number(r.p95)),
  p99ExecutionTimeMs: (r) => (r.p99 === null ? null : Number(r.p99)),
  avgExecutionTimeMs: (r) => Number(r.exec_time_sum) / Number(r.execution_count),
  errorRate: (r) => Number(r.error_count) / Number(r.execution_count),
  executionCount: (r) => Number(r.execution_count),
};

/**
 * Merges phase two's rows (each group already ranked and limited by SQL) into the top
 * `limit`, ordered as the SQL orders them: by the sort value descending (nulls last), then
 * by rule id in byte order (the dimension columns are COLLATE "C").
 */
export function rankTopRules(rows: Array<Record<string, any>>, q: NormalizedQuery): Array<Record<string, any>> {
  const value = SORT_VALUE[q.sortBy];
  const keyed = rows.map((row) => ({ row, v: value(row), id: Buffer.from(String(row.grp)) }));
  keyed.sort((a, b) => {
    if (a.v !== b.v) {
      if (a.v === null) return 1;
      if (b.v === null) return -1;
      return b.v - a.v;
    }
    return Buffer.compare(a.id, b.id);
  });
  return keyed.slice(0, q.limit).map((k) => k.row);
}
