/**
 * TimescaleDB flavour on the WASM build: continuous aggregates (hierarchical) pick up
 * late, out-of-order, updated and deleted rows at the next refresh; migrations are
 * idempotent.
 */
import assert from 'node:assert/strict';
import { test, before, after } from 'node:test';
import { embeddedTimescale } from '../support/embedded';
import { assertRollupsMatchRaw, rollupDigest } from '../support/rollup-checks';
import { refreshRollups } from '../../server/db/refresh';
import { migrate } from '../../server/db/migrate';

let db: Awaited<ReturnType<typeof embeddedTimescale>>;
const T0 = Date.parse('2026-02-01T00:00:00Z');
const until = new Date(T0 + 3 * 86_400_000);

before(async () => {
  db = await embeddedTimescale();
});
after(async () => {
  await db.stop();
});

test('hypertable and continuous aggregates are in place, with policies', async () => {
  const { rows: caggs } = await db.pool.query(
    'SELECT view_name FROM timescaledb_information.continuous_aggregates ORDER BY 1'
  );
  const { rows: registry } = await db.pool.query('SELECT name FROM ruleperf_rollups ORDER BY 1');
  assert.equal(registry.length, 19);
  assert.deepEqual(
    caggs.map((r) => r.view_name),
    registry.map((r) => r.name),
    'every registered rollup is a continuous aggregate'
  );
  const { rows: jobs } = await db.pool.query(
    `SELECT proc_name, count(*)::int AS n FROM timescaledb_information.jobs WHERE proc_name IN ('policy_refresh_continuous_aggregate', 'policy_compression', 'policy_retention') GROUP BY 1 ORDER BY 1`
  );
  assert.deepEqual(jobs, [
    { proc_name: 'policy_compression', n: 1 },
    { proc_name: 'policy_refresh_continuous_aggregate', n: 19 },
    { proc_name: 'policy_retention', n: 5 }, // raw rows, three minute rollups and the 10-minute one
  ]);
});

test('late, out-of-order, updated and deleted rows are reflected after the next refresh', async () => {
  await db.pool.query(
    `INSERT INTO metrics (time, metric_type, rule_id, status, execution_time_ms)
     SELECT $1::timestamptz + (g * interval '5 minutes'), 'RULE_EXECUTION', 'r' || (g % 4), 'SUCCESS', 1 + (g % 97) FROM generate_series(0, 499) g`,
    [new Date(T0)]
  );
  await refreshRollups(db.pool, 'timescale', { until });
  await assertRollupsMatchRaw(db.pool);
  const before = await rollupDigest(db.pool, 'metrics_daily');

  await db.pool.query(
    `INSERT INTO metrics (time, metric_type, rule_id, status, execution_time_ms) VALUES ($1, 'RULE_EXECUTION', 'r9', 'ERROR', 7000), ($2, 'RULE_EXECUTION', 'r8', 'SUCCESS', 0.25)`,
    [new Date(T0 + 86_400_000 + 1), new Date(T0 + 7)]
  );
  await db.pool.query(
    `UPDATE metrics SET execution_time_ms = execution_time_ms + 1000 WHERE rule_id = 'r3' AND time < $1`,
    [new Date(T0 + 6 * 3_600_000)]
  );
  await db.pool.query(`DELETE FROM metrics WHERE rule_id = 'r0' AND time < $1`, [new Date(T0 + 12 * 3_600_000)]);

  await refreshRollups(db.pool, 'timescale', { until });
  assert.notEqual(await rollupDigest(db.pool, 'metrics_daily'), before, 'the hierarchical daily rollup changed too');
  await assertRollupsMatchRaw(db.pool);
});

test('migrating again applies nothing', async () => {
  const result = await migrate(db.pool, { flavour: 'timescale' });
  assert.deepEqual(result.applied, []);
  assert.equal(result.flavour, 'timescale');
});
