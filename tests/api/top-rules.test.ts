/**
 * Top rules prunes to candidates before the exact query. Pruning must never change the
 * answer: for random ranges (daily, hourly and raw stretches), limits, percentile orders
 * and filters, the answer equals the exact query over every rule, with rank-key bounds and
 * with coarse-sketch bounds alike.
 */
import assert from 'node:assert/strict';
import { test, before, after } from 'node:test';
import fc from 'fast-check';
import { historyDatabase, HOUR } from '../support/fixture';
import type { TestDatabase } from '../support/services';
import { querySchema } from '../../server/http/validation';
import { DAY_MS, loadRollupCatalog, type RollupInfo } from '../../server/query/catalog';
import { normalizeQuery, type NormalizedQuery } from '../../server/query/normalize';
import { QueryExecutor } from '../../server/query/executor';
import { WatermarkSource } from '../../server/query/watermarks';
import { buildQuery } from '../../server/query/sql';
import { buildTopRulesCandidates } from '../../server/query/top-rules';
import { columns } from '../support/runner';

let db: TestDatabase;
let rollups: RollupInfo[];
let executor: QueryExecutor;
let watermarks: WatermarkSource;

before(async () => {
  db = await historyDatabase({ days: 9, rowsPerHour: 400, refreshedHoursAgo: 5 });
  rollups = await loadRollupCatalog(db.pool);
  watermarks = new WatermarkSource(db.pool, 0);
  executor = new QueryExecutor(db.pool, watermarks, { dbQuery: () => undefined });
});
after(async () => db?.drop());

const withoutRankKeys = (q: NormalizedQuery): NormalizedQuery => ({
  ...q,
  route: { ...q.route, primary: { ...q.route.primary, rankKeys: false }, finer: q.route.finer && { ...q.route.finer, rankKeys: false } },
});

async function exactTop(q: NormalizedQuery) {
  const marks = new Map((await watermarks.current()).map((s) => [s.rollup, s.watermark]));
  const built = buildQuery(q, marks);
  const { rows } = await db.pool.query(built.text, built.values);
  return rows.map((r) => [r.grp, Number(q.sortBy === 'p99ExecutionTimeMs' ? r.p99 : r.p95)]);
}

test('the PostgreSQL flavour stores rank keys on the by-rule rollups', () => {
  assert.deepEqual(
    rollups.filter((r) => r.rankKeys).map((r) => r.name).sort(),
    ['metrics_daily_by_rule', 'metrics_hourly_by_rule']
  );
});

test('pruned top rules equal the exact ranking over all rules (rank keys and coarse bounds)', async () => {
  const now = Date.now();
  const methods = new Set<string>();
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 8 * 24 }),
      fc.integer({ min: 0, max: 8 * 24 }),
      fc.integer({ min: 1, max: 25 }),
      fc.constantFrom('p95ExecutionTimeMs', 'p99ExecutionTimeMs'),
      fc.constantFrom({}, { metricType: 'RULE_EXECUTION' }, { status: 'SUCCESS' }),
      async (hours, hoursAgo, limit, sortBy, filter) => {
        const to = now - hoursAgo * HOUR + 17_000;
        const range = { from: to - hours * HOUR, to };
        const query = querySchema.parse({ refId: 'A', kind: 'topRules', limit, sortBy, ...filter });
        const q = normalizeQuery({ range }, query, rollups, { dailyFromMs: 7 * DAY_MS });
        const expected = await exactTop(q);
        for (const variant of [q, withoutRankKeys(q)]) {
          const marks = new Map((await watermarks.current()).map((s) => [s.rollup, s.watermark]));
          methods.add(buildTopRulesCandidates(variant, marks).method);
          const answer = await executor.run(variant, 'A');
          const c = columns(answer.frames[0]);
          const got = c.ruleId.map((id: string, i: number) => [id, c[sortBy][i]]);
          assert.deepEqual(got, expected, `${hours} h ending ${hoursAgo} h ago, limit ${limit}, ${sortBy}, ${JSON.stringify(filter)}`);
        }
      }
    ),
    { numRuns: 40, seed: 7 }
  );
  assert.deepEqual([...methods].sort(), ['coarse', 'rankKeys'], 'both bounding methods were exercised');
});

test('rank keys bound every rollup row: its own p95 and p99 lie within them', async () => {
  // The per-row keys are what the bounds are built from; check them against the row's sketch.
  const { rows } = await db.pool.query(`
    WITH e AS (
      SELECT r.ctid AS id, r.latency_rank_keys AS rk, (x >> 32)::int AS k, (x & 4294967295)::float8 AS c
      FROM metrics_hourly_by_rule r, unnest(r.latency_sketch) AS x
    ), cum AS (SELECT *, sum(c) OVER (PARTITION BY id ORDER BY k) - c AS before, sum(c) OVER (PARTITION BY id) AS n FROM e)
    SELECT id, rk,
      min(k) FILTER (WHERE before <= floor(0.95 * (n - 1)) AND floor(0.95 * (n - 1)) < before + c) AS k95a,
      min(k) FILTER (WHERE before <= ceil(0.95 * (n - 1)) AND ceil(0.95 * (n - 1)) < before + c) AS k95b,
      min(k) FILTER (WHERE before <= floor(0.99 * (n - 1)) AND floor(0.99 * (n - 1)) < before + c) AS k99a,
      min(k) FILTER (WHERE before <= ceil(0.99 * (n - 1)) AND ceil(0.99 * (n - 1)) < before + c) AS k99b
    FROM cum GROUP BY id, rk`);
  assert.ok(rows.length > 100, `rows checked: ${rows.length}`);
  for (const r of rows) {
    assert.ok(r.rk[0] <= r.k95a && r.k95b <= r.rk[1], `p95 keys ${r.k95a}..${r.k95b} within ${r.rk}`);
    assert.ok(r.rk[2] <= r.k99a && r.k99b <= r.rk[3], `p99 keys ${r.k99a}..${r.k99b} within ${r.rk}`);
  }
});
