/**
 * `compactTime` (what the plugin asks): time columns come as start, step and count, and
 * expanded they are exactly the answer a client without it gets — on a miss, a hit from the
 * near cache, a request of several queries and an answer large enough to be built in turns.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { expandTimeColumns, type DataFrameJSON } from '../../server/contract';
import { MANY_VALUES } from '../../server/query/executor';
import { postJson, startTestService, type TestDatabase } from '../support/services';
import { historyDatabase, HOUR } from '../support/fixture';
import type { RunningService } from '../../server/main';

let db: TestDatabase;
let svc: RunningService;

before(async () => {
  db = await historyDatabase({ days: 3, rowsPerHour: 300 });
  svc = await startTestService({ DATABASE_URL: db.url });
});
after(async () => {
  await svc?.stop();
  await db?.drop();
});

const query = (body: unknown) => postJson(`${svc.url}/api/v1/query`, body);
/** A frame as a client compares it: meta.custom.cache differs between the two requests by design. */
const comparable = (f: DataFrameJSON) => ({
  ...f,
  schema: { ...f.schema, meta: { ...f.schema.meta, custom: { ...f.schema.meta!.custom!, cache: 'any' as const } } },
});
const framesOf = (body: any, refId = 'A'): DataFrameJSON[] => body.results[refId].frames;

test('a timeseries: its time column as steps, the rest as sent; expanded, the plain answer, on a miss and on a hit', async () => {
  const now = Date.now();
  const range = { from: now - 24 * HOUR, to: now };
  const queries = [{ refId: 'A', kind: 'timeseries', metrics: ['p95ExecutionTimeMs', 'executionCount'] }];
  const compact = await query({ range, maxDataPoints: 500, compactTime: true, queries });
  assert.equal(compact.status, 200, JSON.stringify(compact.body));
  const [frame] = framesOf(compact.body);
  assert.equal(frame.schema.meta!.custom!.cache, 'miss');
  const step = frame.data.steps![0]!;
  assert.deepEqual(frame.data.values[0], []);
  assert.equal(step.step, frame.schema.meta!.custom!.bucketMs);
  assert.equal(step.count, frame.data.values[1].length);
  assert.ok(step.count > 200, `${step.count} points`);
  assert.deepEqual(frame.data.steps!.slice(1), [null, null]);

  const plain = await query({ range, maxDataPoints: 500, queries });
  const [plainFrame] = framesOf(plain.body);
  assert.equal(plainFrame.schema.meta!.custom!.cache, 'hit', 'the same cache entry serves both');
  assert.equal(plainFrame.data.steps, undefined);
  assert.deepEqual(comparable(expandTimeColumns(frame)), comparable(plainFrame));

  const nearHits = async () => (await fetch(`${svc.url}/api/v1/cache/stats`)).json() as Promise<{ nearHits: number }>;
  const nearBefore = (await nearHits()).nearHits;
  const again = await query({ range, maxDataPoints: 500, compactTime: true, queries });
  assert.equal((await nearHits()).nearHits, nearBefore + 1, 'answered from the near cache (the path without a turn)');
  assert.equal(framesOf(again.body)[0].schema.meta!.custom!.cache, 'hit');
  assert.deepEqual(comparable(expandTimeColumns(framesOf(again.body)[0])), comparable(plainFrame));
  assert.ok(JSON.stringify(again.body).length < JSON.stringify(plain.body).length - 10 * step.count);
});

test('several queries: every grouped series compacted, a stats frame without a time column as it was', async () => {
  const now = Date.now();
  const body = (compactTime: boolean) => ({
    range: { from: now - 48 * HOUR, to: now - HOUR },
    maxDataPoints: 100,
    ...(compactTime ? { compactTime } : {}),
    queries: [
      { refId: 'S', kind: 'timeseries', groupBy: 'ruleCategory', metrics: ['errorRate'] },
      { refId: 'T', kind: 'stats' },
    ],
  });
  const compact = await query(body(true));
  const plain = await query(body(false));
  assert.equal(compact.status, 200);
  const series = framesOf(compact.body, 'S');
  assert.ok(series.length > 1, `${series.length} series`);
  assert.ok(series.every((f) => f.data.steps?.[0] && f.data.values[0].length === 0));
  assert.deepEqual(series.map(expandTimeColumns).map(comparable), framesOf(plain.body, 'S').map(comparable));
  assert.equal(framesOf(compact.body, 'T')[0].data.steps, undefined);
  assert.deepEqual(framesOf(compact.body, 'T').map(comparable), framesOf(plain.body, 'T').map(comparable));
});

test('an answer large enough to be rendered in turns is compacted too', async () => {
  // Whole hours: the covered range is the asked one, so no notice tells the renderings apart.
  const end = Math.floor(Date.now() / HOUR) * HOUR;
  const body = (compactTime: boolean) => ({
    range: { from: end - 3 * 24 * HOUR, to: end },
    maxDataPoints: 1000,
    ...(compactTime ? { compactTime } : {}),
    queries: [
      { refId: 'A', kind: 'timeseries', groupBy: 'ruleId', limit: 50, metrics: ['executionCount', 'errorRate'] },
    ],
  });
  const compact = await query(body(true));
  assert.equal(compact.status, 200, JSON.stringify(compact.body).slice(0, 300));
  const frames = framesOf(compact.body);
  const values = frames.reduce(
    (n, f) => n + f.data.values.reduce((m, c) => m + c.length, 0) + f.data.steps![0]!.count,
    0
  );
  assert.ok(values > MANY_VALUES, `${values} values`);
  assert.equal(frames[0].schema.meta!.custom!.cache, 'miss');
  // Then hits, alternately plain and compact: one cache status, so only compactTime tells the renderings apart.
  for (const compactTime of [false, true, false, true]) {
    const reply = await query(body(compactTime));
    const got = framesOf(reply.body);
    assert.ok(got.every((f) => f.schema.meta!.custom!.cache === 'hit'));
    assert.ok(
      got.every((f) => (f.data.steps !== undefined) === compactTime),
      `compactTime ${compactTime}`
    );
    assert.deepEqual(got.map(expandTimeColumns).map(comparable), frames.map(expandTimeColumns).map(comparable));
  }
});
