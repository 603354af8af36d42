/**
 * A raw row with a latency of Infinity or NaN (the table's CHECK >= 0 lets both in) neither
 * stops the rollups' refresh nor gets answers refused: counts stay exact, percentiles read it
 * as the slowest bucket, and averages and maxima over it are empty (null), never a number.
 */
import assert from 'node:assert/strict';
import { test, before, after } from 'node:test';
import { postJson, startTestService, type TestDatabase } from '../support/services';
import { historyDatabase, DAY, HOUR } from '../support/fixture';
import { rawStats } from '../../testkit/raw';
import { refreshRollups } from '../../server/db/refresh';
import type { RunningService } from '../../server/main';

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

for (const value of ['Infinity', 'NaN']) {
  test(`a latency of ${value} in a settled hour: refreshed, answered, counted`, async () => {
    const at = hour0 + 30 * 60_000 + (value === 'NaN' ? 1000 : 0);
    await db.pool.query(
      `INSERT INTO metrics (time, metric_type, rule_id, status, execution_time_ms)
       VALUES ($1, 'RULE_EXECUTION', 'rule-001', 'SUCCESS', $2::double precision)`,
      [new Date(at), value]
    );
    const range = { from: hour0, to: hour0 + HOUR };
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
    const before = await stats({ from: hour0 - 2 * HOUR, to: hour0 });
    assert.equal(typeof before.avgExecutionTimeMs, 'number');
  });
}
