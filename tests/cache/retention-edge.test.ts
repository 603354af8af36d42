/**
 * A rollup kept 7 days and an hour drops its oldest minutes at every refresh, made by this instance or any
 * other (a second instance, cron). An instance whose rollup state was read before such a refresh
 * must not read the dropped minutes as "no rows": a second instance once answered 263 executions
 * for 5 minutes 7 days back, against 344 in the raw table, and cached it as settled.
 */
import assert from 'node:assert/strict';
import { test, before, after } from 'node:test';
import { postJson, startTestService, type TestDatabase } from '../support/services';
import { historyDatabase } from '../support/fixture';
import { rawStats } from '../../testkit/raw';
import { refreshRollups } from '../../server/db/refresh';
import type { RunningService } from '../../server/main';

const MINUTE = 60_000;

let db: TestDatabase;
let svc: RunningService;

before(async () => {
  db = await historyDatabase({ days: 8, rowsPerHour: 1200, refreshedHoursAgo: 0 });
  // Its rollup state read once and kept a minute: as if another instance refreshed just after it read it.
  svc = await startTestService({ DATABASE_URL: db.url, CACHE_ENABLED: 'false', WATERMARK_CACHE_MS: '60000' });
});
after(async () => {
  await svc?.stop();
  await db?.drop();
});

const stats = async (range: { from: number; to: number }) => {
  const r = await postJson(`${svc.url}/api/v1/query`, {
    range,
    queries: [{ refId: 'A', kind: 'stats', status: 'SUCCESS' }],
  });
  assert.equal(r.status, 200, JSON.stringify(r.body).slice(0, 300));
  const frame = r.body.results.A.frames[0];
  return { count: frame.data.values[0][0] as number, tiers: frame.schema.meta.custom.tiers as string[] };
};

test('minutes dropped at the retention edge after the state was read are not answered as missing rows', async () => {
  const { rows: kept } = await db.pool.query(
    `SELECT extract(epoch FROM retention) * 1000 AS ms FROM ruleperf_rollups WHERE name = 'metrics_minute_by_type'`
  );
  const edge = Math.ceil((Date.now() - Number(kept[0].ms)) / MINUTE) * MINUTE;
  const range = { from: edge + 2 * MINUTE, to: edge + 6 * MINUTE };
  const raw = (await rawStats(db.pool, range.from, range.to, { status: 'SUCCESS' })).get('')!.n;
  assert.ok(raw > 0, 'rows in the raw table there');
  assert.equal((await stats(range)).count, raw, 'before the refresh');
  // Another refresh (as another instance's, a few minutes on) drops the minute tiers' buckets up to past the range.
  await refreshRollups(db.pool, 'postgres', { until: new Date(Date.now() + 8 * MINUTE) });
  const { rows } = await db.pool.query(
    `SELECT count(*)::int AS n FROM metrics_minute_by_type WHERE bucket >= $1 AND bucket < $2`,
    [new Date(range.from), new Date(range.to)]
  );
  assert.equal(rows[0].n, 0, 'the minute tier no longer holds the range');
  const after = await stats(range);
  assert.equal(after.count, raw, `after the refresh elsewhere (tiers ${after.tiers.join(', ')})`);
});

test('a timeseries older than the minute rollups keep is read in hourly points from the rollups that keep it, not from days of raw rows, and says so', async () => {
  const HOUR = 60 * MINUTE;
  // 20 hours ending a day before the minute tiers' edge: 3-minute points (500 at most) were on the
  // minute grid, which no rollup keeps that far back, so every one of them came from raw rows.
  const from = Math.ceil((Date.now() - 8 * 24 * HOUR) / HOUR) * HOUR + HOUR;
  const range = { from, to: from + 20 * HOUR };
  const r = await postJson(`${svc.url}/api/v1/query`, {
    range,
    maxDataPoints: 500,
    queries: [{ refId: 'A', kind: 'timeseries', ruleId: 'rule-0003', metrics: ['executionCount'] }],
  });
  assert.equal(r.status, 200, JSON.stringify(r.body).slice(0, 300));
  const frame = r.body.results.A.frames[0];
  const meta = frame.schema.meta;
  assert.equal(meta.custom.bucketMs, HOUR);
  assert.ok(!meta.custom.tiers.includes('raw'), `tiers ${meta.custom.tiers.join(', ')}`);
  const texts = (meta.notices ?? []).map((n: { text: string }) => n.text).join(' | ');
  assert.match(texts, /Points are 1 hour apart, not the 144 seconds asked: the rollups as fine as that keep only/);
  const { rows } = await db.pool.query(
    `SELECT (extract(epoch FROM date_trunc('hour', time)) * 1000)::bigint AS t, count(*)::int AS n FROM metrics
     WHERE rule_id = 'rule-0003' AND time >= $1 AND time < $2 GROUP BY 1 ORDER BY 1`,
    [new Date(range.from), new Date(range.to)]
  );
  assert.ok(rows.length > 10, 'the fixture has rows for the rule there');
  const [times, counts] = frame.data.values as number[][];
  const answered = new Map(times.map((t, i) => [t, counts[i]]));
  for (const row of rows) {
    assert.equal(answered.get(Number(row.t)), row.n, `the hour at ${new Date(Number(row.t)).toISOString()}`);
  }
});
