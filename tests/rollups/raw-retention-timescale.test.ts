/**
 * The TimescaleDB flavour drops raw rows past its retention (migrate's --raw-retention, 90 days
 * by default), whole chunks at a time, and the hourly and daily rollups are to keep them. But
 * TimescaleDB logs a dropped chunk's range as changed: the next refresh rebuilt those buckets
 * from no rows (every bucket older than the retention lost), and meanwhile the planner read that
 * range from the raw rows that were gone. And a range whose ends lie in a partial hour there read
 * those minutes from no rows. Now no refresh reaches below the oldest chunk, changes logged before
 * it are none, and such ends are covered in whole hours from the rollups, said in a notice (WASM
 * build, a 2-day retention).
 */
import assert from 'node:assert/strict';
import { test, before, after } from 'node:test';
import { Pool } from 'pg';
import { startEmbeddedDatabase } from '../../server/db/embedded';
import { migrate } from '../../server/db/migrate';
import { loadRawExtent, rawKeptFrom, refreshRollups } from '../../server/db/refresh';
import { postJson, startTestService } from '../support/services';
import type { RunningService } from '../../server/main';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const today = Math.floor(Date.now() / DAY) * DAY;
// An hour three days back: its day's chunk lies wholly past a 2-day retention.
const h0 = today - 3 * DAY + 10 * HOUR;
let embedded: Awaited<ReturnType<typeof startEmbeddedDatabase>>;
let pool: Pool;
let svc: RunningService;
let expected: number;

before(async () => {
  embedded = await startEmbeddedDatabase(null);
  pool = new Pool({ connectionString: embedded.url, max: 1 });
  pool.on('error', () => undefined);
  // Built while the four days are within the retention (10 days), which then comes down to 2:
  // as time passing past a 90-day retention would.
  await migrate(pool, { flavour: 'timescale', rawRetention: '10 days' });
  await pool.query(
    `INSERT INTO metrics (time, metric_type, rule_id, status, execution_time_ms)
     SELECT $1::timestamptz + g * interval '1 minute', 'RULE_EXECUTION', 'r' || (g % 5), 'SUCCESS', 1 + g % 50
     FROM generate_series(0, 4 * 24 * 60 - 1) g`,
    [new Date(today - 4 * DAY)]
  );
  await refreshRollups(pool, 'timescale', { until: new Date(Date.now() - HOUR) });
  const { rows } = await pool.query('SELECT count(*)::int AS n FROM metrics WHERE time >= $1 AND time < $2', [
    new Date(h0),
    new Date(h0 + 3 * HOUR),
  ]);
  expected = rows[0].n;
  await pool.query(`SELECT remove_retention_policy('metrics')`);
  await pool.query(`SELECT add_retention_policy('metrics', INTERVAL '2 days')`);
  // What the retention job does when it runs (background jobs do not run in this build), then
  // the next scheduled refresh: TimescaleDB logged the dropped chunks' range as changed.
  await pool.query(`SELECT drop_chunks('metrics', older_than => now() - interval '2 days')`);
  await refreshRollups(pool, 'timescale', { until: new Date(Date.now() - HOUR) });
  await pool.end();
  svc = await startTestService({ DATABASE_URL: embedded.url, CACHE_ENABLED: 'false', DB_POOL_MAX: '1' });
});
after(async () => {
  await svc?.stop();
  await embedded?.stop();
});

test('a refresh after the raw retention dropped chunks keeps the hourly and daily buckets built from them', async () => {
  const p = new Pool({ connectionString: embedded.url, max: 1 });
  try {
    const { rows } = await p.query(
      `SELECT (SELECT count(*)::int FROM metrics_hourly_total WHERE bucket < $1) AS hours,
              (SELECT count(*)::int FROM metrics_daily_total WHERE bucket < $1) AS days,
              (SELECT count(*)::int FROM ruleperf_pending_changes) AS pending`,
      [new Date(today - 2 * DAY)]
    );
    assert.deepEqual(
      { hours: rows[0].hours, days: rows[0].days },
      { hours: 48, days: 2 },
      'the two dropped days are still in the rollups'
    );
  } finally {
    await p.end();
  }
});

test('where raw rows are kept from: the oldest chunk left, or the retention edge where that is later', async () => {
  const p = new Pool({ connectionString: embedded.url, max: 1 });
  try {
    const extent = await loadRawExtent(p);
    assert.deepEqual(
      extent,
      { oldestChunk: today - 2 * DAY, retentionMs: 2 * DAY },
      'the two oldest days dropped, whole chunks'
    );
    assert.equal(rawKeptFrom(extent, today - HOUR), today - 2 * DAY, 'the oldest chunk, later than the edge');
    assert.equal(rawKeptFrom(extent, today + 5 * HOUR), today - 2 * DAY + 5 * HOUR, 'the edge, later than the chunk');
    assert.equal(rawKeptFrom({ oldestChunk: null, retentionMs: null }, today), null);
    const { rows } = await p.query('SELECT count(*)::int AS n FROM metrics WHERE time >= $1 AND time < $2', [
      new Date(h0),
      new Date(h0 + 3 * HOUR),
    ]);
    assert.equal(rows[0].n, 0, 'the raw rows there are gone');
  } finally {
    await p.end();
  }
});

test('a range with ends in partial hours older than the raw rows kept: covered in whole hours, counted, and said', async () => {
  const r = await postJson(`${svc.url}/api/v1/query`, {
    range: { from: h0 + 20 * 60_000, to: h0 + 2 * HOUR + 10 * 60_000 },
    queries: [{ refId: 'A', kind: 'stats' }],
  });
  assert.equal(r.status, 200, JSON.stringify(r.body).slice(0, 300));
  const frame = r.body.results.A.frames[0];
  assert.deepEqual(frame.schema.meta.custom.coveredRange, { from: h0, to: h0 + 3 * HOUR });
  assert.equal(
    frame.data.values[0][0],
    expected,
    `every execution of the hours covered (${frame.schema.meta.custom.tiers} ${frame.schema.meta.executedQueryString})`
  );
  const notices = frame.schema.meta.notices.map((n: { text: string }) => n.text).join(' ');
  assert.match(notices, /raw rows this old are no longer kept, so its ends are read in whole hours/);
});

test('a late row far back, then no chunk left at all: the refresh still keeps the history the rollups hold', async () => {
  const p = new Pool({ connectionString: embedded.url, max: 1 });
  const history = async () =>
    (
      await p.query(
        `SELECT (SELECT count(*)::int FROM metrics_hourly_total WHERE bucket < $1) AS hours,
                (SELECT coalesce(sum(execution_count), 0)::int FROM metrics_hourly_total WHERE bucket < $1) AS executions`,
        [new Date(today - 2 * DAY)]
      )
    ).rows[0];
  try {
    const before = await history();
    assert.equal(before.hours, 48);
    // A producer's clock ten days off: a chunk older than the dropped days.
    await p.query(
      `INSERT INTO metrics (time, metric_type, rule_id, status, execution_time_ms) VALUES ($1, 'RULE_EXECUTION', 'r1', 'SUCCESS', 3)`,
      [new Date(today - 10 * DAY + HOUR)]
    );
    await refreshRollups(p, 'timescale', { until: new Date(Date.now() - HOUR) });
    assert.deepEqual(await history(), before, 'the dropped days are not rebuilt from no rows');
    // Ingestion stopped past the retention: every chunk dropped.
    await p.query(`SELECT drop_chunks('metrics', older_than => now() + interval '1 day')`);
    assert.equal((await loadRawExtent(p))!.oldestChunk, null);
    await refreshRollups(p, 'timescale', { until: new Date(Date.now() - HOUR) });
    assert.deepEqual(await history(), before, 'nor with no chunk left');
  } finally {
    await p.end();
  }
});
