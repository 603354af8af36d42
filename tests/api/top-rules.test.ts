/**
 * Top rules prunes to candidates before the exact query. Pruning must never change the
 * answer: for random ranges (daily, hourly, minute and raw pieces), limits, percentile orders
 * and filters, the answer equals the exact ranking over every rule, with rank-key bounds and
 * with coarse-sketch bounds alike, and with percentiles and coarse keys merged in C where the
 * ruleperf_native extension serves the sketch functions.
 */
import assert from 'node:assert/strict';
import { test, before, after } from 'node:test';
import fc from 'fast-check';
import { historyDatabase, HOUR } from '../support/fixture';
import type { TestDatabase } from '../support/services';
import { querySchema } from '../../server/http/validation';
import { loadRollupCatalog, type RollupInfo } from '../../server/query/catalog';
import { normalizeQuery, type NormalizedQuery } from '../../server/query/normalize';
import { QueryExecutor } from '../../server/query/executor';
import { WatermarkSource } from '../../server/query/watermarks';
import { Admission } from '../../server/db/admission';
import { plan } from '../../server/query/plan';
import { candidatesStatement, exactStatement, rankTopRules } from '../../server/query/kinds/top-rules';
import { columns } from '../../testkit/runner';
import { measures } from '../../server/query/measures';
import { nativeQueries } from '../../server/db/native';

let db: TestDatabase;
let rollups: RollupInfo[];
let watermarks: WatermarkSource;
const executors: Array<{ name: string; rollups: RollupInfo[]; executor: QueryExecutor }> = [];

before(async () => {
  db = await historyDatabase({ days: 9, rowsPerHour: 400, refreshedHoursAgo: 5 });
  rollups = await loadRollupCatalog(db.pool);
  watermarks = new WatermarkSource(db.pool, 0);
  const admission = new Admission({ concurrency: 4, maxQueue: 100, maxWaitMs: 60_000 });
  const inC = (await nativeQueries(db.pool)) ? [false, true] : [false];
  for (const native of inC) {
    for (const [name, list] of [
      ['rank keys', rollups],
      ['coarse', rollups.map((r) => ({ ...r, rankKeys: false }))],
    ] as const) {
      executors.push({
        name: native ? `${name}, merged in C` : name,
        rollups: [...list],
        executor: new QueryExecutor(
          db.pool,
          watermarks,
          () => list,
          admission,
          { dbQuery: () => undefined },
          undefined,
          native
        ),
      });
    }
  }
});
after(async () => db?.drop());

async function pieces(q: NormalizedQuery, list: RollupInfo[]) {
  const state = await watermarks.current();
  const rollupState = new Map(
    state.status.map((s) => [
      s.rollup,
      { watermark: s.watermark?.getTime() ?? null, retainedFrom: s.retainedFrom?.getTime() ?? null },
    ])
  );
  return plan({ range: q.range, fields: q.fields, rollups: list, state: rollupState, pending: state.pending }).pieces;
}

/** The ranking over every rule, without pruning. */
async function exactTop(q: NormalizedQuery) {
  const s = exactStatement(q, await pieces(q, rollups), null);
  const { rows } = await db.pool.query(s.text, s.values);
  const ranked = rankTopRules(rows, q, (q.range.to - q.range.from) / 1000);
  return ranked.map((r) => [r.grp, measures(r, 1)[q.sortBy as 'p95ExecutionTimeMs']]);
}

test('the PostgreSQL flavour stores rank keys on the by-rule rollups', () => {
  assert.deepEqual(
    rollups
      .filter((r) => r.rankKeys)
      .map((r) => r.name)
      .sort(),
    [
      'metrics_10min_by_rule',
      'metrics_6h_by_rule',
      'metrics_daily_by_rule',
      'metrics_hourly_by_rule',
      'metrics_minute_by_rule',
    ]
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
        const range = { from: to - hours * HOUR - 23_456, to };
        const query = querySchema.parse({ refId: 'A', kind: 'topRules', limit, sortBy, ...filter });
        const q = normalizeQuery({ range }, query, rollups);
        const expected = await exactTop(q);
        for (const variant of executors) {
          methods.add(candidatesStatement(q, await pieces(q, variant.rollups)).method);
          const answer = await variant.executor.run(q);
          const c = columns(answer.frames[0]);
          const got = c.ruleId.map((id: string, i: number) => [id, c[sortBy][i]]);
          assert.deepEqual(
            got,
            expected,
            `${variant.name}: ${hours} h ending ${hoursAgo} h ago, limit ${limit}, ${sortBy}, ${JSON.stringify(filter)}`
          );
        }
      }
    ),
    { numRuns: 40, seed: 7 }
  );
  assert.deepEqual([...methods].sort(), ['coarse', 'rankKeys'], 'both bounding methods were exercised');
});

test('rank keys bound every rollup row: its own p95 and p99 lie within them', async () => {
  // The per-row keys are what the bounds are built from; check them against the row's sketch,
  // in a rollup refreshed from another rollup and in one refreshed from raw rows.
  for (const table of ['metrics_hourly_by_rule', 'metrics_minute_by_rule']) {
    const { rows } = await db.pool.query(`
    WITH e AS (
      SELECT r.ctid AS id, r.latency_rank_keys AS rk, (x >> 32)::int AS k, (x & 4294967295)::float8 AS c
      FROM ${table} r, unnest(r.latency_sketch) AS x
    ), cum AS (SELECT *, sum(c) OVER (PARTITION BY id ORDER BY k) - c AS before, sum(c) OVER (PARTITION BY id) AS n FROM e)
    SELECT id, rk,
      min(k) FILTER (WHERE before <= floor(0.95 * (n - 1)) AND floor(0.95 * (n - 1)) < before + c) AS k95a,
      min(k) FILTER (WHERE before <= ceil(0.95 * (n - 1)) AND ceil(0.95 * (n - 1)) < before + c) AS k95b,
      min(k) FILTER (WHERE before <= floor(0.99 * (n - 1)) AND floor(0.99 * (n - 1)) < before + c) AS k99a,
      min(k) FILTER (WHERE before <= ceil(0.99 * (n - 1)) AND ceil(0.99 * (n - 1)) < before + c) AS k99b
    FROM cum GROUP BY id, rk`);
    assert.ok(rows.length > 100, `${table}: rows checked: ${rows.length}`);
    for (const r of rows) {
      assert.ok(r.rk[0] <= r.k95a && r.k95b <= r.rk[1], `${table}: p95 keys ${r.k95a}..${r.k95b} within ${r.rk}`);
      assert.ok(r.rk[2] <= r.k99a && r.k99b <= r.rk[3], `${table}: p99 keys ${r.k99a}..${r.k99b} within ${r.rk}`);
    }
  }
});
