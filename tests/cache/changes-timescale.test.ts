/**
 * The change feed on the TimescaleDB flavour (WASM build): rows changed below the continuous
 * aggregates' watermark give overlapping answers a new data version before any refresh, each
 * further change inside a range already pending another one, and the refresh a third; an
 * answer over another range keeps its version throughout.
 */
import assert from 'node:assert/strict';
import { test, before, after } from 'node:test';
import pino from 'pino';
import { Client } from 'pg';
import { embeddedTimescale } from '../support/embedded';
import { refreshEachRollup, refreshRollups } from '../../server/db/refresh';
import { ChangeFeed, type VersionScope } from '../../server/db/change-feed';

const HOUR = 3_600_000;
const now = Math.floor(Date.now() / HOUR) * HOUR;
let db: Awaited<ReturnType<typeof embeddedTimescale>>;
let feed: ChangeFeed;

const scope = (from: number, to: number): VersionScope => ({
  range: { from, to },
  names: { rules: false, parsers: false },
  filters: {},
});

before(async () => {
  db = await embeddedTimescale();
  await db.pool.query(
    `INSERT INTO metrics (time, metric_type, rule_id, status, execution_time_ms)
     SELECT $1::timestamptz + g * interval '3 minutes', 'RULE_EXECUTION', 'r' || (g % 5), 'SUCCESS', 1 + g % 50
     FROM generate_series(0, 1399) g`,
    [new Date(now - 3 * 24 * HOUR)]
  );
  await refreshRollups(db.pool, 'timescale', { until: new Date(now - HOUR) });
  feed = new ChangeFeed(db.pool, {
    pollMs: 60_000,
    keepMs: 600_000,
    listenUrl: null,
    logger: pino({ level: 'silent' }),
  });
  await feed.start();
});
after(async () => {
  await feed?.stop();
  await db?.stop();
});

test('late rows in a settled range: a new version at the next poll, again for a second one at the same instant, again after the refresh', async () => {
  const overlapping = scope(now - 50 * HOUR, now - 40 * HOUR);
  const elsewhere = scope(now - 70 * HOUR, now - 60 * HOUR);
  const seen = new Set([feed.version(overlapping)]);
  const untouched = feed.version(elsewhere);
  const late = `INSERT INTO metrics (time, metric_type, rule_id, status, execution_time_ms) VALUES ($1, 'RULE_EXECUTION', 'r1', 'ERROR', 900)`;
  const at = new Date(now - 45 * HOUR + 17_000);
  for (const step of ['a late row', 'a second late row at the same instant']) {
    await db.pool.query(late, [at]);
    await feed.poll();
    const v = feed.version(overlapping);
    assert.ok(!seen.has(v), `${step}: a version not seen before (${v})`);
    seen.add(v);
  }
  await refreshRollups(db.pool, 'timescale', { until: new Date(now - HOUR) });
  await feed.poll();
  const refreshed = feed.version(overlapping);
  assert.ok(!seen.has(refreshed), `after the refresh: a version not seen before (${refreshed})`);
  assert.equal(feed.version(elsewhere), untouched, 'an answer over another range keeps its version');
});

test('every statement that writes raw rows announces it, and the feed reads it at once: the embedded worker passes the NOTIFY on, and its clients never see it', async () => {
  // Hypertables take no transition tables: the statement trigger cannot tell late rows from live
  // ones, and both announce. No connection can LISTEN on the embedded database (one shared
  // session): its worker does, and takes the notifications out of the statements' replies.
  const announced: number[] = [];
  const stopAnnouncing = db.onChange(() => announced.push(Date.now()));

  // A late row reaches the feed's version by that announcement, not by its poll (a minute away).
  const quick = new ChangeFeed(db.pool, {
    pollMs: 60_000,
    keepMs: 600_000,
    listenUrl: null,
    logger: pino({ level: 'silent' }),
  });
  await quick.start();
  const stopPolling = db.onChange(() => void quick.poll());
  try {
    const overlapping = scope(now - 30 * HOUR, now - 20 * HOUR);
    const before = quick.version(overlapping);
    await db.pool.query(
      `INSERT INTO metrics (time, metric_type, rule_id, status, execution_time_ms) VALUES ($1, 'RULE_EXECUTION', 'r1', 'ERROR', 700)`,
      [new Date(now - 25 * HOUR + 9_000)]
    );
    await waitFor(() => quick.version(overlapping) !== before, 'a new version for the answers over the late row');
  } finally {
    stopPolling();
    await quick.stop();
  }

  // A client that listens itself (the session is shared, so it listens for everyone) gets none.
  const client = new Client({ connectionString: db.url });
  await client.connect();
  const listened: string[] = [];
  announced.length = 0;
  try {
    client.on('notification', (n) => listened.push(`${n.channel}:${n.payload}`));
    await client.query('LISTEN ruleperf_changes');
    await client.query(
      `INSERT INTO metrics (time, metric_type, rule_id, status, execution_time_ms) VALUES (now(), 'RULE_EXECUTION', 'r2', 'SUCCESS', 5)`
    );
    await client.query(`DELETE FROM metrics WHERE rule_id = 'r2' AND time > now() - interval '1 minute'`);
    await client.query('SELECT 1');
  } finally {
    await client.end();
  }
  await waitFor(() => announced.length >= 2, 'a live insert and a delete announced');
  assert.deepEqual(listened, [], 'the worker’s own notifications are not passed to clients');
  stopAnnouncing();
});

test('on a TimescaleDB server inserts do not announce (a notifying commit takes a server-wide lock); updates and deletes do, and a client resetting the shared session neither silences nor breaks the embedded one', async () => {
  let announced = 0;
  const stopCounting = db.onChange(() => announced++);
  const client = new Client({ connectionString: db.url });
  await client.connect();
  const insert = `INSERT INTO metrics (time, metric_type, rule_id, status, execution_time_ms) VALUES (now(), 'RULE_EXECUTION', 'x3', 'SUCCESS', 5)`;
  try {
    // As on a server, where nothing sets it (SET LOCAL: a session-wide SET lasts only to the end of
    // its statement or transaction on the shared session).
    await client.query('BEGIN');
    await client.query('SET LOCAL ruleperf.announce_inserts = off');
    await client.query(insert);
    await client.query('COMMIT');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(announced, 0, 'an insert on a server announces nothing');
    await client.query(`UPDATE metrics SET execution_time_ms = 6 WHERE rule_id = 'x3'`);
    await waitFor(() => announced === 1, 'an update announced');
    // A setting one client changes for the session does not reach another's statements.
    await client.query('SET extra_float_digits = -15');
    const other = new Client({ connectionString: db.url });
    await other.connect();
    try {
      const { rows: floats } = await other.query('SELECT 40.97371234567::float8 AS v');
      assert.equal(floats[0].v, 40.97371234567, 'full precision for the other connection');
    } finally {
      await other.end();
    }
    await client.query('DISCARD ALL');
    const { rows } = await client.query(
      `SELECT current_setting('TimeZone') AS tz, current_setting('search_path') AS path`
    );
    assert.deepEqual(rows[0], { tz: 'UTC', path: 'public' }, 'the settings every connection relies on, back');
    await client.query(insert); // finds metrics again (after RESET ALL, PGlite's search_path is pg_catalog)
    await waitFor(() => announced === 2, 'the embedded database announces inserts again after DISCARD ALL');
    await client.query('UNLISTEN *');
    await client.query(`DELETE FROM metrics WHERE rule_id = 'x3'`);
    await waitFor(() => announced === 3, 'and still listens after UNLISTEN *');
  } finally {
    stopCounting();
    await client.end();
  }
});

async function waitFor(check: () => boolean, what: string) {
  const deadline = Date.now() + 3000;
  while (!check()) {
    assert.ok(Date.now() < deadline, `${what} within 3 s`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('a late row days back refreshed with the live edge is logged as a change of its own hours, not of everything since (rollups built from rollups)', async () => {
  const late = now - 50 * HOUR + 13_000;
  await db.pool.query(
    `INSERT INTO metrics (time, metric_type, rule_id, status, execution_time_ms) VALUES ($1, 'RULE_EXECUTION', 'x4', 'SUCCESS', 8)`,
    [new Date(late)]
  );
  await db.pool.query(
    `INSERT INTO metrics (time, metric_type, rule_id, status, execution_time_ms)
     SELECT $1::timestamptz + g * interval '1 minute', 'RULE_EXECUTION', 'x4', 'SUCCESS', 8 FROM generate_series(0, 29) g`,
    [new Date(now - 40 * 60_000)]
  );
  const { rows: before } = await db.pool.query('SELECT coalesce(max(id), 0) AS id FROM ruleperf_changes');
  // One rollup per refresh, as the demo's back-fill and the bench do: each reads what is pending
  // (the rollups built from others, what their source's refresh logged) and records it.
  await refreshEachRollup(db.pool, 'timescale', { until: new Date(now) });
  const { rows } = await db.pool.query(
    `SELECT extract(epoch FROM lo) * 1000 AS lo, extract(epoch FROM hi) * 1000 AS hi FROM ruleperf_changes WHERE id > $1`,
    [before[0].id]
  );
  assert.ok(rows.length > 0, 'the late row is a change');
  for (const r of rows) {
    assert.ok(
      Number(r.lo) >= late - 2 * 24 * HOUR && Number(r.hi) <= late + 2 * 24 * HOUR - 2 * HOUR,
      `a change from ${new Date(Number(r.lo)).toISOString()} to ${new Date(Number(r.hi)).toISOString()}: around the late row (${new Date(late).toISOString()}), not up to the live edge`
    );
  }
});
