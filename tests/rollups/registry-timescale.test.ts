/**
 * TimescaleDB flavour (the WASM build), schema 6-7: every registry row is a continuous
 * aggregate with its policies, the minute tier is exact and kept for its retention, the
 * pending view reads TimescaleDB's invalidation logs, a refresh writes the ranges it is about
 * to reflect to the change log before and after refreshing, and a new rollup is one INSERT.
 */
import assert from 'node:assert/strict';
import { test, before, after } from 'node:test';
import { Pool } from 'pg';
import { embeddedTimescale } from '../support/embedded';
import { startEmbeddedDatabase } from '../../server/db/embedded';
import { migrate } from '../../server/db/migrate';
import { loadRawExtent, pendingChanges, rawKeptFrom, refreshRollups, rollupStatus } from '../../server/db/refresh';
import { databaseIdentity } from '../../server/db/identity';
import { loadRollupCatalog } from '../../server/query/catalog';
import { variableValues } from '../../server/http/variables';
import type { VariableName } from '../../server/contract';
import { assertAllRollupsExact, rollupDifferences } from './reference';

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const T0 = Date.parse('2026-03-02T00:00:00Z');

let db: Awaited<ReturnType<typeof embeddedTimescale>>;
before(async () => {
  db = await embeddedTimescale();
});
after(async () => {
  await db.stop();
});

async function insertSpread(from: number, span: number, count: number, salt = 0) {
  await db.pool.query(
    `INSERT INTO metrics (time, metric_type, rule_id, parser_id, rule_category, source_type, status, execution_time_ms, records_processed, records_failed)
     SELECT $1::timestamptz + ((g::bigint * $2) / $3 + (g * 7919 + $4) % 1000) * interval '1 millisecond',
            (ARRAY['RULE_EXECUTION','PARSER_EXECUTION','ENRICHMENT'])[1 + (g + $4) % 3],
            CASE WHEN g % 5 = 0 THEN NULL ELSE 'r' || ((g + $4) % 7) END,
            CASE WHEN g % 4 = 0 THEN NULL ELSE 'p' || (g % 3) END,
            (ARRAY['auth','net',NULL])[1 + g % 3],
            (ARRAY['syslog','dns'])[1 + g % 2],
            (ARRAY['SUCCESS','SUCCESS','ERROR','TIMEOUT'])[1 + (g * 3 + $4) % 4],
            ((g * 37 + $4) % 4000) / 8.0, g % 100, g % 7
     FROM generate_series(1, $3) AS g`,
    [new Date(from), span, count, salt]
  );
}

/** Another WASM database, migrated only up to `version`. */
async function embeddedTimescaleAt(version: number) {
  const e = await startEmbeddedDatabase(null);
  const pool = new Pool({ connectionString: e.url, max: 1 });
  pool.on('error', () => undefined);
  await migrate(pool, { flavour: 'timescale', toVersion: version });
  return {
    pool,
    async stop() {
      await pool.end();
      await e.stop();
    },
  };
}

const refresh = (until: number) => refreshRollups(db.pool, 'timescale', { until: new Date(until) });
/** Pending changes as the refresh and the planner see them at the tests' clock (T0, months back: not now, whose 90-day raw retention would put these rows past it). */
const pendingAt = async (pool: typeof db.pool) =>
  pendingChanges(pool, rawKeptFrom(await loadRawExtent(pool), T0 + 2 * DAY + 45 * MIN));
const lastChangeId = async () =>
  (await db.pool.query('SELECT coalesce(max(id), 0)::int AS id FROM ruleperf_changes')).rows[0].id as number;

test('every registry row is a continuous aggregate with a refresh policy; the minute tier has retention policies', async () => {
  const { rows: caggs } = await db.pool.query(
    'SELECT view_name FROM timescaledb_information.continuous_aggregates ORDER BY 1'
  );
  const rollups = await loadRollupCatalog(db.pool);
  assert.equal(rollups.length, 19);
  assert.deepEqual(
    caggs.map((r) => r.view_name),
    rollups.map((r) => r.name).sort()
  );
  assert.ok(
    rollups.every((r) => !r.rankKeys),
    'continuous aggregates keep no rank keys'
  );
  const { rows: jobs } = await db.pool.query(
    `SELECT proc_name, count(*)::int AS n FROM timescaledb_information.jobs
     WHERE proc_name IN ('policy_refresh_continuous_aggregate', 'policy_compression', 'policy_retention') GROUP BY 1 ORDER BY 1`
  );
  assert.deepEqual(jobs, [
    { proc_name: 'policy_compression', n: 1 },
    { proc_name: 'policy_refresh_continuous_aggregate', n: 19 },
    // Raw rows, three minute rollups (total and per category and type keep every minute) and the 10-minute one.
    { proc_name: 'policy_retention', n: 5 },
  ]);
  assert.match(await databaseIdentity(db.pool), /^[0-9a-f-]{36}$/);
});

test('every rollup, minute tier included, equals raw rows group by group; the routine advance is no change', async () => {
  const mark = await lastChangeId();
  await insertSpread(T0, 2 * DAY, 4000);
  const until = T0 + 2 * DAY + 30 * MIN + 20_000;
  const reports = (await refresh(until))!;
  const byName = new Map(reports.map((r) => [r.rollup, r]));
  assert.equal(byName.get('metrics_hourly')!.newWatermark!.getTime(), T0 + 2 * DAY);
  // TimescaleDB's watermark is the end of the last materialized bucket holding rows: the last
  // row is at 00:00:00.9 (the refresh went up to 00:29).
  assert.equal(byName.get('metrics_minute_total')!.newWatermark!.getTime(), T0 + 2 * DAY + MIN);
  assert.equal(byName.get('metrics_minute_by_rule')!.retainedFrom!.getTime(), T0 + 2 * DAY + 30 * MIN - 7 * DAY - HOUR);
  await assertAllRollupsExact(db.pool);
  // Live rows within the lateness allowance, then a refresh: nothing logged as changed.
  await insertSpread(T0 + 2 * DAY + 30 * MIN + 20_000, 9 * MIN, 200, 1);
  await refresh(T0 + 2 * DAY + 40 * MIN);
  assert.deepEqual((await db.pool.query('SELECT * FROM ruleperf_changes WHERE id > $1', [mark])).rows, []);
  assert.deepEqual(await pendingAt(db.pool), []);
});

test('late, updated and deleted rows below the watermark: pending until refreshed, then logged before and after the refresh', async () => {
  const mark = await lastChangeId();
  const late = T0 + DAY + 5 * HOUR + 17 * MIN + 3_000;
  await db.pool.query(
    `INSERT INTO metrics (time, metric_type, rule_id, status, execution_time_ms) VALUES ($1, 'RULE_EXECUTION', 'r1', 'ERROR', 12.5)`,
    [new Date(late)]
  );
  await db.pool.query(`DELETE FROM metrics WHERE time >= $1 AND time < $2 AND rule_id = 'r3'`, [
    new Date(T0 + 10 * HOUR),
    new Date(T0 + 10 * HOUR + 20 * MIN),
  ]);
  const pending = await pendingAt(db.pool);
  assert.ok(pending.length >= 1, 'TimescaleDB logged the changes');
  const covers = (t: number) =>
    pending.some((p) => (p.from?.getTime() ?? -Infinity) <= t && t <= (p.to?.getTime() ?? Infinity));
  assert.ok(covers(late) && covers(T0 + 10 * HOUR + 10 * MIN), JSON.stringify(pending));

  const reports = (await refresh(T0 + 2 * DAY + 45 * MIN))!;
  const { rows } = await db.pool.query('SELECT lo, hi FROM ruleperf_changes WHERE id > $1 ORDER BY id', [mark]);
  const logged = rows.map((r) => [r.lo.getTime(), r.hi.getTime()]);
  const expected = pending.map((p) => [p.from!.getTime(), p.to!.getTime()]);
  assert.deepEqual(logged, [...expected, ...expected], 'the same ranges, before and after the refresh');
  assert.deepEqual(await pendingAt(db.pool), [], 'nothing pending once refreshed');
  const hourly = reports.find((r) => r.rollup === 'metrics_hourly')!;
  assert.ok(hourly.rewritten.length > 0 && hourly.changed.length > 0);
  await assertAllRollupsExact(db.pool);
});

test('the minute tier keeps its retention', async () => {
  const until = T0 + 9 * DAY + 12 * HOUR;
  await insertSpread(T0 + 2 * DAY + HOUR, 7 * DAY, 2000, 2);
  await refresh(until);
  const minute = (await rollupStatus(db.pool)).find((s) => s.rollup === 'metrics_minute_by_category')!;
  assert.equal(minute.retainedFrom!.getTime(), until - 7 * DAY - HOUR);
  const diff = await rollupDifferences(db.pool, 'metrics_minute_by_category');
  assert.deepEqual([diff.extra, diff.missing], [[], []]);
  assert.ok(diff.checked > 100);
  // Chunks of a day: those wholly before the retained buckets are dropped.
  const { rows } = await db.pool.query('SELECT min(bucket) AS first FROM metrics_minute_by_category');
  assert.ok(rows[0].first.getTime() >= until - 8 * DAY, rows[0].first.toISOString());
  // The total and per category and type keep every minute, from the first raw row on.
  for (const name of ['metrics_minute_total', 'metrics_minute_by_category_type']) {
    const { rows: span } = await db.pool.query(
      `SELECT (SELECT min(bucket) FROM ${name}) AS first, (SELECT date_trunc('minute', min(time)) FROM metrics) AS raw`
    );
    assert.equal(span[0].first.getTime(), span[0].raw.getTime(), name);
  }
  await assertAllRollupsExact(db.pool);
});

test('a new rollup is one INSERT; rank keys are refused', async () => {
  await db.pool.query(
    `INSERT INTO ruleperf_rollups (name, source, bucket_width, dims) VALUES ('metrics_6h_by_parser', 'metrics_hourly', '6 hours', '{parser_id,status}')`
  );
  const { rows } = await db.pool.query(
    `SELECT count(*)::int AS n FROM timescaledb_information.continuous_aggregates WHERE view_name = 'metrics_6h_by_parser'`
  );
  assert.equal(rows[0].n, 1);
  await refresh(T0 + 10 * DAY);
  const diff = await rollupDifferences(db.pool, 'metrics_6h_by_parser');
  assert.deepEqual([diff.extra, diff.missing], [[], []]);
  assert.ok(diff.checked > 10);
  await assert.rejects(
    db.pool.query(`UPDATE ruleperf_rollups SET rank_keys = true WHERE name = 'metrics_6h_by_parser'`),
    /rank keys/
  );
  await assert.rejects(
    db.pool.query(`UPDATE ruleperf_rollups SET source = 'metrics' WHERE name = 'metrics_6h_by_parser'`),
    /cannot change/
  );
});

test('upgrading a schema-5 TimescaleDB database with data keeps every aggregate exact and adds the minute tier', async () => {
  const old = await embeddedTimescaleAt(5);
  try {
    await old.pool.query(
      `INSERT INTO metrics (time, metric_type, rule_id, status, execution_time_ms)
       SELECT $1::timestamptz + g * interval '37 seconds', 'RULE_EXECUTION', 'r' || (g % 9), 'SUCCESS', (g % 300) / 4.0 FROM generate_series(1, 3000) g`,
      [new Date(T0)]
    );
    // Schema 5's refresh: each aggregate in registry order, up to its last whole bucket.
    const { rows } = await old.pool.query(
      'SELECT name, extract(epoch FROM bucket_width) * 1000 AS ms FROM ruleperf_rollups ORDER BY position'
    );
    for (const r of rows) {
      const upTo = new Date(Math.floor((T0 + DAY + 90 * MIN) / Number(r.ms)) * Number(r.ms)).toISOString();
      await old.pool.query(`CALL refresh_continuous_aggregate('${r.name}', NULL, '${upTo}')`);
    }
    const result = await migrate(old.pool, { flavour: 'timescale' });
    assert.deepEqual(result.applied, [
      'common/006_registry.sql',
      'timescale/006_registry_driven.sql',
      'common/007_minute_tier.sql',
      'common/011_category_type_rollups.sql',
      'common/012_by_rule_widths.sql',
      'common/013_long_minute_rollups.sql',
      'common/016_non_finite_latency.sql',
      'common/017_summable_values.sql',
      'common/018_summable_counts.sql',
      'timescale/019_pending_notify.sql',
      'common/021_week_and_an_hour.sql',
    ]);
    const { rows: idx } = await old.pool.query(
      `SELECT indexname FROM pg_indexes WHERE tablename = 'metrics' ORDER BY 1`
    );
    assert.deepEqual(
      idx.map((r) => r.indexname),
      ['metrics_time_idx'],
      'only the time index is left on the hypertable'
    );
    await refreshRollups(old.pool, 'timescale', { until: new Date(T0 + 2 * DAY) });
    await assertAllRollupsExact(old.pool);
    assert.equal((await loadRollupCatalog(old.pool)).length, 19);
  } finally {
    await old.stop();
  }
});

test("the variables' lists read the values the continuous aggregates hold beside the rules and parsers tables", async () => {
  // The rows the tests above inserted (insertSpread) and refreshed, of rules and parsers never registered.
  const rollups = await loadRollupCatalog(db.pool);
  const values = async (name: VariableName) => (await variableValues(db.pool, name, rollups)).map((v) => v.value);
  const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM rules`);
  assert.equal(rows[0].n, 0, 'the fixture: no rule registered');
  assert.deepEqual(await values('rules'), ['r0', 'r1', 'r2', 'r3', 'r4', 'r5', 'r6']);
  assert.deepEqual(await values('parsers'), ['p0', 'p1', 'p2']);
  assert.deepEqual(await values('categories'), ['auth', 'net']);
  assert.deepEqual(await values('sourceTypes'), ['dns', 'syslog']);
  assert.deepEqual(await values('metricTypes'), ['ENRICHMENT', 'PARSER_EXECUTION', 'RULE_EXECUTION']);
});
