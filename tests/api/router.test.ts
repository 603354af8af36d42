/**
 * The router reads the rollup measured smallest among those holding a query's dimensions
 * (server/query/plan.ts `levels`, fed by the densities of server/query/work.ts), on real
 * PostgreSQL through the running service: with many rules, per category holds far fewer rows
 * per hour than per rule, and per category and metric type fewer still, so a question about
 * categories reads the latter — and its answer is the one raw rows give. Also with the work limit off (DB_MAX_HISTOGRAM_VALUES=0): the densities are
 * still read for the router.
 */
import assert from 'node:assert/strict';
import { test, before, after } from 'node:test';
import { freshDatabase, postJson, startTestService, uniqueName, type TestDatabase } from '../support/services';
import { HOUR } from '../support/fixture';
import { generateHistory } from '../../server/generator/history';
import { refreshRollups } from '../../server/db/refresh';
import type { RunningService } from '../../server/main';

let db: TestDatabase;
const services: RunningService[] = [];
/** Settled hours, below every rollup's watermark. */
let range: { from: number; to: number };

before(async () => {
  db = await freshDatabase();
  const end = new Date(Math.ceil(Date.now() / HOUR) * HOUR);
  await generateHistory(
    db.pool,
    { days: 1, rowsPerHour: 1500, rules: 1000, parsers: 6, seed: 5, end, method: 'copy' },
    () => undefined
  );
  await refreshRollups(db.pool, 'postgres', { until: new Date(Date.now() - 2 * HOUR) });
  await db.pool.query('ANALYZE');
  const { rows } = await db.pool.query('SELECT max(bucket) AS newest FROM metrics_hourly_by_category');
  const to = new Date(rows[0].newest).getTime() + HOUR;
  range = { from: to - 12 * HOUR, to };
});
after(async () => {
  await Promise.all(services.map((s) => s.stop()));
  await db?.drop();
});

const rowsPerHour = async (table: string) =>
  Number(
    (
      await db.pool.query(`SELECT count(*)::float8 / count(DISTINCT bucket) AS n FROM ${table} WHERE bucket >= $1`, [
        new Date(range.from),
      ])
    ).rows[0].n
  );

for (const limit of ['5000000', '0']) {
  test(`a category question reads per category and type, not per rule, and answers as raw rows do (work limit ${limit})`, async () => {
    const [byRule, byCategory] = [
      await rowsPerHour('metrics_hourly_by_rule'),
      await rowsPerHour('metrics_hourly_by_category'),
    ];
    assert.ok(byCategory < 0.5 * byRule, `the data has many rules: ${byCategory} vs ${byRule} rows an hour`);
    const svc = await startTestService({
      DATABASE_URL: db.url,
      CACHE_PREFIX: uniqueName('router').replace(/_/g, '-'),
      DB_MAX_HISTOGRAM_VALUES: limit,
    });
    services.push(svc);
    const res = await postJson(`${svc.url}/api/v1/query`, {
      range,
      queries: [{ refId: 'A', kind: 'errorBreakdown', groupBy: 'ruleCategory', limit: 50 }],
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const [frame] = res.body.results.A.frames;
    const tiers: string[] = frame.schema.meta.custom.tiers;
    assert.ok(tiers.includes('hourly_by_category_type'), `tiers: ${tiers}`);
    assert.ok(!tiers.some((t) => t.includes('by_rule')), `tiers: ${tiers}`);

    const names: string[] = frame.schema.fields.map((f: { name: string }) => f.name);
    const column = (name: string) => frame.data.values[names.indexOf(name)];
    const got = new Map<string, number[]>(
      column('ruleCategory').map((c: string, i: number) => [
        c,
        [column('executionCount')[i], column('errorCount')[i], column('timeoutCount')[i]],
      ])
    );
    const { rows } = await db.pool.query(
      `SELECT coalesce(rule_category, '(none)') AS c, count(*)::int AS n,
              count(*) FILTER (WHERE status = 'ERROR')::int AS e, count(*) FILTER (WHERE status = 'TIMEOUT')::int AS t
       FROM metrics WHERE time >= $1 AND time < $2 GROUP BY 1`,
      [new Date(range.from), new Date(range.to)]
    );
    assert.ok(rows.length > 1);
    assert.deepEqual(got, new Map(rows.map((r) => [r.c, [r.n, r.e, r.t]])));
  });
}

test("one category's stats read per category and type too: count exact, average weighted, percentiles within 1 % of raw rows", async () => {
  const svc = await startTestService({
    DATABASE_URL: db.url,
    CACHE_PREFIX: uniqueName('router').replace(/_/g, '-'),
  });
  services.push(svc);
  const { rows: categories } = await db.pool.query(
    'SELECT rule_category AS c FROM metrics WHERE rule_category IS NOT NULL GROUP BY 1 ORDER BY count(*) DESC LIMIT 2'
  );
  for (const { c } of categories) {
    const res = await postJson(`${svc.url}/api/v1/query`, {
      range,
      queries: [{ refId: 'A', kind: 'stats', ruleCategory: c }],
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const [frame] = res.body.results.A.frames;
    assert.ok(
      frame.schema.meta.custom.tiers.includes('hourly_by_category_type'),
      `tiers: ${frame.schema.meta.custom.tiers}`
    );
    const names: string[] = frame.schema.fields.map((f: { name: string }) => f.name);
    const value = (name: string) => frame.data.values[names.indexOf(name)][0];
    const { rows } = await db.pool.query(
      `SELECT count(*)::int AS n, avg(execution_time_ms) AS avg,
              percentile_cont(0.5) WITHIN GROUP (ORDER BY execution_time_ms) AS p50,
              percentile_cont(0.95) WITHIN GROUP (ORDER BY execution_time_ms) AS p95,
              percentile_cont(0.99) WITHIN GROUP (ORDER BY execution_time_ms) AS p99
       FROM metrics WHERE rule_category = $1 AND time >= $2 AND time < $3`,
      [c, new Date(range.from), new Date(range.to)]
    );
    const exact = rows[0];
    assert.equal(value('executionCount'), exact.n, c);
    assert.ok(Math.abs(value('avgExecutionTimeMs') - exact.avg) <= 1e-9 * exact.avg, `${c} average`);
    for (const p of ['p50', 'p95', 'p99']) {
      const got = value(`${p}ExecutionTimeMs`);
      assert.ok(Math.abs(got - exact[p]) <= 0.01 * exact[p], `${c} ${p}: ${got} vs ${exact[p]}`);
    }
  }
});

test('after a quiet spell (no rows for the last hours), totals still read the minute rollup, not per-rule 10-minute rows, and match raw rows', async () => {
  // Data that stopped three hours ago, rollups refreshed to an hour ago: the minute tier's
  // newest buckets are empty. Its density is measured over the buckets that hold rows.
  const quiet = await freshDatabase();
  try {
    const end = new Date(Math.floor(Date.now() / HOUR) * HOUR - 3 * HOUR);
    await generateHistory(
      quiet.pool,
      { days: 1, rowsPerHour: 1500, rules: 1000, parsers: 6, seed: 7, end, method: 'copy' },
      () => undefined
    );
    await refreshRollups(quiet.pool, 'postgres', { until: new Date(Date.now() - HOUR) });
    const svc = await startTestService({
      DATABASE_URL: quiet.url,
      CACHE_PREFIX: uniqueName('router').replace(/_/g, '-'),
    });
    services.push(svc);
    // Edges 17 minutes into an hour: minutes 17–20 and 20–60 are read below the hour.
    const quietRange = { from: end.getTime() - 6 * HOUR + 17 * 60_000, to: end.getTime() - HOUR + 43 * 60_000 };
    const res = await postJson(`${svc.url}/api/v1/query`, {
      range: quietRange,
      queries: [{ refId: 'A', kind: 'stats' }],
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const [frame] = res.body.results.A.frames;
    const tiers: string[] = frame.schema.meta.custom.tiers;
    assert.ok(tiers.includes('minute_total'), `tiers: ${tiers}`);
    assert.ok(!tiers.some((t) => t.includes('by_rule')), `tiers: ${tiers}`);
    const names: string[] = frame.schema.fields.map((f: { name: string }) => f.name);
    const value = (name: string) => frame.data.values[names.indexOf(name)][0];
    const { rows } = await quiet.pool.query(
      `SELECT count(*)::int AS n, count(*) FILTER (WHERE status = 'ERROR')::int AS e FROM metrics WHERE time >= $1 AND time < $2`,
      [new Date(quietRange.from), new Date(quietRange.to)]
    );
    assert.ok(rows[0].n > 0);
    assert.equal(value('executionCount'), rows[0].n);
    assert.equal(value('errorCount'), rows[0].e);
  } finally {
    await quiet.drop();
  }
});

test('a parser timeseries over 12 hours has hourly points and says they are wider than asked; over 4 hours it has the points asked and no such notice', async () => {
  const svc = await startTestService({
    DATABASE_URL: db.url,
    CACHE_PREFIX: uniqueName('router').replace(/_/g, '-'),
  });
  services.push(svc);
  const { rows } = await db.pool.query(
    'SELECT parser_id AS p FROM metrics WHERE parser_id IS NOT NULL GROUP BY 1 ORDER BY count(*) DESC LIMIT 1'
  );
  const ask = async (span: number) => {
    const res = await postJson(`${svc.url}/api/v1/query`, {
      range: { from: range.to - span, to: range.to },
      intervalMs: 600_000,
      maxDataPoints: 1000,
      queries: [{ refId: 'A', kind: 'timeseries', parserId: rows[0].p, metrics: ['executionCount'] }],
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const [frame] = res.body.results.A.frames;
    const notices: Array<{ text: string }> = frame.schema.meta.notices ?? [];
    return { bucketMs: frame.schema.meta.custom.bucketMs, points: frame.data.values[0].length, notices };
  };
  const long = await ask(12 * HOUR);
  assert.deepEqual([long.bucketMs, long.points], [HOUR, 12], 'no rollup finer than hourly holds parser_id');
  assert.ok(
    long.notices.some((n) =>
      /^Points are 1 hour apart, not the 10 minutes asked: no finer rollup holds parserId/.test(n.text)
    ),
    JSON.stringify(long.notices)
  );
  const short = await ask(4 * HOUR);
  assert.deepEqual([short.bucketMs, short.points], [600_000, 24], 'raw rows by the minute, in 10-minute buckets');
  assert.ok(!short.notices.some((n) => /^Points are/.test(n.text)), JSON.stringify(short.notices));
});
