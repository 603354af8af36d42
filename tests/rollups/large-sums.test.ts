/**
 * Counts and sums are exact in the database (bigint, up to 9.2e18), but a JSON number carries
 * every digit only up to 2^53 (about 9.0e15): past it an answer's figure is rounded, and says so.
 */
import assert from 'node:assert/strict';
import { test, before, after } from 'node:test';
import { postJson, startTestService, type TestDatabase } from '../support/services';
import { historyDatabase, DAY, HOUR } from '../support/fixture';
import { refreshRollups } from '../../server/db/refresh';
import type { RunningService } from '../../server/main';

let db: TestDatabase;
let svc: RunningService;
const hour = Math.floor((Date.now() - DAY) / HOUR) * HOUR; // a settled past hour

before(async () => {
  db = await historyDatabase({ days: 2, rowsPerHour: 50, refreshedHoursAgo: 1 });
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
  const values = Object.fromEntries(
    frame.schema.fields.map((f: { name: string }, i: number) => [f.name, frame.data.values[i][0]])
  ) as Record<string, number | null>;
  const notices = (frame.schema.meta?.notices ?? []).map((n: { text: string }) => n.text).join(' | ');
  return { values, notices };
}

test('a sum of records past 2^53 comes rounded to the nearest double, with a notice; sums below it come without', async () => {
  // 10,001 rows of 999,999,999,999 records each: 10,000,999,999,989,999 in all, above 2^53.
  await db.pool.query(
    `INSERT INTO metrics (time, metric_type, rule_id, status, execution_time_ms, records_processed, records_failed)
     SELECT to_timestamp(($1::bigint + 1000 + g * 100) / 1000.0), 'RULE_EXECUTION', 'rule-big', 'SUCCESS', 5, 999999999999, 1
       FROM generate_series(0, 10000) g`,
    [hour]
  );
  const range = { from: hour, to: hour + HOUR };
  const exact = async (r: { from: number; to: number }) =>
    (
      await db.pool.query<{ s: string }>(
        'SELECT sum(records_processed)::text AS s FROM metrics WHERE time >= $1 AND time < $2',
        [new Date(r.from), new Date(r.to)]
      )
    ).rows[0].s;
  const sum = await exact(range);
  assert.ok(BigInt(sum) > BigInt(Number.MAX_SAFE_INTEGER), sum);
  for (const stage of ['pending', 'refreshed']) {
    if (stage === 'refreshed') {
      await refreshRollups(db.pool, 'postgres', { until: new Date(Date.now() - HOUR) });
    }
    const { values, notices } = await stats(range);
    assert.equal(values.recordsProcessed, Number(sum), `${stage}: the double nearest ${sum}`);
    assert.match(notices, /larger than 9,007,199,254,740,991 \(2\^53\)/, `${stage}: ${notices}`);
  }
  const earlier = { from: hour - 3 * HOUR, to: hour - HOUR };
  const below = await stats(earlier);
  assert.equal(below.values.recordsProcessed, Number(await exact(earlier)));
  assert.doesNotMatch(below.notices, /2\^53/);
});
