/**
 * Top rules prunes to candidates before the exact query. Pruning must never change the
 * answer: for random ranges (daily, hourly, minute and raw pieces), limits, percentile orders
 * and filters, the answer equals the exact ranking over every rule, with rank-key bounds and
 * with coarse-sketch bounds alike, and with percentiles and coarse keys merged in C where the
 * ruleperf_native extension serves the sketch functions. With many rules, the first phase reads
 * two halves of the rules side by side; the halves together must choose the same candidates.
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
import {
  candidatesStatement,
  chooseCandidates,
  exactStatement,
  phaseOnePieces,
  rankTopRules,
  worthSplitting,
} from '../../server/query/kinds/top-rules';
import { columns } from '../../testkit/runner';
import { measures } from '../../server/query/measures';
import { nativeFunctions, NO_NATIVE, type NativeFunctions } from '../../server/db/native';

let db: TestDatabase;
let rollups: RollupInfo[];
let watermarks: WatermarkSource;
const executors: Array<{ name: string; rollups: RollupInfo[]; native: NativeFunctions; executor: QueryExecutor }> = [];

before(async () => {
  db = await historyDatabase({ days: 9, rowsPerHour: 400, refreshedHoursAgo: 5 });
  rollups = await loadRollupCatalog(db.pool);
  watermarks = new WatermarkSource(db.pool, 0);
  const admission = new Admission({ concurrency: 4, maxQueue: 100, maxWaitMs: 60_000 });
  const available = await nativeFunctions(db.pool);
  // In C, rank keys are not read (coarse sketches of every rule merge in one pass); with
  // ruleperf_native 1.3, the range's first day may be read whole.
  const natives: NativeFunctions[] = [
    NO_NATIVE,
    ...(available.sketches ? [{ sketches: true, withinBounds: false, percentilesAgg: false }] : []),
    ...(available.withinBounds ? [available] : []),
  ];
  for (const native of natives) {
    for (const [name, list] of [
      ['rank keys', rollups],
      ['coarse', rollups.map((r) => ({ ...r, rankKeys: false }))],
    ] as const) {
      if (native.withinBounds && name === 'rank keys') {
        continue; // the same statements as 'coarse' in C
      }
      executors.push({
        name: native.withinBounds
          ? `${name}, merged in C, first day whole`
          : native.sketches
            ? `${name}, merged in C`
            : name,
        rollups: [...list],
        native,
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

async function planOf(q: NormalizedQuery, list: RollupInfo[]) {
  const state = await watermarks.current();
  const rollupState = new Map(
    state.status.map((s) => [
      s.rollup,
      { watermark: s.watermark?.getTime() ?? null, retainedFrom: s.retainedFrom?.getTime() ?? null },
    ])
  );
  return plan({ range: q.range, fields: q.fields, rollups: list, state: rollupState, pending: state.pending });
}

async function pieces(q: NormalizedQuery, list: RollupInfo[]) {
  return (await planOf(q, list)).pieces;
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
  let wholeFirstDays = 0;
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
          wholeFirstDays += answer.sql.includes('its first day read whole') ? 1 : 0;
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
  if (executors.some((v) => v.native.withinBounds)) {
    assert.ok(wholeFirstDays >= 5, `answers that read their first day whole: ${wholeFirstDays}`);
  }
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

/** A random question of the property tests: any span and end, limit, ordering and filter. */
const questions = (sorts: readonly string[]) =>
  fc.record({
    hours: fc.integer({ min: 1, max: 8 * 24 }),
    hoursAgo: fc.integer({ min: 0, max: 8 * 24 }),
    limit: fc.integer({ min: 1, max: 25 }),
    sortBy: fc.constantFrom(...sorts),
    filter: fc.constantFrom({}, { metricType: 'RULE_EXECUTION' }, { status: 'SUCCESS' }),
  });

function question(now: number, a: { hours: number; hoursAgo: number; limit: number; sortBy: string; filter: object }) {
  const to = now - a.hoursAgo * HOUR + 17_000;
  const range = { from: to - a.hours * HOUR - 23_456, to };
  const query = querySchema.parse({ refId: 'A', kind: 'topRules', limit: a.limit, sortBy: a.sortBy, ...a.filter });
  return normalizeQuery({ range }, query, rollups);
}

test('the first phase over two halves of the rules chooses the candidates one statement over all rules does', async () => {
  const ids = (
    await db.pool.query('SELECT DISTINCT rule_id FROM metrics WHERE rule_id IS NOT NULL ORDER BY 1')
  ).rows.map((r) => r.rule_id as string);
  assert.ok(ids.length >= 20, `rules: ${ids.length}`);
  // Split points: every rule id (a rule at the point falls in the upper half), between ids, before and after all.
  const points = fc.oneof(fc.constantFrom(...ids), fc.constantFrom('', 'rule-', 'rule-0010~', '~~~'));
  const now = Date.now();
  const run = async (text: string, values: unknown[]) => (await db.pool.query(text, values)).rows;
  const sorts = ['p95ExecutionTimeMs', 'p99ExecutionTimeMs', 'avgExecutionTimeMs', 'errorRate', 'executionCount'];
  let splitsWithBothHalves = 0;
  await fc.assert(
    fc.asyncProperty(questions(sorts), points, async (a, at) => {
      const q = question(now, a);
      for (const variant of executors) {
        const native = variant.native.sketches;
        const { inside, firstDay } = phaseOnePieces(q, await planOf(q, variant.rollups), variant.native.withinBounds);
        const one = candidatesStatement(q, inside, native, undefined, firstDay);
        const expected = chooseCandidates(await run(one.text, one.values), q).sort();
        const halves = await Promise.all(
          (['below', 'from'] as const).map(async (side) => {
            const s = candidatesStatement(q, inside, native, { side, at }, firstDay);
            return run(s.text, s.values);
          })
        );
        splitsWithBothHalves += halves.every((h) => h.length > 0) ? 1 : 0;
        const got = chooseCandidates(halves.flat(), q).sort();
        const where = `${variant.name} (${one.method}): split at ${JSON.stringify(at)}, ${JSON.stringify(a)}`;
        if (one.method === 'rankKeys') {
          // Rank keys, then coarse sketches where they left many rules: a half may take the
          // second step where all rules together did not, so its candidates differ; they must
          // still hold every rule of the exact answer.
          const top = (await exactTop(q)).map(([id]) => id as string);
          assert.deepEqual(
            top.filter((id) => !got.includes(id)),
            [],
            where
          );
          continue;
        }
        assert.deepEqual(got, expected, where);
      }
    }),
    { numRuns: 40, seed: 11 }
  );
  assert.ok(splitsWithBothHalves > 20, `splits that left rules in both halves: ${splitsWithBothHalves}`);
});

test('with enough known rules the service splits the first phase, and the answers stay exact', async () => {
  // Known rules beside those with rows (names only), interleaved with them, so the split
  // point from the rules table falls among the rules that have rows, and so many that most
  // first phases read enough rows to split.
  const ids = (await db.pool.query('SELECT rule_id FROM rules ORDER BY rule_id')).rows.map((r) => r.rule_id as string);
  await db.pool.query(
    `INSERT INTO rules (rule_id, rule_name, rule_category, metric_type)
     SELECT id || '~' || k, 'padding', 'padding', 'RULE_EXECUTION' FROM unnest($1::text[]) AS id, generate_series(1, 150) AS k`,
    [ids]
  );
  const known = ids.length * 151;
  const middle = (
    await db.pool.query(`SELECT rule_id FROM rules ORDER BY rule_id COLLATE "C" OFFSET $1 LIMIT 1`, [
      Math.floor(known / 2),
    ])
  ).rows[0].rule_id as string;
  const admission = new Admission({ concurrency: 4, maxQueue: 100, maxWaitMs: 60_000 });
  // New executors: the ones above read the split point while there were too few rules.
  const variants = executors.map(({ name, rollups: list, native }) => ({
    name,
    rollups: list,
    native,
    executor: new QueryExecutor(
      db.pool,
      watermarks,
      () => list,
      admission,
      { dbQuery: () => undefined },
      undefined,
      native
    ),
  }));
  const now = Date.now();
  let split = 0;
  try {
    await fc.assert(
      fc.asyncProperty(
        questions(['p95ExecutionTimeMs', 'p99ExecutionTimeMs', 'avgExecutionTimeMs', 'errorRate', 'executionCount']),
        async (a) => {
          const q = question(now, a);
          const expected = await exactTop(q);
          for (const { name, executor, rollups: list, native } of variants) {
            const answer = await executor.run(q);
            const wasSplit = answer.sql.includes(`phase 1 (2/2, side by side): candidate rules from ${middle} on`);
            const { inside, firstDay } = phaseOnePieces(q, await planOf(q, list), native.withinBounds);
            const worth = worthSplitting({ at: middle, rules: known }, q, firstDay ? [firstDay, ...inside] : inside);
            assert.equal(wasSplit, worth, `${name}: split as the estimate of rows read says, ${JSON.stringify(a)}`);
            split += wasSplit ? 1 : 0;
            const c = columns(answer.frames[0]);
            const got = c.ruleId.map((id: string, i: number) => [id, c[a.sortBy][i]]);
            // Averages are float sums, whose last digit depends on the order rows are added in.
            const close = (x: number, y: number) => Math.abs(x - y) <= 1e-12 * Math.max(1, Math.abs(y));
            assert.deepEqual(
              got.map((row: unknown[]) => row[0]),
              expected.map(([id]) => id),
              `${name}: ${JSON.stringify(a)}`
            );
            got.forEach(([, v]: unknown[], i: number) =>
              assert.ok(
                close(v as number, expected[i][1] as number),
                `${name}: ${v} vs ${expected[i][1]}, ${JSON.stringify(a)}`
              )
            );
          }
        }
      ),
      { numRuns: 20, seed: 5 }
    );
  } finally {
    // Later tests see the rules as the fixture made them.
    await db.pool.query("DELETE FROM rules WHERE rule_name = 'padding'");
  }
  assert.ok(split > 10 * variants.length, `most answers split their first phase: ${split} of ${20 * variants.length}`);
});
