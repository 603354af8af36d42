/**
 * PostgreSQL flavour: the invalidation log keeps rollups exact through late,
 * out-of-order, updated and deleted rows; an interrupted refresh changes nothing;
 * migrations are idempotent and refuse databases they do not know.
 */
import assert from 'node:assert/strict';
import { test, before, after } from 'node:test';
import { Client } from 'pg';
import { freshDatabase, type TestDatabase } from '../support/services';
import { assertRollupsMatchRaw, rollupDigest } from '../support/rollup-checks';
import { refreshEachRollup, refreshRollups, rollupStatus, type RefreshStep } from '../../server/db/refresh';
import { migrate, MigrationRefused, latestVersion } from '../../server/db/migrate';

let db: TestDatabase;
const T0 = Date.parse('2026-02-01T00:00:00Z');

before(async () => {
  db = await freshDatabase({ flavour: 'postgres' });
});
after(async () => {
  await db.drop();
});

async function insert(rows: Array<[number, string, number]>) {
  await db.pool.query(
    `INSERT INTO metrics (time, metric_type, rule_id, status, execution_time_ms)
     SELECT t, 'RULE_EXECUTION', r, 'SUCCESS', v FROM unnest($1::timestamptz[], $2::text[], $3::float8[]) AS u(t, r, v)`,
    [rows.map((r) => new Date(r[0])), rows.map((r) => r[1]), rows.map((r) => r[2])]
  );
}

const refresh = (until = new Date(T0 + 3 * 86_400_000)) => refreshRollups(db.pool, 'postgres', { until });

test('late, out-of-order, updated and deleted rows are reflected after the next refresh', async () => {
  await insert(
    Array.from({ length: 500 }, (_, i) => [T0 + i * 300_000, `r${i % 4}`, 1 + (i % 97)] as [number, string, number])
  );
  await refresh();
  await assertRollupsMatchRaw(db.pool);
  const before = await rollupDigest(db.pool, 'metrics_hourly');

  // Late rows for old buckets, out of order, plus an update and a delete.
  await insert([
    [T0 + 86_400_000 + 5_000, 'r1', 5000],
    [T0 + 10_000, 'r9', 0.5],
    [T0 + 2 * 3_600_000 + 1, 'r2', 42],
  ]);
  await db.pool.query(
    `UPDATE metrics SET execution_time_ms = execution_time_ms * 10 WHERE rule_id = 'r3' AND time < $1`,
    [new Date(T0 + 6 * 3_600_000)]
  );
  await db.pool.query(`DELETE FROM metrics WHERE rule_id = 'r0' AND time >= $1 AND time < $2`, [
    new Date(T0 + 20 * 3_600_000),
    new Date(T0 + 22 * 3_600_000),
  ]);
  const { rows: pending } = await db.pool.query('SELECT count(*)::int AS n FROM ruleperf_invalidations');
  assert.ok(pending[0].n >= 4, 'each statement logged the range it touched');

  const reports = await refresh();
  assert.ok(reports, 'refresh ran');
  assert.notEqual(await rollupDigest(db.pool, 'metrics_hourly'), before, 'the rollup changed');
  await assertRollupsMatchRaw(db.pool);
  const { rows: left } = await db.pool.query(`SELECT count(*)::int AS n FROM ruleperf_invalidations WHERE lo < $1`, [
    new Date(T0 + 3 * 86_400_000),
  ]);
  assert.equal(left[0].n, 0, 'the invalidation log below the watermark is consumed');
});

test('a refresh terminated mid-way leaves the rollups as they were; the next refresh completes them', async () => {
  // Enough rows in new buckets that the refresh takes a while.
  await db.pool.query(
    `INSERT INTO metrics (time, metric_type, rule_id, status, execution_time_ms)
     SELECT $1::timestamptz + (g * interval '20 milliseconds'), 'RULE_EXECUTION', 'r' || (g % 50), 'SUCCESS', (g % 1000) + 0.5
     FROM generate_series(1, 400000) g`,
    [new Date(T0 + 3 * 86_400_000)]
  );
  const before = await Promise.all(['metrics_hourly', 'metrics_daily'].map((r) => rollupDigest(db.pool, r)));
  const { rows: stateBefore } = await db.pool.query(
    'SELECT rollup, watermark FROM ruleperf_rollup_state ORDER BY rollup'
  );

  const victim = new Client({ connectionString: db.url });
  await victim.connect();
  const pid = (await victim.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;
  const refreshing = victim.query('SELECT * FROM ruleperf_refresh(NULL, $1)', [new Date(T0 + 5 * 86_400_000)]).then(
    () => 'finished',
    (err: Error) => `failed: ${err.message}`
  );
  victim.on('error', () => undefined);
  // Wait until it is really running, then kill its backend.
  for (let i = 0; i < 200; i++) {
    const { rows } = await db.pool.query(`SELECT state FROM pg_stat_activity WHERE pid = $1`, [pid]);
    if (rows[0]?.state === 'active') {
      break;
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  await new Promise((r) => setTimeout(r, 150));
  await db.pool.query('SELECT pg_terminate_backend($1)', [pid]);
  const outcome = await refreshing;
  assert.match(outcome, /^failed/, 'the refresh was interrupted');

  const after = await Promise.all(['metrics_hourly', 'metrics_daily'].map((r) => rollupDigest(db.pool, r)));
  assert.deepEqual(after, before, 'rollups unchanged by the interrupted refresh');
  const { rows: stateAfter } = await db.pool.query(
    'SELECT rollup, watermark FROM ruleperf_rollup_state ORDER BY rollup'
  );
  assert.deepEqual(stateAfter, stateBefore, 'watermarks unchanged');

  await refreshRollups(db.pool, 'postgres', { until: new Date(T0 + 5 * 86_400_000) });
  await assertRollupsMatchRaw(db.pool);
});

test('the refresh gives the planner statistics on raw rows loaded without them, and again once the table has doubled', async () => {
  const own = await freshDatabase({ flavour: 'postgres' });
  try {
    // Whatever autovacuum would do on another server, here only the refresh may analyze.
    await own.pool.query('ALTER TABLE metrics SET (autovacuum_enabled = false)');
    const load = (from: number, n: number) =>
      own.pool.query(
        `INSERT INTO metrics (time, metric_type, rule_id, status, execution_time_ms)
         SELECT $1::timestamptz + i * interval '4 seconds', 'RULE_EXECUTION', 'r' || (i % 7), 'SUCCESS', 1 + i % 97
         FROM generate_series(0, $2::int - 1) AS i`,
        [new Date(from), n]
      );
    const stats = async () =>
      (
        await own.pool.query(
          `SELECT c.reltuples::float8 AS tuples,
                  (SELECT count(*) FROM pg_stats s WHERE s.tablename = 'metrics' AND s.attname = 'time')::int AS time_stats
           FROM pg_class c WHERE c.oid = 'metrics'::regclass`
        )
      ).rows[0] as { tuples: number; time_stats: number };
    const refreshOwn = () => refreshRollups(own.pool, 'postgres', { until: new Date(T0 + 5 * 86_400_000) });

    await load(T0, 40_000); // 1.9 days
    assert.deepEqual(await stats(), { tuples: -1, time_stats: 0 }, 'loaded, never analyzed');
    await refreshOwn();
    const first = await stats();
    assert.equal(first.time_stats, 1, 'the refresh analyzed the raw table');
    assert.equal(first.tuples, 40_000);
    const plan = await own.pool.query(
      `EXPLAIN (FORMAT JSON) SELECT count(*) FROM metrics WHERE time >= $1 AND time < $2`,
      [new Date(T0 + 86_400_000), new Date(T0 + 86_400_000 + 3_600_000)]
    );
    assert.match(
      JSON.stringify(plan.rows[0]),
      /"Index Name":"metrics_time"/,
      'an hour is read through the index on time'
    );

    await load(T0 + 2 * 86_400_000, 1_000);
    await refreshOwn();
    assert.equal((await stats()).tuples, 40_000, 'a few more rows: no new ANALYZE');
    await load(T0 + 2.1 * 86_400_000, 50_000);
    await refreshOwn();
    assert.equal((await stats()).tuples, 91_000, 'the table more than doubled: analyzed again');
    await assertRollupsMatchRaw(own.pool);
  } finally {
    await own.drop();
  }
});

for (const sessions of [1, 2]) {
  test(`one rollup at a time per session (the CLIs' progress; ${sessions} side by side): sources first, the same rollups as one refresh, and another holder of the lock stops it`, async () => {
    const [whole, other] = await Promise.all([
      freshDatabase({ flavour: 'postgres' }),
      freshDatabase({ flavour: 'postgres' }),
    ]);
    try {
      const rows = Array.from(
        { length: 400 },
        (_, i) => [T0 + i * 370_000, `r${i % 5}`, 1 + (i % 89)] as [number, string, number]
      );
      for (const pool of [whole.pool, other.pool]) {
        await pool.query(
          `INSERT INTO metrics (time, metric_type, rule_id, status, execution_time_ms)
           SELECT t, 'RULE_EXECUTION', r, 'SUCCESS', v FROM unnest($1::timestamptz[], $2::text[], $3::float8[]) AS u(t, r, v)`,
          [rows.map((r) => new Date(r[0])), rows.map((r) => r[1]), rows.map((r) => r[2])]
        );
      }
      const until = new Date(T0 + 2 * 86_400_000);
      const steps: RefreshStep[] = [];
      const eachBuilt = await refreshEachRollup(other.pool, 'postgres', {
        until,
        sessions,
        onStep: (s) => steps.push(s),
      });
      await refreshRollups(whole.pool, 'postgres', { until });
      const status = await rollupStatus(other.pool);
      const names = status.map((s) => s.rollup);
      if (sessions === 1) {
        assert.deepEqual(
          steps.map((s) => [s.rollup, s.index, s.done]),
          names.flatMap((name, i) => [
            [name, i, false],
            [name, i + 1, true],
          ]),
          'a start and a done per rollup, in registry order'
        );
      } else {
        const at = (rollup: string, done: boolean) => steps.findIndex((s) => s.rollup === rollup && s.done === done);
        for (const s of status) {
          assert.ok(
            at(s.rollup, false) >= 0 && at(s.rollup, false) < at(s.rollup, true),
            `${s.rollup} started, then done`
          );
          if (s.source !== 'metrics') {
            assert.ok(at(s.source, true) < at(s.rollup, false), `${s.rollup} starts after ${s.source} is done`);
          }
        }
        assert.equal(steps.length, 2 * names.length, 'one start and one done per rollup');
        assert.ok(
          steps.some((s) => (s.building?.length ?? 0) === 2),
          'two rollups were built side by side'
        );
        assert.deepEqual(
          steps.filter((s) => s.done).map((s, i) => s.index === i + 1),
          names.map(() => true),
          'the done count rises by one per rollup'
        );
      }
      assert.ok(steps.every((s) => s.of === names.length));
      assert.deepEqual(
        steps.filter((s) => s.building?.includes(s.rollup) !== !s.done),
        [],
        'a starting rollup is among those being built, a finished one no longer (the progress bar names them)'
      );
      assert.deepEqual(
        eachBuilt!.map((r) => r.rollup),
        names,
        'reports in registry order'
      );
      await assertRollupsMatchRaw(other.pool);
      // Every row, every column (watermark-independent: no refresh times are stored in rows).
      const table = async (pool: typeof db.pool, name: string) =>
        (
          await pool.query(
            `SELECT count(*)::int AS n, md5(string_agg(t::text, ',' ORDER BY t::text)) AS h FROM ${name} t`
          )
        ).rows[0];
      for (const name of names) {
        const [a, b] = [await table(other.pool, name), await table(whole.pool, name)];
        assert.ok(a.n > 0, `${name} is built`);
        assert.deepEqual(a, b, name);
      }
      assert.deepEqual(
        (await rollupStatus(other.pool)).map((s) => s.watermark?.getTime()),
        (await rollupStatus(whole.pool)).map((s) => s.watermark?.getTime())
      );

      // Another session holding the refresh lock: nothing is refreshed, and it says so (null).
      const holder = new Client({ connectionString: other.url });
      await holder.connect();
      try {
        await holder.query("SELECT pg_advisory_lock(hashtext('ruleperf_refresh'))");
        const seen: RefreshStep[] = [];
        const blocked = await refreshEachRollup(other.pool, 'postgres', {
          until: new Date(until.getTime() + 86_400_000),
          sessions,
          onStep: (s) => seen.push(s),
        });
        assert.equal(blocked, null);
        assert.ok(seen.length > 0 && seen.length <= sessions, 'stopped at the first rollups started');
        assert.ok(
          seen.every((s) => !s.done),
          'none done'
        );
        assert.deepEqual(
          (await rollupStatus(other.pool)).map((s) => s.watermark?.getTime()),
          (await rollupStatus(whole.pool)).map((s) => s.watermark?.getTime()),
          'no watermark moved'
        );
      } finally {
        await holder.end();
      }
    } finally {
      await Promise.all([whole.drop(), other.drop()]);
    }
  });
}

test("a build's side-by-side refreshes share the refresh lock; any other refresh waits for none of them and skips", async () => {
  const own = await freshDatabase({ flavour: 'postgres' });
  const holder = new Client({ connectionString: own.url });
  await holder.connect();
  try {
    await own.pool.query(
      `INSERT INTO metrics (time, metric_type, rule_id, status, execution_time_ms)
       SELECT $1::timestamptz + i * interval '1 minute', 'RULE_EXECUTION', 'r1', 'SUCCESS', i FROM generate_series(1, 300) AS i`,
      [new Date(T0)]
    );
    const until = new Date(T0 + 86_400_000);
    // A build's refresh in progress holds the lock shared, and the raw table's upkeep.
    await holder.query('BEGIN');
    await holder.query("SELECT * FROM ruleperf_refresh('{metrics_hourly}', $1, '1 minute', true)", [until]);
    assert.equal(await refreshRollups(own.pool, 'postgres', { until }), null, 'every rollup: skipped, not waiting');
    assert.equal(
      await refreshRollups(own.pool, 'postgres', { until, only: ['metrics_minute_by_category'] }),
      null,
      "named rollups, as the service's scheduler refreshes them: skipped"
    );
    const beside = await refreshRollups(own.pool, 'postgres', {
      until,
      only: ['metrics_minute_by_category'],
      sideBySide: true,
    });
    assert.equal(beside?.[0].rollup, 'metrics_minute_by_category', "the build's next rollup: refreshed beside it");
    await holder.query('COMMIT');
    assert.notEqual(await refreshRollups(own.pool, 'postgres', { until }), null, 'once it is done, every rollup');
    await assertRollupsMatchRaw(own.pool);
  } finally {
    await holder.end();
    await own.drop();
  }
});

test('a database before schema 15 is built one rollup at a time, whatever the sessions asked', async () => {
  const old = await freshDatabase({ flavour: 'postgres', migrate: false });
  try {
    await migrate(old.pool, { flavour: 'postgres', toVersion: 14 });
    await old.pool.query(
      `INSERT INTO metrics (time, metric_type, rule_id, status, execution_time_ms)
       SELECT $1::timestamptz + i * interval '7 minutes', 'RULE_EXECUTION', 'r' || (i % 3), 'SUCCESS', i FROM generate_series(1, 300) AS i`,
      [new Date(T0)]
    );
    const steps: RefreshStep[] = [];
    const built = await refreshEachRollup(old.pool, 'postgres', {
      until: new Date(T0 + 2 * 86_400_000),
      sessions: 2,
      onStep: (s) => steps.push(s),
    });
    assert.equal(built?.length, (await rollupStatus(old.pool)).length);
    assert.ok(
      steps.every((s) => (s.building?.length ?? 0) <= 1),
      'never two at once'
    );
    await assertRollupsMatchRaw(old.pool);
  } finally {
    await old.drop();
  }
});

test('migrating again applies nothing and changes nothing', async () => {
  const digest = await rollupDigest(db.pool, 'metrics_hourly');
  const result = await migrate(db.pool, { flavour: 'postgres' });
  assert.deepEqual(result.applied, []);
  assert.equal(result.version, latestVersion());
  assert.equal(await rollupDigest(db.pool, 'metrics_hourly'), digest);
});

test('migrate refuses a database of unknown shape, one that is newer, and a flavour switch — changing nothing', async () => {
  const foreign = await freshDatabase({ migrate: false });
  try {
    await foreign.pool.query('CREATE TABLE metrics (id int)');
    await assert.rejects(
      migrate(foreign.pool),
      (err: Error) => err instanceof MigrationRefused && /did not create/.test(err.message)
    );
    const { rows } = await foreign.pool.query(`SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public'`);
    assert.equal(rows[0].n, 1, 'nothing was created');
  } finally {
    await foreign.drop();
  }
  await db.pool.query(
    `INSERT INTO ruleperf_schema_migrations (version, name, flavour) VALUES (999, 'common/999_future.sql', 'postgres')`
  );
  try {
    await assert.rejects(
      migrate(db.pool),
      (err: Error) => err instanceof MigrationRefused && /newer/.test(err.message)
    );
  } finally {
    await db.pool.query(`DELETE FROM ruleperf_schema_migrations WHERE version = 999`);
  }
  await assert.rejects(
    migrate(db.pool, { flavour: 'timescale' }),
    (err: Error) => err instanceof MigrationRefused && /switch/.test(err.message)
  );
});
