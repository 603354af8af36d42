/**
 * DEMO_DAYS raised on a later start: the folder's demo reaches further back (the earlier
 * days are back-filled, with the "not loaded yet" notice meanwhile), instead of keeping the
 * span of the first start without a word.
 */
import assert from 'node:assert/strict';
import { test, before, after } from 'node:test';
import pino from 'pino';
import { Demo, type DemoSettings } from '../../server/demo/demo';
import { readDemoState } from '../../server/demo/state';
import { freshDatabase, type TestDatabase } from '../support/services';

const DAY_MS = 86_400_000;
let db: TestDatabase;
before(async () => (db = await freshDatabase()));
after(() => db?.drop());
const log = pino({ level: 'silent' });
const settings: DemoSettings = { days: 1, rowsPerHour: 120, seed: 7, live: false, rules: 6, parsers: 2 };

test('a later start with a larger DEMO_DAYS back-fills the days before the first start’s span', async () => {
  const first = await Demo.prepare(db.pool, 'postgres', settings, log, false);
  assert.ok(first);
  await first.stop();
  const before = await readDemoState(db.pool);
  assert.ok(before && before.historyFrom > Date.now() - DAY_MS - 60_000, 'the first start spans one day');

  const second = await Demo.prepare(db.pool, 'postgres', { ...settings, days: 3 }, log, false);
  assert.ok(second);
  const twoDaysBack = Date.now() - 2 * DAY_MS;
  assert.match(
    second.notice(twoDaysBack - 3_600_000, twoDaysBack) ?? '',
    /\(3[23] % of the 3 days loaded\).* is not loaded yet/,
    'a panel over the days still to load says so, and how much of the demo (one day of three) is in'
  );
  let timer: NodeJS.Timeout | undefined;
  const loaded = await Promise.race([
    new Promise<boolean>((resolve) => second.start({ onLoaded: async () => resolve(true) })),
    new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), 120_000))),
  ]);
  clearTimeout(timer);
  await second.stop();
  assert.ok(loaded, 'the back-fill of the earlier days finished');

  // The hours before the first start's span are all back-filled rows, all below the watermark.
  const { rows } = await db.pool.query<{ first: Date; raw: string; rolled: string }>(
    `SELECT min(time) AS first, count(*)::text AS raw,
            (SELECT sum(execution_count)::text FROM metrics_hourly WHERE bucket < date_trunc('hour', $1::timestamptz)) AS rolled
       FROM metrics WHERE time < date_trunc('hour', $1::timestamptz)`,
    [new Date(before.historyFrom)]
  );
  assert.ok(Number(rows[0].raw) > 2 * 24 * settings.rowsPerHour * 0.9, `two earlier days loaded (${rows[0].raw} rows)`);
  assert.ok(
    rows[0].first.getTime() < Date.now() - 3 * DAY_MS + 3_600_000,
    `rows reach three days back (first row ${rows[0].first.toISOString()})`
  );
  assert.equal(rows[0].rolled, rows[0].raw, 'the back-filled rows are in the rollups');
  assert.equal(second.notice(twoDaysBack - 3_600_000, twoDaysBack), null, 'no notice once they are loaded');
});

test('a later start with a smaller DEMO_DAYS keeps the folder’s span, and its notice names that span', async () => {
  const own = await freshDatabase();
  try {
    const first = await Demo.prepare(own.pool, 'postgres', { ...settings, days: 3 }, log, false);
    assert.ok(first);
    await first.stop(); // before its back-fill: two of the three days still to load
    const second = await Demo.prepare(own.pool, 'postgres', settings, log, false);
    assert.ok(second);
    const twoDaysBack = Date.now() - 2 * DAY_MS;
    assert.match(
      second.notice(twoDaysBack - 3_600_000, twoDaysBack) ?? '',
      /\(3[23] % of the 3 days loaded\)/,
      'the span still to load is of the three days, not of DEMO_DAYS=1'
    );
    await second.stop();
  } finally {
    await own.drop();
  }
});
