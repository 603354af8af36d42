/**
 * A raw row with a latency of Infinity or NaN (the table's CHECK >= 0 lets both in), or one so
 * large that two of them overflow a sum (1e308), neither stops the rollups' refresh nor gets
 * answers refused: counts stay exact, percentiles read it as the slowest bucket, and averages
 * and maxima over it are empty (null), never a number. Memory and CPU figures that large
 * (either sign) do not stop the refresh either. Both flavours.
 */
import assert from 'node:assert/strict';
import { test, before, after } from 'node:test';
import { postJson, startTestService, type TestDatabase } from '../support/services';
import { historyDatabase, DAY, HOUR } from '../support/fixture';
import { rawStats } from '../../testkit/raw';
import { refreshRollups } from '../../server/db/refresh';
import { Pool } from 'pg';
import { embeddedTimescale } from '../support/embedded';
import { startEmbeddedDatabase } from '../../server/db/embedded';
import { migrate } from '../../server/db/migrate';
import type { RunningService } from '../../server/main';
import { mergedSelect } from '../../server/query/sql';
import { NO_NATIVE, nativeFunctions, type NativeFunctions } from '../../server/db/native';

let db: TestDatabase;
let svc: RunningService;
const hour0 = Math.floor((Date.now() - DAY) / HOUR) * HOUR; // a settled past hour

before(async () => {
  db = await historyDatabase({ days: 2, rowsPerHour: 200, refreshedHoursAgo: 1 });
  svc = await startTestService({ DATABASE_URL: db.url, CACHE_ENABLED: 'false' });
});
after(async () => {
  await svc?.stop();
  await db?.drop();
});

async function stats(range: { from: number; to: number }) {
  const r = await postJson(`${svc.url}/api/v1/query`, { range, queries: [{ refId: 'A', kind: 'stats' }] });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const frame = r.body.results.A.frames[0];
  return Object.fromEntries(
    frame.schema.fields.map((f: { name: string }, i: number) => [f.name, frame.data.values[i][0]])
  ) as Record<string, number | null>;
}

const INSERT = `INSERT INTO metrics (time, metric_type, rule_id, status, execution_time_ms, memory_usage_mb, cpu_usage_percent)
  VALUES ($1, 'RULE_EXECUTION', 'rule-001', 'SUCCESS', $2::double precision, $3::double precision, $4::double precision)`;

// Two rows each: one huge value is a number, two of them overflow any sum over both.
// Each in an hour of its own (three hours apart): sums over the others' rows must not hide it.
for (const [i, value] of ['Infinity', 'NaN', '1e308'].entries()) {
  test(`a latency of ${value} in a settled hour: refreshed, answered, counted`, async () => {
    const hour = hour0 + i * 3 * HOUR;
    const at = hour + 30 * 60_000;
    for (const offset of [0, 100]) {
      await db.pool.query(INSERT, [new Date(at + offset), value, 0, 0]);
    }
    const range = { from: hour, to: hour + HOUR };
    const raw = (await rawStats(db.pool, range.from, range.to)).get('')!.n;
    // Before the refresh the hour is read from raw rows; after it, from the rollups.
    for (const stage of ['pending', 'refreshed']) {
      if (stage === 'refreshed') {
        await refreshRollups(db.pool, 'postgres', { until: new Date(Date.now() - HOUR) });
      }
      const s = await stats(range);
      assert.equal(s.executionCount, raw, `${stage}: every row counted`);
      assert.equal(s.avgExecutionTimeMs, null, `${stage}: no average over a value that is not a number`);
      assert.ok(
        typeof s.p50ExecutionTimeMs === 'number' && Number.isFinite(s.p50ExecutionTimeMs),
        `${stage}: p50 ${JSON.stringify(s)}`
      );
    }
    // The hours beside it are untouched.
    const before = await stats({ from: hour - 2 * HOUR, to: hour });
    assert.equal(typeof before.avgExecutionTimeMs, 'number');
  });
}

test('percentiles that reach an Infinity or NaN latency are empty, marked, and rank the rule slowest', async () => {
  // An hour of its own, rule-inf's four rows beside the fixture's: percentile_cont over them gives
  // a finite p50 and an infinite (or NaN) p95 and p99; the sketch's top key holds both.
  for (const [i, bad] of ['Infinity', 'NaN'].entries()) {
    const hour = hour0 - (6 + i) * HOUR;
    for (const [offset, value] of [10, 20, 30, bad].entries()) {
      await db.pool.query(INSERT.replace("'rule-001'", "'rule-inf'"), [
        new Date(hour + 60_000 * (offset + 1)),
        value,
        0,
        0,
      ]);
    }
    const range = { from: hour, to: hour + HOUR };
    const raw = (await rawStats(db.pool, range.from, range.to, { ruleId: 'rule-inf' })).get('')!;
    assert.ok(Number.isFinite(raw.p50) && !Number.isFinite(raw.p95) && !Number.isFinite(raw.p99), JSON.stringify(raw));
    for (const stage of ['pending', 'refreshed']) {
      if (stage === 'refreshed') {
        await refreshRollups(db.pool, 'postgres', { until: new Date(Date.now() - HOUR) });
      }
      const r = await postJson(`${svc.url}/api/v1/query`, {
        range,
        queries: [
          { refId: 'S', kind: 'stats', ruleId: 'rule-inf' },
          { refId: 'T', kind: 'topRules', sortBy: 'p95ExecutionTimeMs', limit: 3 },
          { refId: 'F', kind: 'stats', ruleId: 'rule-001' },
        ],
      });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      const column = (refId: string, name: string) => {
        const frame = r.body.results[refId].frames[0];
        return frame.data.values[frame.schema.fields.findIndex((f: { name: string }) => f.name === name)];
      };
      const label = `${bad}, ${stage}`;
      assert.equal(column('S', 'executionCount')[0], 4, label);
      assert.ok(Math.abs(column('S', 'p50ExecutionTimeMs')[0] - raw.p50!) <= 0.01 * raw.p50!, label);
      assert.equal(
        column('S', 'p95ExecutionTimeMs')[0],
        null,
        `${label}: no number where percentile_cont gives ${raw.p95}`
      );
      assert.equal(column('S', 'p99ExecutionTimeMs')[0], null, label);
      const notices = (refId: string) =>
        (r.body.results[refId].frames[0].schema.meta.notices ?? []).map((n: { text: string }) => n.text).join(' ');
      assert.match(notices('S'), /not a number a panel can show/, label);
      assert.doesNotMatch(
        notices('F'),
        /not a number a panel can show/,
        `${label}: a rule with finite latencies only is not marked`
      );
      assert.equal(column('T', 'ruleId')[0], 'rule-inf', `${label}: ranked slowest by p95`);
      assert.equal(column('T', 'p95ExecutionTimeMs')[0], null, label);
      assert.equal(typeof column('T', 'p95ExecutionTimeMs')[1], 'number', label);
    }
  }
});

test('percentiles reaching the top key are not numbers, in SQL and in C alike', async (t) => {
  // rule-inf's rows of the test above in its Infinity hour, merged by each percentile path a query can take.
  const src = `WITH src AS (
    SELECT count(*) AS execution_count, sum(execution_time_ms) AS exec_time_sum, min(execution_time_ms) AS exec_time_min,
      max(execution_time_ms) AS exec_time_max, ruleperf_sketch(ruleperf_sketch_key(execution_time_ms)) AS latency_sketch,
      0 AS records_processed, 0 AS records_failed, 0 AS error_count, 0 AS success_count, 0 AS timeout_count
    FROM metrics WHERE rule_id = 'rule-inf' AND time >= $1 AND time < $2)\n`;
  const infinityHour = [new Date(hour0 - 6 * HOUR), new Date(hour0 - 5 * HOUR)];
  const paths: Array<[string, NativeFunctions]> = [['SQL', NO_NATIVE]];
  if ((await nativeFunctions(db.pool)).sketches) {
    paths.push(['C, array', { sketches: true, withinBounds: true, percentilesAgg: false }]);
    paths.push(['C, aggregate', { sketches: true, withinBounds: true, percentilesAgg: true }]);
  } else {
    t.diagnostic('the ruleperf_native extension is not installed here: the SQL path only');
  }
  for (const [name, native] of paths) {
    const { rows } = await db.pool.query(src + mergedSelect([], true, native), infinityHour);
    assert.equal(Number(rows[0].execution_count), 4, name);
    assert.ok(Number.isFinite(rows[0].p50), `${name}: p50 ${rows[0].p50}`);
    assert.equal(rows[0].p95, Infinity, name);
    assert.equal(rows[0].p99, Infinity, name);
  }
});

test('memory and CPU figures of ±1e308: the refresh goes on, counts stay exact', async () => {
  const at = hour0 - 3 * HOUR + 10 * 60_000;
  const range = { from: hour0 - 3 * HOUR, to: hour0 - 2 * HOUR };
  for (const [offset, memory, cpu] of [
    [0, '1e308', '-1e308'],
    [100, '1e308', '-1e308'],
    [200, '-1e308', '1.7e308'],
  ] as const) {
    await db.pool.query(INSERT, [new Date(at + offset), 5, memory, cpu]);
  }
  await refreshRollups(db.pool, 'postgres', { until: new Date(Date.now() - HOUR) });
  const s = await stats(range);
  assert.equal(s.executionCount, (await rawStats(db.pool, range.from, range.to)).get('')!.n);
  assert.equal(typeof s.avgExecutionTimeMs, 'number', 'the latency average is untouched');
});

test('record counts of 5e18 (and the smallest bigint): the refresh goes on, answers are given, each stored as ±1e12', async () => {
  const hour = hour0 - 9 * HOUR;
  const counts = ['5000000000000000000', '5000000000000000000', '-9223372036854775808', '7'];
  for (const [i, n] of counts.entries()) {
    await db.pool.query(
      `INSERT INTO metrics (time, metric_type, rule_id, status, execution_time_ms, records_processed, records_failed)
       VALUES ($1, 'RULE_EXECUTION', 'rule-001', 'SUCCESS', 3, $2::bigint, $2::bigint)`,
      [new Date(hour + 60_000 * (i + 1)), n]
    );
  }
  const { rows } = await db.pool.query(
    `SELECT array_agg(records_processed ORDER BY time)::text AS stored FROM metrics WHERE time >= $1 AND time < $2 AND abs(records_processed) >= 1000000000000`,
    [new Date(hour), new Date(hour + HOUR)]
  );
  assert.equal(rows[0].stored, '{1000000000000,1000000000000,-1000000000000}');
  const range = { from: hour, to: hour + HOUR };
  for (const stage of ['pending', 'refreshed']) {
    if (stage === 'refreshed') {
      await refreshRollups(db.pool, 'postgres', { until: new Date(Date.now() - HOUR) });
    }
    const s = await stats(range);
    assert.equal(s.executionCount, (await rawStats(db.pool, range.from, range.to)).get('')!.n, stage);
    assert.equal(s.recordsProcessed, (await rawStats(db.pool, range.from, range.to)).get('')!.processed, stage);
  }
});

test('TimescaleDB flavour (WASM): huge values do not stop a continuous aggregate', async () => {
  const ts = await embeddedTimescale();
  try {
    const at = hour0 + 30 * 60_000;
    for (const [offset, latency, memory] of [
      [0, '1e308', '0'],
      [100, '1e308', '-1e308'],
      [200, '2.5', '-1e308'],
    ] as const) {
      await ts.pool.query(INSERT, [new Date(at + offset), latency, memory, '1e308']);
    }
    await refreshRollups(ts.pool, 'timescale', { until: new Date(Date.now() - HOUR) });
    const { rows } = await ts.pool.query(
      `SELECT sum(execution_count)::int AS n, sum(exec_time_sum) AS latency_sum, max(exec_time_max) AS latency_max
       FROM metrics_hourly WHERE bucket = $1`,
      [new Date(hour0)]
    );
    assert.equal(rows[0].n, 3, 'every row counted');
    assert.equal(rows[0].latency_sum, Infinity, 'a sum over values too large to add is Infinity, not an error');
    assert.equal(rows[0].latency_max, Infinity);
  } finally {
    await ts.stop();
  }
});

test('TimescaleDB flavour (WASM): schema 17 goes onto a database with compressed chunks, and covers rows written into them', async () => {
  const e = await startEmbeddedDatabase(null);
  const pool = new Pool({ connectionString: e.url, max: 1 });
  pool.on('error', () => undefined);
  try {
    await migrate(pool, { flavour: 'timescale', toVersion: 16 });
    const old = hour0 - 3 * DAY;
    await pool.query(INSERT, [new Date(old), 4, 0, 0]);
    const { rows: compressed } = await pool.query(
      `SELECT count(compress_chunk(c))::int AS n FROM show_chunks('metrics') c`
    );
    assert.ok(compressed[0].n >= 1, 'a compressed chunk');
    await migrate(pool, { flavour: 'timescale' });
    for (const offset of [1000, 2000]) {
      await pool.query(INSERT, [new Date(old + offset), '1e308', '-1e308', 0]);
    }
    const { rows } = await pool.query(
      `SELECT count(*)::int AS n, sum(execution_time_ms) AS latency, sum(memory_usage_mb) AS memory
       FROM metrics WHERE time >= $1 AND time < $2`,
      [new Date(old), new Date(old + HOUR)]
    );
    assert.deepEqual(rows[0], { n: 3, latency: Infinity, memory: -Infinity });
  } finally {
    await pool.end();
    await e.stop();
  }
});
