/**
 * What one request can make the service send: the statement once per query (not once per
 * series), long filter lists shortened in it, and requests of too many series refused before
 * any work. A 96 KB request grouped by rule once drew a 59 MB answer, and 50 small grouped
 * queries 79 MB: each of hundreds of frames repeated the SQL with every filter value.
 */
import assert from 'node:assert/strict';
import { test, before, after } from 'node:test';
import { postJson, startTestService, type TestDatabase } from '../support/services';
import { historyDatabase, HOUR } from '../support/fixture';
import type { RunningService } from '../../server/main';

let db: TestDatabase;
let svc: RunningService;

before(async () => {
  db = await historyDatabase({ days: 1, rowsPerHour: 400 });
  svc = await startTestService({ DATABASE_URL: db.url, CACHE_ENABLED: 'false' });
});
after(async () => {
  await svc?.stop();
  await db?.drop();
});

const hour = Math.floor(Date.now() / HOUR) * HOUR - 6 * HOUR;
const range = { from: hour - 12 * HOUR, to: hour };

test('a grouped answer carries its statement on its first frame only, its notices and meta on every frame', async () => {
  const r = await postJson(`${svc.url}/api/v1/query`, {
    range,
    maxDataPoints: 12,
    queries: [{ refId: 'A', kind: 'timeseries', groupBy: 'ruleId', limit: 1000, metrics: ['executionCount'] }],
  });
  assert.equal(r.status, 200, JSON.stringify(r.body).slice(0, 300));
  const frames = r.body.results.A.frames;
  assert.ok(frames.length > 10, `one frame per rule: ${frames.length}`);
  assert.match(frames[0].schema.meta.executedQueryString, /FROM/);
  for (const frame of frames.slice(1)) {
    assert.equal(frame.schema.meta.executedQueryString, undefined, frame.schema.name);
    assert.deepEqual(frame.schema.meta.notices, frames[0].schema.meta.notices);
    assert.deepEqual(frame.schema.meta.custom, frames[0].schema.meta.custom);
    assert.equal(frame.schema.refId, 'A');
  }
});

test('long filter lists are shown shortened in the statement: the answer stays smaller than the request', async () => {
  const { rows } = await db.pool.query('SELECT DISTINCT parser_id FROM metrics WHERE parser_id IS NOT NULL');
  const made = Array.from({ length: 480 }, (_, i) => `made-up-parser-${i}-${'x'.repeat(170)}`);
  const parserId = [...rows.map((r) => r.parser_id as string), ...made];
  const body = {
    range,
    maxDataPoints: 1,
    queries: [
      { refId: 'A', kind: 'timeseries', groupBy: 'ruleId', limit: 1000, metrics: ['executionCount'], parserId },
    ],
  };
  const r = await postJson(`${svc.url}/api/v1/query`, body);
  assert.equal(r.status, 200, JSON.stringify(r.body).slice(0, 300));
  const sent = Buffer.byteLength(JSON.stringify(body));
  const received = Buffer.byteLength(JSON.stringify(r.body));
  assert.ok(received < sent, `answer ${received} bytes for a request of ${sent}`);
  const sql: string = r.body.results.A.frames[0].schema.meta.executedQueryString;
  assert.match(sql, new RegExp(`, …\\] \\(${parserId.length} values\\)`));
  const shown = [...sql.matchAll(/"(made-up-parser-[^"]+)"/g)].map((m) => m[1]);
  const lists = sql.split(`(${parserId.length} values)`).length - 1;
  assert.ok(shown.length >= 1 && shown.length <= 20 * lists, `${shown.length} values shown in ${lists} lists`);
  assert.ok(
    shown.every((v) => parserId.includes(v)),
    'the values shown are values sent'
  );
});

test('a request of more series than the budget allows is refused before any work, naming the limit', async () => {
  const queries = ['A', 'B', 'C'].map((refId) => ({
    refId,
    kind: 'timeseries',
    groupBy: 'ruleId',
    limit: 1000,
    metrics: ['executionCount'],
  }));
  const r = await postJson(`${svc.url}/api/v1/query`, { range, maxDataPoints: 1, queries });
  assert.equal(r.status, 400, JSON.stringify(r.body).slice(0, 300));
  assert.match(r.body.error, /3,003 series \(limit 2,002\)/);
  assert.match(r.body.details[0].message, /1,001 series/);
  // Two such queries are within it.
  const two = await postJson(`${svc.url}/api/v1/query`, { range, maxDataPoints: 1, queries: queries.slice(0, 2) });
  assert.equal(two.status, 200, JSON.stringify(two.body).slice(0, 300));
});
