/**
 * PostgreSQL flavour, schema 6-7: the registry drives materialization, the minute tier is
 * exact and kept for its retention, watermarks sit on bucket boundaries a lateness allowance
 * behind the refresh, refreshes that rewrite settled buckets log the raw ranges they
 * reflected (and nothing for the routine advance), the pending view lists what is not yet
 * refreshed, and the database has one identity.
 */
import assert from 'node:assert/strict';
import { test, before, after } from 'node:test';
import { plan } from '../../server/query/plan';
import { coverRange } from '../../server/query/range';
import { Client } from 'pg';
import { freshDatabase, type TestDatabase } from '../support/services';
import { refreshRollups, pendingChanges, rollupStatus } from '../../server/db/refresh';
import { databaseIdentity } from '../../server/db/identity';
import { migrate } from '../../server/db/migrate';
import { loadRollupCatalog, tierNames } from '../../server/query/catalog';
import { assertAllRollupsExact, rollupDifferences } from './reference';
import { generateHistory } from '../../server/generator/history';

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const WEEK_AND_AN_HOUR = 7 * DAY + HOUR;
const T0 = Date.parse('2026-03-02T00:00:00Z');

let db: TestDatabase;
before(async () => {
  db = await freshDatabase({ flavour: 'postgres' });
});
after(async () => {
  await db.drop();
});

/** Rows spread over [from, from + span): rules, parsers, statuses; latencies exact in binary. */
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

const refresh = (until: number, options: { only?: string[]; latenessMs?: number } = {}) =>
  refreshRollups(db.pool, 'postgres', { until: new Date(until), ...options });

async function changesSince(
  id: number
): Promise<Array<{ id: number; lo: Date | null; hi: Date | null; rule_id: string | null; parser_id: string | null }>> {
  const { rows } = await db.pool.query(
    'SELECT id, lo, hi, rule_id, parser_id FROM ruleperf_changes WHERE id > $1 ORDER BY id',
    [id]
  );
  return rows;
}
async function lastChangeId(): Promise<number> {
  const { rows } = await db.pool.query('SELECT coalesce(max(id), 0)::int AS id FROM ruleperf_changes');
  return rows[0].id;
}

test('the registry lists nineteen rollups, minute tier included, and tier names come from it', async () => {
  const rollups = await loadRollupCatalog(db.pool);
  assert.equal(rollups.length, 19);
  const minute = rollups.filter((r) => r.bucketMs === MIN);
  assert.deepEqual(minute.map((r) => r.tier).sort(), [
    'minute_by_category',
    'minute_by_category_type',
    'minute_by_rule',
    'minute_by_type',
    'minute_total',
  ]);
  assert.ok(minute.every((r) => r.refreshEveryMs === MIN));
  // Total and per category and type are kept as long as raw rows (schema 13), the rest 7 days
  // and an hour (schema 21).
  assert.deepEqual(Object.fromEntries(minute.map((r) => [r.tier, r.retentionMs])), {
    minute_by_category: WEEK_AND_AN_HOUR,
    minute_by_type: WEEK_AND_AN_HOUR,
    minute_by_rule: WEEK_AND_AN_HOUR,
    minute_total: null,
    minute_by_category_type: null,
  });
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
  const tiers = tierNames(rollups);
  assert.equal(tiers.at(-1), 'raw');
  assert.equal(tiers.indexOf('daily'), 0, 'coarsest first');
  // Every source comes before the rollups built on it.
  for (const r of rollups.filter((x) => x.source !== 'metrics')) {
    assert.ok(rollups.find((s) => s.name === r.source)!.position! < r.position!, `${r.source} before ${r.name}`);
  }
});

test('every rollup, minute tier included, equals raw rows group by group; watermarks sit on bucket boundaries, a minute behind', async () => {
  await insertSpread(T0, 2 * DAY, 6000);
  const until = T0 + 2 * DAY + 30 * MIN + 20_000; // 00:30:20 on day 3
  const reports = (await refresh(until))!;
  const byName = new Map(reports.map((r) => [r.rollup, r]));
  assert.equal(
    byName.get('metrics_hourly')!.newWatermark!.getTime(),
    T0 + 2 * DAY,
    'hourly: the last whole hour before until - 1 minute'
  );
  assert.equal(byName.get('metrics_daily')!.newWatermark!.getTime(), T0 + 2 * DAY);
  assert.equal(
    byName.get('metrics_minute_total')!.newWatermark!.getTime(),
    T0 + 2 * DAY + 29 * MIN,
    'minute: 00:29, a minute and 20 s before until'
  );
  assert.equal(
    byName.get('metrics_minute_by_rule')!.retainedFrom!.getTime(),
    T0 + 2 * DAY + 30 * MIN - WEEK_AND_AN_HOUR
  );
  assert.ok(
    reports.every((r) => r.rewritten.length === 0 && r.changed.length === 0),
    'a first build rewrites nothing settled'
  );
  const checked = await assertAllRollupsExact(db.pool);
  assert.ok(checked.metrics_minute_by_rule > 1000 && checked.metrics_hourly > 100, JSON.stringify(checked));
  // Indexes are built once the rollups hold rows.
  const { rows: idx } = await db.pool.query(
    `SELECT indexname FROM pg_indexes WHERE tablename = 'metrics_minute_by_rule' ORDER BY 1`
  );
  assert.deepEqual(
    idx.map((r) => r.indexname),
    ['metrics_minute_by_rule_bucket', 'metrics_minute_by_rule_rule']
  );
});

test('rows a live feed delivers within the lateness allowance are routine; late, updated and deleted rows below the watermark are changes', async () => {
  const until = T0 + 2 * DAY + 40 * MIN;
  let mark = await lastChangeId();
  // Live rows up to 50 s old at refresh time: above every watermark (minute: 00:39 - 1 min).
  await insertSpread(T0 + 2 * DAY + 30 * MIN + 20_000, 10 * MIN - 30_000, 300, 1);
  let reports = (await refresh(until))!;
  assert.deepEqual(await changesSince(mark), [], 'the routine advance is not a change');
  assert.ok(reports.every((r) => r.rewritten.length === 0));

  // A late row for an hour settled yesterday, an update and a delete in another settled hour.
  mark = await lastChangeId();
  const late = T0 + DAY + 5 * HOUR + 17 * MIN + 3_000;
  await db.pool.query(
    `INSERT INTO metrics (time, metric_type, rule_id, status, execution_time_ms) VALUES ($1, 'RULE_EXECUTION', 'r1', 'ERROR', 12.5)`,
    [new Date(late)]
  );
  const { rows: upd } = await db.pool.query(
    `UPDATE metrics SET execution_time_ms = execution_time_ms + 1 WHERE time >= $1 AND time < $2 AND rule_id = 'r2' RETURNING time`,
    [new Date(T0 + 3 * HOUR), new Date(T0 + 4 * HOUR)]
  );
  const { rows: del } = await db.pool.query(
    `DELETE FROM metrics WHERE time >= $1 AND time < $2 AND rule_id = 'r3' RETURNING time`,
    [new Date(T0 + 10 * HOUR), new Date(T0 + 10 * HOUR + 20 * MIN)]
  );
  assert.ok(upd.length > 0 && del.length > 0);
  const span = (rows: Array<{ time: Date }>) => [
    Math.min(...rows.map((r) => r.time.getTime())),
    Math.max(...rows.map((r) => r.time.getTime())),
  ];

  // Before the refresh: the pending view lists the three raw ranges, nothing is in the change log.
  const pending = await pendingChanges(db.pool);
  const pend = pending.map((p) => [p.from!.getTime(), p.to!.getTime()]);
  assert.deepEqual(
    pend,
    [span(upd), span(del), [late, late]].sort((a, b) => a[0] - b[0])
  );
  assert.deepEqual(await changesSince(mark), []);

  const listener = new Client({ connectionString: db.url });
  await listener.connect();
  const notified: string[] = [];
  listener.on('notification', (n) => n.channel === 'ruleperf_changes' && notified.push(n.payload!));
  await listener.query('LISTEN ruleperf_changes');
  try {
    reports = (await refresh(until + 5 * MIN))!;
    const changes = await changesSince(mark);
    assert.deepEqual(
      changes.map((c) => [c.lo!.getTime(), c.hi!.getTime(), c.rule_id, c.parser_id]),
      pend.map(([lo, hi]) => [lo, hi, null, null]),
      'one change row per touched raw range: the raw times, not bucket bounds'
    );
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(
      notified,
      changes.map((c) => String(c.id)),
      'each change row is announced with its id'
    );
  } finally {
    await listener.end();
  }
  assert.deepEqual(await pendingChanges(db.pool), [], 'nothing pending once refreshed');
  const hourly = reports.find((r) => r.rollup === 'metrics_hourly')!;
  assert.deepEqual(
    hourly.rewritten.map((r) => [r.from!.getTime(), r.to!.getTime()]),
    [
      [T0 + 3 * HOUR, T0 + 4 * HOUR],
      [T0 + 10 * HOUR, T0 + 11 * HOUR],
      [T0 + DAY + 5 * HOUR, T0 + DAY + 6 * HOUR],
    ],
    'the hourly rollup reports the buckets it rewrote'
  );
  assert.equal(hourly.changed.length, 3);
  const daily = reports.find((r) => r.rollup === 'metrics_daily')!;
  assert.deepEqual(
    daily.rewritten.map((r) => [r.from!.getTime(), r.to!.getTime()]),
    [[T0, T0 + 2 * DAY]]
  );
  assert.deepEqual(daily.changed, [], 'cascaded recomputes are not logged again');
  await assertAllRollupsExact(db.pool);
});

test('rule and parser edits write change rows in their transaction, beside the existing NOTIFY', async () => {
  const mark = await lastChangeId();
  await db.pool.query(
    `INSERT INTO rules (rule_id, rule_name, rule_category, metric_type) VALUES ('r1', 'One', 'auth', 'RULE_EXECUTION')`
  );
  await db.pool.query(`UPDATE rules SET rule_id = 'r1b' WHERE rule_id = 'r1'`);
  await db.pool.query(`INSERT INTO parsers (parser_id, parser_name, source_type) VALUES ('p1', 'P', 'dns')`);
  const client = await db.pool.connect();
  try {
    await client.query('BEGIN');
    await client.query(`DELETE FROM parsers WHERE parser_id = 'p1'`);
    await client.query('ROLLBACK');
  } finally {
    client.release();
  }
  const rows = await changesSince(mark);
  assert.deepEqual(
    rows.map((r) => [r.rule_id, r.parser_id, r.lo, r.hi]),
    [
      ['r1', null, null, null],
      ['r1b', null, null, null],
      ['r1', null, null, null],
      [null, 'p1', null, null],
    ]
  );
});

test('the minute tier keeps its retention; a longer one rebuilds what it had dropped', async () => {
  const until = T0 + 9 * DAY + 12 * HOUR;
  await insertSpread(T0 + 2 * DAY + HOUR, 7 * DAY, 3000, 2);
  await refresh(until);
  const status = new Map((await rollupStatus(db.pool)).map((s) => [s.rollup, s]));
  const kept = status.get('metrics_minute_by_type')!.retainedFrom!.getTime();
  assert.equal(kept, until - WEEK_AND_AN_HOUR);
  assert.equal(status.get('metrics_hourly')!.retainedFrom, null, 'hourly keeps everything');
  const { rows } = await db.pool.query('SELECT min(bucket) AS first FROM metrics_minute_by_rule');
  assert.ok(rows[0].first.getTime() >= kept, 'older minute buckets are gone');
  // Total and per category and type keep every minute, as far back as raw rows go.
  for (const name of ['metrics_minute_total', 'metrics_minute_by_category_type']) {
    assert.equal(status.get(name)!.retainedFrom, null, name);
    const { rows: span } = await db.pool.query(
      `SELECT (SELECT min(bucket) FROM ${name}) AS first, (SELECT date_trunc('minute', min(time)) FROM metrics) AS raw`
    );
    assert.equal(span[0].first.getTime(), span[0].raw.getTime(), `${name} starts at the first raw minute`);
  }
  await assertAllRollupsExact(db.pool);

  await db.pool.query(
    `UPDATE ruleperf_rollups SET retention = '9 days' WHERE bucket_width = '1 minute' AND retention IS NOT NULL`
  );
  await refresh(until);
  const longer = (await rollupStatus(db.pool)).find((s) => s.rollup === 'metrics_minute_by_category')!;
  assert.equal(longer.retainedFrom!.getTime(), until - 9 * DAY);
  const diff = await rollupDifferences(db.pool, 'metrics_minute_by_category');
  assert.deepEqual([diff.extra, diff.missing], [[], []]);
  const { rows: first } = await db.pool.query('SELECT min(bucket) AS first FROM metrics_minute_by_category');
  assert.ok(first[0].first.getTime() < until - 8 * DAY, 'rebuilt from the raw rows');
});

test('a new rollup is one INSERT: table, state, then the next refresh fills it exactly and indexes it', async () => {
  await db.pool.query(
    `INSERT INTO ruleperf_rollups (name, source, bucket_width, dims) VALUES ('metrics_6h_by_parser', 'metrics_hourly', '6 hours', '{parser_id,status}')`
  );
  const { rows: reg } = await db.pool.query(
    `SELECT position, refresh_every::text AS every FROM ruleperf_rollups WHERE name = 'metrics_6h_by_parser'`
  );
  assert.deepEqual(
    reg[0],
    { position: 22, every: '01:00:00' },
    'position and refresh interval filled in (after the last, 21)'
  );
  const before = (await rollupStatus(db.pool)).find((s) => s.rollup === 'metrics_6h_by_parser')!;
  assert.equal(before.watermark, null);
  await refresh(T0 + 10 * DAY);
  const diff = await rollupDifferences(db.pool, 'metrics_6h_by_parser');
  assert.deepEqual([diff.extra, diff.missing], [[], []]);
  assert.ok(diff.checked > 10);
  const { rows: idx } = await db.pool.query(
    `SELECT indexname FROM pg_indexes WHERE tablename = 'metrics_6h_by_parser' ORDER BY 1`
  );
  assert.deepEqual(
    idx.map((r) => r.indexname),
    ['metrics_6h_by_parser_bucket', 'metrics_6h_by_parser_parser']
  );
  assert.ok((await loadRollupCatalog(db.pool)).some((r) => r.tier === '6h_by_parser'));

  // Rank keys switched on later: a column, filled for existing rows, kept by refreshes.
  await db.pool.query(`UPDATE ruleperf_rollups SET rank_keys = true WHERE name = 'metrics_6h_by_parser'`);
  await insertSpread(T0 + 5 * DAY, HOUR, 50, 3);
  await refresh(T0 + 10 * DAY);
  const keyed = await rollupDifferences(db.pool, 'metrics_6h_by_parser');
  assert.deepEqual([keyed.extra, keyed.missing], [[], []]);
});

test('the registry refuses rows it cannot materialize', async () => {
  const bad = [
    [`('metrics_x', 'metrics', '1 hour', '{rule_id,bogus}')`, /dims/],
    [`('metrics_x', 'metrics_minute_by_type', '1 hour', '{rule_id}')`, /lacks/],
    [`('metrics_x', 'metrics_hourly', '90 minutes', '{rule_id}')`, /multiple/],
    [`('metrics_x', 'nowhere', '1 hour', '{}')`, /neither/],
    [`('x; drop table metrics', 'metrics', '1 hour', '{}')`, /name/],
    [`('metrics_x', 'metrics', '1 month', '{}')`, /bucket_width/],
  ] as const;
  for (const [values, message] of bad) {
    await assert.rejects(
      db.pool.query(`INSERT INTO ruleperf_rollups (name, source, bucket_width, dims) VALUES ${values}`),
      message,
      values
    );
  }
  await assert.rejects(
    db.pool.query(`UPDATE ruleperf_rollups SET dims = '{status}' WHERE name = 'metrics_hourly_by_type'`),
    /cannot change/
  );
});

test('the identity is one uuid that migrating again keeps; changes older than a day are pruned by a refresh', async () => {
  const id = await databaseIdentity(db.pool);
  assert.match(id, /^[0-9a-f-]{36}$/);
  assert.deepEqual((await migrate(db.pool, { flavour: 'postgres' })).applied, []);
  assert.equal(await databaseIdentity(db.pool), id);
  await assert.rejects(db.pool.query('INSERT INTO ruleperf_identity DEFAULT VALUES'));

  await db.pool.query(
    `INSERT INTO ruleperf_changes (at, rule_id) VALUES (now() - interval '25 hours', 'old'), (now() - interval '23 hours', 'recent')`
  );
  await refresh(T0 + 10 * DAY, { only: ['metrics_hourly_total'] });
  const { rows } = await db.pool.query(`SELECT rule_id FROM ruleperf_changes WHERE rule_id IN ('old', 'recent')`);
  assert.deepEqual(rows, [{ rule_id: 'recent' }]);
});

test('upgrading a schema-5 database with data: rollups stay exact, watermarks move to bucket boundaries, rank keys become a plain column', async () => {
  const old = await freshDatabase({ migrate: false });
  try {
    await migrate(old.pool, { flavour: 'postgres', toVersion: 5 });
    await old.pool.query(
      `INSERT INTO metrics (time, metric_type, rule_id, status, execution_time_ms)
       SELECT $1::timestamptz + g * interval '37 seconds', 'RULE_EXECUTION', 'r' || (g % 9), 'SUCCESS', (g % 300) / 4.0 FROM generate_series(1, 5000) g`,
      [new Date(T0)]
    );
    // Schema 5's refresh: watermarks at the refresh instant, inside a bucket.
    await old.pool.query(`SELECT * FROM ruleperf_refresh(NULL, $1)`, [new Date(T0 + DAY + 90 * MIN)]);
    const result = await migrate(old.pool, { flavour: 'postgres' });
    assert.deepEqual(result.applied, [
      'common/006_registry.sql',
      'postgres/006_registry_driven.sql',
      'common/007_minute_tier.sql',
      'postgres/008_minute_rank_keys.sql',
      'postgres/009_rank_keys_inline.sql',
      'postgres/010_raw_statistics.sql',
      'common/011_category_type_rollups.sql',
      'common/012_by_rule_widths.sql',
      'postgres/012_by_rule_width_rank_keys.sql',
      'common/013_long_minute_rollups.sql',
      'postgres/014_rule_ordered_rollups.sql',
      'postgres/015_side_by_side_builds.sql',
      'common/016_non_finite_latency.sql',
      'common/017_summable_values.sql',
      'common/018_summable_counts.sql',
      'postgres/019_pending_notify.sql',
      'postgres/020_time_btree.sql',
      'common/021_week_and_an_hour.sql',
    ]);
    const status = new Map((await rollupStatus(old.pool)).map((s) => [s.rollup, s]));
    assert.equal(status.get('metrics_hourly')!.watermark!.getTime(), T0 + DAY + HOUR, 'aligned down to its bucket');
    assert.equal(status.get('metrics_daily')!.watermark!.getTime(), T0 + DAY);
    const { rows: gen } = await old.pool.query(
      `SELECT attgenerated FROM pg_attribute WHERE attrelid = 'metrics_hourly_by_rule'::regclass AND attname = 'latency_rank_keys'`
    );
    assert.equal(gen[0].attgenerated, '');
    await refreshRollups(old.pool, 'postgres', { until: new Date(T0 + 2 * DAY + 30 * MIN) });
    await assertAllRollupsExact(old.pool);
    const { rows: idx } = await old.pool.query(
      `SELECT count(*)::int AS n FROM pg_indexes WHERE tablename = 'metrics_hourly'`
    );
    assert.equal(idx[0].n, 3, 'a populated rollup keeps its indexes');
  } finally {
    await old.drop();
  }
});

test('a rollup an operator added before schema 11 keeps its place; the rollups of schemas 11 to 13 come after it', async () => {
  const old = await freshDatabase({ migrate: false });
  try {
    await migrate(old.pool, { flavour: 'postgres', toVersion: 10 });
    await old.pool.query(
      `INSERT INTO ruleperf_rollups (name, source, bucket_width, dims) VALUES ('metrics_6h_by_parser', 'metrics_hourly', '6 hours', '{parser_id,status}')`
    );
    await migrate(old.pool, { flavour: 'postgres' });
    const { rows } = await old.pool.query(
      'SELECT name, position FROM ruleperf_rollups WHERE position >= 15 ORDER BY position'
    );
    assert.deepEqual(
      rows.map((r) => r.name),
      [
        'metrics_6h_by_parser',
        'metrics_hourly_by_category_type',
        'metrics_daily_by_category_type',
        'metrics_10min_by_rule',
        'metrics_6h_by_rule',
        'metrics_minute_by_category_type',
        'metrics_minute_total',
      ]
    );
  } finally {
    await old.drop();
  }
});

test('upgrading a filled schema-12 database: the minute total and per category and type are rebuilt from every raw row, exactly', async () => {
  const old = await freshDatabase({ migrate: false });
  try {
    await migrate(old.pool, { flavour: 'postgres', toVersion: 12 });
    const end = new Date(T0 + 10 * DAY);
    await generateHistory(
      old.pool,
      { days: 10, rowsPerHour: 150, rules: 30, parsers: 4, seed: 13, end, method: 'copy' },
      () => undefined
    );
    await refreshRollups(old.pool, 'postgres', { until: end });
    const first = async (table: string) =>
      (await old.pool.query(`SELECT min(bucket) AS b FROM ${table}`)).rows[0].b?.getTime() ?? null;
    assert.ok((await first('metrics_minute_total'))! >= end.getTime() - 7 * DAY, 'schema 12 kept 7 days');
    await migrate(old.pool, { flavour: 'postgres' });
    await refreshRollups(old.pool, 'postgres', { until: end });
    const { rows } = await old.pool.query(`SELECT date_trunc('minute', min(time)) AS t FROM metrics`);
    for (const name of ['metrics_minute_total', 'metrics_minute_by_category_type']) {
      assert.equal(await first(name), rows[0].t.getTime(), `${name} from the first raw minute`);
    }
    // Every minute's counts as raw rows give them (generated values make float sums differ in
    // their last bits with the order of addition, so counts are compared here).
    const { rows: differing } = await old.pool.query(`
      WITH raw AS (
        SELECT date_trunc('minute', time) AS bucket, ROW(rule_category, metric_type)::text AS g, count(*) AS n,
               count(*) FILTER (WHERE status = 'ERROR') AS e
        FROM metrics GROUP BY 1, 2),
      total AS (SELECT bucket, sum(n) AS n, sum(e) AS e FROM raw GROUP BY 1)
      SELECT 'by category and type' AS rollup, count(*)::int AS n FROM raw
        FULL JOIN (SELECT bucket, ROW(rule_category, metric_type)::text AS g, execution_count, error_count
                   FROM metrics_minute_by_category_type) m USING (bucket, g)
        WHERE m.execution_count IS DISTINCT FROM raw.n OR m.error_count IS DISTINCT FROM raw.e
      UNION ALL
      SELECT 'total', count(*)::int FROM total FULL JOIN metrics_minute_total m USING (bucket)
        WHERE m.execution_count IS DISTINCT FROM total.n OR m.error_count IS DISTINCT FROM total.e`);
    assert.deepEqual(differing, [
      { rollup: 'by category and type', n: 0 },
      { rollup: 'total', n: 0 },
    ]);
  } finally {
    await old.drop();
  }
});

test('schema 13 stops, naming it, where an operator built a rollup on the minute total', async () => {
  const old = await freshDatabase({ migrate: false });
  try {
    await migrate(old.pool, { flavour: 'postgres', toVersion: 12 });
    await old.pool.query(
      `INSERT INTO ruleperf_rollups (name, source, bucket_width, dims) VALUES ('metrics_5min_total', 'metrics_minute_total', '5 minutes', '{}')`
    );
    await assert.rejects(
      migrate(old.pool, { flavour: 'postgres' }),
      /metrics_5min_total is built from them: drop it first/
    );
    const { rows } = await old.pool.query(`SELECT source FROM ruleperf_rollups WHERE name = 'metrics_minute_total'`);
    assert.equal(rows[0].source, 'metrics_minute_by_type', 'nothing changed');
  } finally {
    await old.drop();
  }
});

test("upgrading a filled schema-13 database: rollups with rules get the rule in their bucket index, and refreshes write each bucket's rows in rule order", async () => {
  const old = await freshDatabase({ migrate: false });
  try {
    await migrate(old.pool, { flavour: 'postgres', toVersion: 13 });
    const end = new Date(T0 + 3 * DAY);
    await generateHistory(
      old.pool,
      { days: 3, rowsPerHour: 600, rules: 60, parsers: 4, seed: 17, end, method: 'copy' },
      () => undefined
    );
    await refreshRollups(old.pool, 'postgres', { until: end });
    /** Each rollup's bucket index, as pg_indexes writes it. */
    const bucketIndexes = async () =>
      new Map(
        (
          await old.pool.query(
            `SELECT r.name, i.indexdef FROM ruleperf_rollups r JOIN pg_indexes i ON i.indexname = r.name || '_bucket'`
          )
        ).rows.map((r) => [r.name as string, r.indexdef as string])
      );
    /** Of a rollup's rows next to each other in the table within one bucket, the share in rule order. */
    const inRuleOrder = async (table: string) => {
      const { rows } = await old.pool.query(`
        SELECT avg(CASE WHEN rule_id >= lag THEN 1 ELSE 0 END)::float8 AS share FROM (
          SELECT rule_id, lag(rule_id) OVER (PARTITION BY bucket ORDER BY ctid) AS lag FROM ${table}) t
        WHERE lag IS NOT NULL`);
      return rows[0].share as number;
    };
    assert.ok(!(await bucketIndexes()).get('metrics_hourly_by_rule')!.includes('rule_id'), 'schema 13: bucket only');
    assert.ok((await inRuleOrder('metrics_daily_by_rule')) < 0.8, 'schema 13: rows in hash-aggregation order');

    await migrate(old.pool, { flavour: 'postgres' });
    const indexes = await bucketIndexes();
    const withRules = (await old.pool.query(`SELECT name, 'rule_id' = ANY (dims) AS rules FROM ruleperf_rollups`)).rows;
    assert.ok(withRules.filter((r) => r.rules).length >= 7, 'the by-rule rollups and the full-dimension ones');
    for (const { name, rules } of withRules) {
      assert.equal(
        /\(bucket DESC, \(\(rule_id \|\| ''::text\)\)\)/.test(indexes.get(name) ?? ''),
        rules,
        `${name}: ${indexes.get(name)}`
      );
    }
    // A first build in the new schema: every bucket's rows in rule order (a row or two may go to
    // space left on an earlier page), and the same rows as before (float sums aside: their last
    // bits follow the order rows are added in).
    const rebuilt = ['metrics_hourly_by_rule', 'metrics_daily_by_rule'];
    const rowsOf = async (table: string) =>
      (
        await old.pool.query(
          `SELECT ROW(bucket, rule_id, rule_category, metric_type, execution_count, exec_time_min, exec_time_max,
                      latency_sketch, latency_coarse, latency_rank_keys, error_count, success_count, timeout_count)::text AS r
             FROM ${table} ORDER BY 1`
        )
      ).rows.map((r) => r.r as string);
    const before = await Promise.all(rebuilt.map(rowsOf));
    for (const name of rebuilt) {
      await old.pool.query(`TRUNCATE ${name}`);
      await old.pool.query(`UPDATE ruleperf_rollup_state SET watermark = '-infinity' WHERE rollup = $1`, [name]);
    }
    await refreshRollups(old.pool, 'postgres', { until: end, only: rebuilt });
    for (const [i, name] of rebuilt.entries()) {
      const share = await inRuleOrder(name);
      assert.ok(share > 0.95, `${name}: ${share} of neighbouring rows in rule order`);
      const after = await rowsOf(name);
      assert.ok(after.length > 100, `${name}: ${after.length} rows`);
      assert.deepEqual(after, before[i], name);
    }
  } finally {
    await old.drop();
  }
});

test('upgrading to schema 20 with rows: the index on time becomes a B-tree, built past the statement timeout of the pool that migrates', async () => {
  // At start the service migrates on its write pool, whose statements stop at
  // DB_STATEMENT_TIMEOUT_MS: building the index over a large raw table stopped there, and the
  // start failed again at every restart.
  const old = await freshDatabase({ migrate: false });
  try {
    await migrate(old.pool, { flavour: 'postgres', toVersion: 19 });
    await old.pool.query(
      `INSERT INTO metrics (time, metric_type, rule_id, status, execution_time_ms)
       SELECT $1::timestamptz + i * interval '1 second', 'RULE_EXECUTION', 'r' || (i % 9), 'SUCCESS', 1 + i % 97
       FROM generate_series(0, 399999) AS i`,
      [new Date(T0)]
    );
    const timed = new Client({ connectionString: old.url, statement_timeout: 20 });
    await timed.connect();
    try {
      const result = await migrate(timed, { flavour: 'postgres' });
      assert.deepEqual(result.applied, ['postgres/020_time_btree.sql', 'common/021_week_and_an_hour.sql']);
    } finally {
      await timed.end();
    }
    const { rows } = await old.pool.query(
      `SELECT am.amname FROM pg_class c JOIN pg_am am ON am.oid = c.relam WHERE c.relname = 'metrics_time'`
    );
    assert.deepEqual(rows, [{ amname: 'btree' }]);
    await refreshRollups(old.pool, 'postgres', { until: new Date(T0 + 5 * DAY) });
    await assertAllRollupsExact(old.pool);
  } finally {
    await old.drop();
  }
});

test('"Last 7 days" by rule begins in the minute rollups, not in raw rows (kept a week and an hour)', async () => {
  // Kept exactly a week, the range's start lay at the retention's edge, within the margin no plan
  // reads a rollup in: its first 10 to 20 minutes came from raw rows (18,000 at 45M rows).
  const rollups = await loadRollupCatalog(db.pool);
  const now = Date.parse('2026-06-10T13:38:27.345Z');
  const state = new Map(
    rollups.map((r) => [
      r.name,
      {
        watermark: Math.floor((now - 2 * MIN) / r.bucketMs) * r.bucketMs,
        retainedFrom: r.retentionMs ? Math.floor((now - r.retentionMs) / r.bucketMs) * r.bucketMs : null,
      },
    ])
  );
  const range = coverRange({ from: now - 7 * DAY, to: now }, now);
  for (const fields of [['ruleId'], ['ruleCategory'], ['metricType']] as const) {
    const { pieces } = plan({ range, fields, rollups, state, pending: [], now });
    const rawAtStart = pieces
      .filter((p) => p.rollup === null && p.from < range.from + DAY)
      .reduce((sum, p) => sum + p.to - p.from, 0);
    assert.ok(rawAtStart < MIN, `${fields[0]}: ${rawAtStart / MIN} minutes of raw rows at the start`);
  }
});
