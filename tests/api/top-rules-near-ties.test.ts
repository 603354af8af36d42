/**
 * Top rules by a percentile rank the sketch's figures, each within 0.8 % of the exact value:
 * where the last rule listed and the first left out are that close, an exact ranking may list
 * the other one, and the answer says so. Real PostgreSQL, through the service.
 */
import assert from 'node:assert/strict';
import { test, before, after } from 'node:test';
import { postJson, startTestService, type TestDatabase } from '../support/services';
import { historyDatabase, DAY, HOUR } from '../support/fixture';
import type { RunningService } from '../../server/main';

let db: TestDatabase;
let svc: RunningService;
const hour = Math.floor((Date.now() - DAY) / HOUR) * HOUR; // a settled past hour, read from the rollups or raw rows alike

before(async () => {
  db = await historyDatabase({ days: 2, rowsPerHour: 50, refreshedHoursAgo: 1 });
  // 100 executions each, of 1 to 100 ms times a factor: p95s of 95.05, 95.34 and 104.6 ms,
  // each rule's range overlapping the others' (the first phase cannot tell them apart).
  for (const [rule, factor] of [
    ['near-a', 1],
    ['near-b', 1.003],
    ['far-c', 1.1],
  ] as const) {
    await db.pool.query(
      `INSERT INTO metrics (time, metric_type, rule_id, status, execution_time_ms)
       SELECT to_timestamp(($1::bigint + 60000 + g * 1000) / 1000.0), 'RULE_EXECUTION', $2, 'SUCCESS', (g + 1) * $3::float8
         FROM generate_series(0, 99) g`,
      [hour, rule, factor]
    );
  }
  svc = await startTestService({ DATABASE_URL: db.url, CACHE_ENABLED: 'false' });
});
after(async () => {
  await svc?.stop();
  await db?.drop();
});

async function top(ruleIds: string[], limit: number, sortBy = 'p95ExecutionTimeMs') {
  const r = await postJson(`${svc.url}/api/v1/query`, {
    range: { from: hour, to: hour + HOUR },
    queries: [{ refId: 'A', kind: 'topRules', ruleId: ruleIds, limit, sortBy }],
  });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const frame = r.body.results.A.frames[0];
  const notices = (frame.schema.meta?.notices ?? []).map((n: { text: string }) => n.text).join(' | ');
  return { listed: frame.data.values[0] as string[], notices };
}

test('the last rule listed and the first left out within 0.8 % of each other: said, naming both', async () => {
  // Which of the two the sketch puts first is its business; that an exact ranking may differ is said.
  const close = await top(['near-a', 'near-b'], 1);
  const [listed] = close.listed;
  const left = listed === 'near-a' ? 'near-b' : 'near-a';
  const figure = '9[45]\\.\\d+ ms';
  assert.match(
    close.notices,
    new RegExp(
      `by their p95 .* ${listed} \\(listed last, ${figure}\\) and ${left} \\(the first left out, ${figure}\\)`
    ),
    close.notices
  );
  // Further apart than the sketch's accuracy: nothing to say.
  const apart = await top(['far-c', 'near-b', 'near-a'], 1);
  assert.deepEqual(apart.listed, ['far-c']);
  assert.doesNotMatch(apart.notices, /first left out/);
  // Every rule listed: none left out.
  const all = await top(['near-a', 'near-b'], 2);
  assert.deepEqual([...all.listed].sort(), ['near-a', 'near-b']);
  assert.doesNotMatch(all.notices, /first left out/);
  // An exact ordering (the average) has no such doubt.
  const byAverage = await top(['near-a', 'near-b'], 1, 'avgExecutionTimeMs');
  assert.deepEqual(byAverage.listed, ['near-b']);
  assert.doesNotMatch(byAverage.notices, /first left out/);
});
