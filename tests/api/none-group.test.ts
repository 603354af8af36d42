/**
 * "(none)" names the group of rows without a value of the grouped dimension (a parser's rows
 * grouped by rule) — and of any value spelled "(none)", which the grouping puts there too. As a
 * filter value it keeps exactly that group's rows, so a drill-down from it shows its figures,
 * from the rollups and from raw rows alike.
 */
import assert from 'node:assert/strict';
import { test, before, after } from 'node:test';
import { freshDatabase, postJson, startTestService, type TestDatabase } from '../support/services';
import { refreshRollups } from '../../server/db/refresh';
import type { RunningService } from '../../server/main';

const HOUR = 3_600_000;
let db: TestDatabase;
let svc: RunningService;
const settledHour = Math.floor(Date.now() / HOUR) * HOUR - 5 * HOUR;

before(async () => {
  db = await freshDatabase();
  // In one settled hour: 3 rows without a source type, 2 spelled "(none)", 4 of syslog, one of
  // each a minute apart from second 45 on: the first minute's are read from raw rows when the
  // range starts at second 30, the others from the minute rollups.
  const rows: Array<[string | null, number]> = [
    [null, 3],
    ['(none)', 2],
    ['syslog', 4],
  ];
  for (const [sourceType, n] of rows) {
    await db.pool.query(
      `INSERT INTO metrics (time, metric_type, parser_id, source_type, status, execution_time_ms)
       SELECT $1::timestamptz + interval '45 seconds' + (g - 1) * interval '1 minute', 'PARSER_EXECUTION', 'p-1', $2, 'ERROR', 10 * g FROM generate_series(1, $3) g`,
      [new Date(settledHour), sourceType, n]
    );
  }
  await refreshRollups(db.pool, 'postgres', { until: new Date(settledHour + 2 * HOUR) });
  svc = await startTestService({ DATABASE_URL: db.url, CACHE_ENABLED: 'false' });
});
after(async () => {
  await svc?.stop();
  await db?.drop();
});

/** The column `name` of the query's first frame. */
async function ask(query: Record<string, unknown>, range: { from: number; to: number }) {
  const { status, body } = await postJson(`${svc.url}/api/v1/query`, { range, queries: [{ refId: 'A', ...query }] });
  assert.equal(status, 200, JSON.stringify(body));
  const frame = body.results.A.frames[0];
  const column = (name: string) =>
    frame.data.values[frame.schema.fields.findIndex((f: { name: string }) => f.name === name)];
  return Object.assign(column, { tiers: frame.schema.meta.custom.tiers as string[] });
}

for (const [source, range] of [
  ['the rollups', { from: settledHour, to: settledHour + HOUR }],
  ['raw rows (minutes inside the hour)', { from: settledHour + 30_000, to: settledHour + HOUR - 30_000 }],
] as const) {
  test(`a drill-down into "(none)" counts what the group counts, read from ${source}`, async () => {
    const breakdown = await ask({ kind: 'errorBreakdown', groupBy: 'sourceType' }, range);
    const none = breakdown('errorCount')[breakdown('sourceType').indexOf('(none)')];
    assert.equal(none, 5, 'the group: 3 without a source type and 2 spelled "(none)"');
    const drilled = await ask({ kind: 'stats', sourceType: '(none)' }, range);
    assert.equal(drilled.tiers.includes('raw'), source.startsWith('raw'), `read ${drilled.tiers.join('+')}`);
    assert.equal(drilled('executionCount')[0], none);
    const both = await ask({ kind: 'stats', sourceType: ['(none)', 'syslog'] }, range);
    assert.equal(both('executionCount')[0], 9);
  });
}

test('a value in the data but in no list (no parsers registered here) is not named unknown; one in neither is', async () => {
  // An hour before any row: nothing matches either way.
  const empty = { from: settledHour - 3 * HOUR, to: settledHour - 2 * HOUR };
  const noticesOf = async (query: Record<string, unknown>) => {
    const { body } = await postJson(`${svc.url}/api/v1/query`, { range: empty, queries: [{ refId: 'A', ...query }] });
    return JSON.stringify(body.results.A.frames[0].schema.meta.notices ?? []);
  };
  assert.doesNotMatch(await noticesOf({ kind: 'stats', parserId: 'p-1', sourceType: 'syslog' }), /Nothing matched/);
  assert.match(
    await noticesOf({ kind: 'stats', parserId: 'P-1' }),
    /Nothing matched parserId \\"P-1\\": it is no parser/
  );
});
