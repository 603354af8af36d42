/**
 * The in-database generator (server/generator/sql-history.ts) behind the embedded demo and
 * `generate --method sql`: rows are a function of time (any window, any chunking, any
 * order gives the same rows; adjoining windows never share one), and they follow the same
 * model as the JS generator.
 */
import assert from 'node:assert/strict';
import { test, before, after } from 'node:test';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { freshDatabase, type TestDatabase } from '../support/services';
import { SqlGenerator, expectedRows } from '../../server/generator/sql-history';
import { buildModel, hourRows, rowsInHour, type MetricRow } from '../../server/generator/model';

const HOUR = 3_600_000;
const T0 = Date.parse('2026-03-02T00:00:00Z');
const model = { seed: 7, rowsPerHour: 3000, rules: 500, parsers: 30 };
const DIGEST = `SELECT count(*)::int AS n, md5(string_agg(concat_ws('|', time, metric_type, rule_id, parser_id, rule_category, source_type, status,
                  execution_time_ms, records_processed, records_matched, records_failed, memory_usage_mb, cpu_usage_percent), ','
                  ORDER BY time, rule_id, parser_id, execution_time_ms)) AS h FROM metrics`;

let dbs: TestDatabase[] = [];
before(async () => {
  dbs = await Promise.all([freshDatabase(), freshDatabase(), freshDatabase()]);
});
after(async () => {
  await Promise.all(dbs.map((d) => d.drop()));
});

test('the same window gives the same rows whatever the chunking, order or split; whole hours hold exactly their planned rows', async () => {
  const g = new SqlGenerator(model);
  const from = T0 + 17 * 60_000 + 123; // windows need not start or end on an hour
  const to = T0 + 9 * HOUR + 41 * 60_000;
  await g.load(dbs[0].pool, from, to);
  await g.upsertDimensions(dbs[1].pool);
  for (const c of g.chunks(from, to, 2500, true)) {
    await g.insert(dbs[1].pool, c.fromMs, c.toMs);
  } // small chunks, newest first
  await g.upsertDimensions(dbs[2].pool);
  const middle = T0 + 4 * HOUR + 5 * 60_000 + 7;
  await g.insert(dbs[2].pool, middle, to);
  await g.insert(dbs[2].pool, from, middle);
  const [a, b, c] = await Promise.all(dbs.map(async (d) => (await d.pool.query(DIGEST)).rows[0]));
  assert.ok(a.n > 10_000, `${a.n} rows`);
  assert.deepEqual(b, a, 'chunked newest first');
  assert.deepEqual(c, a, 'split in two, loaded in reverse order');
  assert.ok(
    Math.abs(a.n - expectedRows(model, from, to)) <= 20,
    `about the expected rows (${a.n} vs ${expectedRows(model, from, to)})`
  );
  const { rows: edges } = await dbs[0].pool.query('SELECT min(time) AS lo, max(time) AS hi FROM metrics');
  assert.ok(edges[0].lo.getTime() >= from && edges[0].hi.getTime() < to, 'no row outside the window');

  await Promise.all(dbs.map((d) => d.pool.query('TRUNCATE metrics')));
  await g.insert(dbs[0].pool, T0, T0 + 3 * HOUR);
  const { rows: perHour } = await dbs[0].pool.query(
    `SELECT date_trunc('hour', time) AS h, count(*)::int AS n FROM metrics GROUP BY 1 ORDER BY 1`
  );
  assert.deepEqual(
    perHour.map((r) => r.n),
    [0, 1, 2].map((i) => rowsInHour(T0 + i * HOUR, model.rowsPerHour))
  );
  const other = new SqlGenerator({ ...model, seed: 8 });
  await other.insert(dbs[1].pool, T0, T0 + 3 * HOUR);
  const [x, y] = await Promise.all([dbs[0], dbs[1]].map(async (d) => (await d.pool.query(DIGEST)).rows[0]));
  assert.notEqual(y.h, x.h, 'another seed, other rows');
});

test('the rows follow the same model as the JS generator', async () => {
  const db = dbs[0];
  await db.pool.query('TRUNCATE metrics');
  const g = new SqlGenerator(model);
  const from = T0;
  const to = T0 + 48 * HOUR;
  await g.load(db.pool, from, to);
  const js = buildModel(model.seed, model.rules, model.parsers);
  const jsRows: MetricRow[] = [];
  for (let h = from; h < to; h += HOUR) {
    jsRows.push(...hourRows(js, model.seed, h, rowsInHour(h, model.rowsPerHour)));
  }

  const {
    rows: [sql],
  } = await db.pool.query(`SELECT count(*)::int AS n,
      avg((status = 'ERROR')::int)::float8 AS errors, avg((status = 'TIMEOUT')::int)::float8 AS timeouts, avg((rule_id IS NOT NULL)::int)::float8 AS with_rule,
      avg(records_processed)::float8 AS processed FROM metrics`);
  const share = (f: (r: (typeof jsRows)[number]) => boolean) => jsRows.filter(f).length / jsRows.length;
  assert.equal(sql.n, jsRows.length, 'the same number of rows per hour');
  const close = (name: string, a: number, b: number, tolerance: number) =>
    assert.ok(Math.abs(a - b) <= tolerance * b, `${name}: sql ${a.toFixed(4)}, js ${b.toFixed(4)}`);
  close(
    'error rate',
    sql.errors,
    share((r) => r[6] === 'ERROR'),
    0.25
  );
  close(
    'timeout rate',
    sql.timeouts,
    share((r) => r[6] === 'TIMEOUT'),
    0.25
  );
  close(
    'rows with a rule',
    sql.with_rule,
    share((r) => r[2] !== null),
    0.02
  );
  close('records processed', sql.processed, jsRows.reduce((s, r) => s + r[8], 0) / jsRows.length, 0.03);

  // Per metric type and per category, the same shares; the busiest rules, the same order of magnitude.
  for (const column of [
    { sql: 'metric_type', js: 1 },
    { sql: 'rule_category', js: 4 },
  ] as const) {
    const { rows } = await db.pool.query(
      `SELECT ${column.sql} AS k, count(*)::float8 / sum(count(*)) OVER () AS share FROM metrics GROUP BY 1`
    );
    for (const r of rows.filter((x) => x.share > 0.05)) {
      close(
        `${column.sql} ${r.k}`,
        r.share,
        share((x) => x[column.js] === r.k),
        0.15
      );
    }
  }
  const { rows: perRule } = await db.pool
    .query(`SELECT rule_id, count(*)::int AS n, percentile_cont(0.5) WITHIN GROUP (ORDER BY execution_time_ms) AS median
      FROM metrics WHERE rule_id IS NOT NULL AND status = 'SUCCESS' GROUP BY 1 ORDER BY 2 DESC LIMIT 5`);
  for (const r of perRule) {
    const def = js.rules.find((x) => x.ruleId === r.rule_id)!;
    close(`median latency of ${r.rule_id}`, r.median, def.medianMs, 0.1);
  }
  assert.deepEqual(
    perRule.slice(0, 2).map((r) => r.rule_id),
    ['rule-0001', 'rule-0002'],
    'the heaviest rules run most often'
  );
  const { rows: types } = await db.pool.query(
    `SELECT count(DISTINCT metric_type)::int AS types, count(DISTINCT rule_id)::int AS rules, count(DISTINCT parser_id)::int AS parsers FROM metrics`
  );
  assert.deepEqual(types[0], { types: 6, rules: 500, parsers: 30 });
});

test('generate --method sql loads the history with the CLI and ANALYZEs it', async () => {
  const db = dbs[1];
  await db.pool.query('TRUNCATE metrics');
  const r = spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      'server/cli/generate.ts',
      '--method',
      'sql',
      '--days',
      '1',
      '--rows-per-hour',
      '500',
      '--seed',
      '3',
      '--end',
      '2026-03-02T00:00:00Z',
    ],
    {
      cwd: join(__dirname, '..', '..'),
      env: { ...process.env, DATABASE_URL: db.url },
      encoding: 'utf8',
      timeout: 120_000,
    }
  );
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /loaded [\d,]+ rows/);
  // The rollups are built one by one behind a progress bar naming each, then counted.
  const built = /(\d+) rollups refreshed in [\d.]+ s/.exec(r.stdout);
  assert.ok(built, r.stdout);
  assert.match(r.stderr, new RegExp(`building rollups \\[=+\\] ${built[1]}/${built[1]}`));
  assert.match(r.stderr, new RegExp(`building rollups \\[-+\\] 0/${built[1]} metrics_hourly `), 'the first one named');
  const { rows } = await db.pool.query('SELECT count(*)::int AS n FROM metrics');
  let planned = 0;
  for (let h = T0 - 24 * HOUR; h < T0; h += HOUR) {
    planned += rowsInHour(h, 500);
  }
  assert.equal(rows[0].n, planned);
  const { rows: stats } = await db.pool.query(
    `SELECT last_analyze IS NOT NULL OR last_autoanalyze IS NOT NULL AS analyzed FROM pg_stat_user_tables WHERE relname = 'metrics'`
  );
  assert.equal(stats[0].analyzed, true);
});
