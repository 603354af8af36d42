/**
 * A range that has ended but whose last minutes are read from raw rows past the rollups'
 * watermark (a fixed range ending a minute ago, as a zoomed panel or a shared link asks) holds
 * the rows written when it was computed. Rows still arriving for those minutes are not tracked
 * as changes until a refresh passes them, so a cached answer can miss them for up to its TTL:
 * every such answer, computed or cached, says which rows it holds; a settled range says nothing.
 */
import assert from 'node:assert/strict';
import { test, before, after } from 'node:test';
import { postJson, startTestService, type TestDatabase } from '../support/services';
import { historyDatabase, HOUR } from '../support/fixture';
import type { RunningService } from '../../server/main';

let db: TestDatabase;
let svc: RunningService;
before(async () => {
  db = await historyDatabase({ days: 1, rowsPerHour: 300, refreshedHoursAgo: 2 });
  svc = await startTestService({ DATABASE_URL: db.url });
});
after(async () => {
  await svc?.stop();
  await db?.drop();
});

async function stats(range: { from: number; to: number }) {
  const r = await postJson(`${svc.url}/api/v1/query`, { range, queries: [{ refId: 'A', kind: 'stats' }] });
  assert.equal(r.status, 200, JSON.stringify(r.body).slice(0, 300));
  const frame = r.body.results.A.frames[0];
  return {
    count: frame.data.values[0][0] as number,
    cache: frame.schema.meta.custom.cache as string,
    tiers: frame.schema.meta.custom.tiers as string[],
    notices: (frame.schema.meta.notices ?? []).map((n: { text: string }) => n.text) as string[],
  };
}

test('an ended range read from raw rows still arriving says so, computed and cached', async () => {
  const to = Math.floor(Date.now() / 1000) * 1000 - 61_000;
  const range = { from: to - 10 * 60_000, to };
  const first = await stats(range);
  assert.equal(first.cache, 'miss');
  assert.equal(first.tiers[first.tiers.length - 1], 'raw');
  const said = first.notices.find((n) => n.startsWith('Rows written by'));
  assert.ok(said, JSON.stringify(first.notices));
  assert.match(said!, /rows still arriving for its last minutes are counted when it is next computed/);
  // Rows arriving now for the range's last seconds: the cached answer does not hold them, and says so.
  await db.pool.query(
    `INSERT INTO metrics (time, metric_type, rule_id, status, execution_time_ms)
     SELECT $1, 'RULE_EXECUTION', 'rule-0001', 'ERROR', 3000 FROM generate_series(1, 20)`,
    [new Date(to - 2000)]
  );
  const cached = await stats(range);
  assert.equal(cached.cache, 'hit');
  assert.equal(cached.count, first.count);
  assert.ok(cached.notices.includes(said!), 'the hit says which rows it holds');
});

test('a settled range, read from rollups alone, has no such notice', async () => {
  const to = Math.floor(Date.now() / HOUR) * HOUR - 4 * HOUR;
  const settled = await stats({ from: to - 3 * HOUR, to });
  assert.ok(!settled.tiers.includes('raw'), JSON.stringify(settled.tiers));
  assert.deepEqual(settled.notices, []);
});
