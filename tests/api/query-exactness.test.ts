/**
 * Over HTTP against real PostgreSQL: every kind and filter combination agrees with
 * raw-table SQL over the range the service reports it answered.
 */
import assert from 'node:assert/strict';
import { test, before, after } from 'node:test';
import { postJson, startTestService, type TestDatabase } from '../support/services';
import { historyDatabase, DAY, HOUR } from '../support/fixture';
import { rawStats, relErr, type RawStats } from '../../testkit/raw';
import { columns } from '../../testkit/runner';
import type { RunningService } from '../../server/main';

let db: TestDatabase;
let svc: RunningService;
const now = Date.now();

before(async () => {
  db = await historyDatabase();
  svc = await startTestService({ DATABASE_URL: db.url, CACHE_ENABLED: 'false' });
});
after(async () => {
  await svc?.stop();
  await db?.drop();
});

const FILTERS: Array<Record<string, string | string[]>> = [
  {},
  { metricType: ['RULE_EXECUTION', 'ENRICHMENT'] },
  { status: 'ERROR' },
  { ruleId: 'rule-0001' },
  { ruleId: ['rule-0002', 'rule-0003', 'rule-0010'] },
  { ruleCategory: 'network' },
  { parserId: 'parser-002' },
  { sourceType: ['syslog', 'dns'] },
  { metricType: 'PARSER_EXECUTION', status: ['SUCCESS', 'TIMEOUT'] },
  { ruleCategory: ['malware', 'web'], parserId: ['parser-001', 'parser-003'] },
  // "(none)": the rows without the dimension, as the group of that name holds them.
  { ruleId: '(none)' },
  { ruleCategory: ['(none)', 'network'], status: 'ERROR' },
];
const RANGES = [
  { name: '1h', from: now - HOUR, to: now },
  { name: '24h', from: now - DAY, to: now },
  { name: '8d', from: now - 8 * DAY, to: now },
  { name: '3d daily', from: now - 3 * DAY, to: now, granularity: 'daily' },
];
const COLUMN: Record<string, string> = {
  ruleId: 'rule_id',
  status: 'status',
  metricType: 'metric_type',
  ruleCategory: 'rule_category',
  parserId: 'parser_id',
  sourceType: 'source_type',
};

function assertClose(actual: Record<string, number | null>, expected: RawStats, context: string) {
  assert.equal(actual.executionCount, expected.n, `count, ${context}`);
  assert.equal(actual.errorCount, expected.errors, `errors, ${context}`);
  assert.equal(actual.maxExecutionTimeMs, expected.max, `max, ${context}`);
  assert.ok(relErr(actual.avgExecutionTimeMs, expected.sum! / expected.n) <= 1e-9, `avg, ${context}`);
  for (const p of ['p50', 'p95', 'p99'] as const) {
    const err = relErr(actual[`${p}ExecutionTimeMs`], expected[p]);
    assert.ok(
      err <= 0.01,
      `${p} ${actual[`${p}ExecutionTimeMs`]} vs ${expected[p]} (${(err * 100).toFixed(2)} %), ${context}`
    );
  }
}

async function ask(range: (typeof RANGES)[number], query: Record<string, unknown>) {
  const { status, body } = await postJson(`${svc.url}/api/v1/query`, {
    range: { from: range.from, to: range.to },
    intervalMs: 60_000,
    maxDataPoints: 1000,
    queries: [{ refId: 'A', granularity: range.granularity ?? 'auto', ...query }],
  });
  assert.equal(status, 200, JSON.stringify(body));
  const frames = body.results.A.frames;
  return { frames, meta: frames[0]?.schema.meta.custom };
}

test('stats: every filter and range equals the raw table', async () => {
  let live = 0;
  for (const range of RANGES) {
    for (const filters of FILTERS) {
      const { frames, meta } = await ask(range, { kind: 'stats', ...filters });
      if (meta.tiers.includes('raw')) {
        live++;
      }
      const exact =
        (await rawStats(db.pool, meta.coveredRange.from, meta.coveredRange.to, filters)).get('') ??
        ({ n: 0, errors: 0, max: null } as unknown as RawStats);
      const row = Object.fromEntries(Object.entries(columns(frames[0])).map(([k, v]) => [k, v[0]]));
      if (exact.n === 0) {
        assert.equal(row.executionCount, 0);
      } else {
        assertClose(row, exact, `${range.name} ${JSON.stringify(filters)} via ${meta.tiers.join('+')}`);
      }
    }
  }
  assert.ok(live > 0, 'some answers read the live edge');
});

test('timeseries grouped with a limit: the busiest groups by name, the rest as "(other)", every bucket equal to the raw table', async () => {
  for (const range of RANGES.slice(1, 3)) {
    for (const filters of [{}, { ruleCategory: 'network' }] as Array<Record<string, string>>) {
      const { frames, meta } = await ask(range, {
        kind: 'timeseries',
        groupBy: 'ruleId',
        limit: 3,
        ...filters,
        metrics: [
          'executionCount',
          'avgExecutionTimeMs',
          'p50ExecutionTimeMs',
          'p95ExecutionTimeMs',
          'p99ExecutionTimeMs',
          'maxExecutionTimeMs',
          'errorCount',
        ],
      });
      const context = `${range.name} ${JSON.stringify(filters)} via ${meta.tiers.join('+')}`;
      const totals = [...(await rawStats(db.pool, meta.coveredRange.from, meta.coveredRange.to, filters, 'rule_id'))];
      totals.sort(([a, x], [b, y]) => y.n - x.n || (a < b ? -1 : 1));
      const busiest = totals.slice(0, 3).map(([rule]) => rule);
      const others = totals.slice(3).map(([rule]) => rule);
      assert.ok(others.length > 0, `some rules are left for "(other)", ${context}`);
      const names = frames.map((f: { schema: { name: string } }) => f.schema.name);
      assert.deepEqual(names, [...[...busiest].sort(), '(other)'], `the busiest rules by executions, ${context}`);
      const exact = await rawStats(
        db.pool,
        meta.coveredRange.from,
        meta.coveredRange.to,
        filters,
        'rule_id',
        meta.bucketMs
      );
      const rest = await rawStats(
        db.pool,
        meta.coveredRange.from,
        meta.coveredRange.to,
        { ...filters, ruleId: others },
        undefined,
        meta.bucketMs
      );
      let compared = 0;
      for (const frame of frames) {
        const c = columns(frame);
        const group = frame.schema.name;
        c.time.forEach((t: number, i: number) => {
          const e = group === '(other)' ? rest.get(`${t}|`) : exact.get(`${t}|${group}`);
          const row = Object.fromEntries(Object.entries(c).map(([k, v]) => [k, v[i]]));
          if (!e) {
            return assert.equal(row.executionCount, 0);
          }
          compared++;
          assertClose(row, e, `${group} @${new Date(t).toISOString()}, ${context}`);
        });
      }
      const expected = [...exact.keys()].filter((k) => busiest.includes(k.split('|')[1])).length + rest.size;
      assert.equal(compared, expected, `every bucket of every series is answered, ${context}`);
    }
  }
});

test('timeseries grouped by each dimension: every bucket and group equals the raw table', async () => {
  for (const range of RANGES.slice(0, 3)) {
    const cases: Array<[string, Record<string, string | string[]>]> = [
      ['ruleId', { ruleCategory: 'network' }],
      ['status', {}],
      ['metricType', { status: 'ERROR' }],
      ['sourceType', {}],
      ['parserId', { ruleId: ['rule-0001', 'rule-0005'] }],
      ['status', { ruleId: 'rule-9999' }], // no such rule: no group at all
    ];
    for (const [groupBy, filters] of cases) {
      const { frames, meta } = await ask(range, {
        kind: 'timeseries',
        groupBy,
        ...filters,
        metrics: [
          'executionCount',
          'avgExecutionTimeMs',
          'p50ExecutionTimeMs',
          'p95ExecutionTimeMs',
          'p99ExecutionTimeMs',
          'maxExecutionTimeMs',
          'errorCount',
        ],
      });
      const exact = await rawStats(
        db.pool,
        meta.coveredRange.from,
        meta.coveredRange.to,
        filters,
        COLUMN[groupBy],
        meta.bucketMs
      );
      let compared = 0;
      for (const frame of frames) {
        const c = columns(frame);
        const group = frame.schema.fields[1].labels?.[groupBy];
        c.time.forEach((t: number, i: number) => {
          const e = exact.get(`${t}|${group}`);
          const row = Object.fromEntries(Object.entries(c).map(([k, v]) => [k, v[i]]));
          if (!e) {
            return assert.equal(row.executionCount, 0);
          }
          compared++;
          assertClose(row, e, `${range.name} by ${groupBy} ${group} @${new Date(t).toISOString()}`);
        });
      }
      if (exact.size === 0) {
        assert.equal(frames.length, 1, 'no group: one empty frame that carries the meta');
      }
      const expectedCells = [...exact.values()].length;
      assert.equal(
        compared,
        expectedCells,
        `every (bucket, group) of the raw table is answered, ${range.name} by ${groupBy}`
      );
    }
  }
});

test('a drill-down into the "(none)" group shows its own figures; "(other)" is no value to filter on', async () => {
  const range = RANGES[1];
  const metrics = ['executionCount', 'errorCount', 'p95ExecutionTimeMs'];
  const grouped = await ask(range, { kind: 'timeseries', groupBy: 'ruleId', limit: 50, metrics });
  const group = grouped.frames.find(
    (f: { schema: { fields: Array<{ labels?: Record<string, string> }> } }) =>
      f.schema.fields[1].labels?.ruleId === '(none)'
  );
  assert.ok(group, 'parsers\' rows have no rule: a "(none)" series');
  const drilled = await ask(range, { kind: 'timeseries', ruleId: '(none)', metrics });
  assert.deepEqual(drilled.meta.coveredRange, grouped.meta.coveredRange);
  assert.deepEqual(columns(drilled.frames[0]), columns(group), 'the same figures, bucket by bucket');
  const { rows } = await db.pool.query(
    'SELECT count(*)::int AS n FROM metrics WHERE time >= $1 AND time < $2 AND rule_id IS NULL',
    [new Date(drilled.meta.coveredRange.from), new Date(drilled.meta.coveredRange.to)]
  );
  const total = columns(drilled.frames[0]).executionCount.reduce((a: number, b: number) => a + b, 0);
  assert.equal(total, rows[0].n);
  assert.ok(total > 0);
  // Top rules reads rules only: rows without a rule are none of them.
  const top = await ask(range, { kind: 'topRules', ruleId: '(none)' });
  assert.equal(columns(top.frames[0]).ruleId.length, 0);
  const other = await postJson(`${svc.url}/api/v1/query`, {
    range: { from: range.from, to: range.to },
    queries: [{ refId: 'A', kind: 'stats', ruleId: ['rule-0001', '(other)'] }],
  });
  assert.equal(other.status, 400);
  assert.match(JSON.stringify(other.body), /ruleId.*not a value: filter on the values themselves/);
});

test('a filter value the service does not know, in an answer that matched nothing, is named in a notice, with the spelling it knows', async () => {
  const range = RANGES[1];
  const notices = async (query: Record<string, unknown>) => {
    const { frames } = await ask(range, { kind: 'stats', ...query });
    return (frames[0].schema.meta.notices ?? [])
      .filter((n: { severity: string }) => n.severity === 'warning')
      .map((n: { text: string }) => n.text);
  };
  assert.deepEqual(await notices({ metricType: 'rule_execution' }), [
    'Nothing matched metricType "rule_execution": it is no metric type the service knows (values are case-sensitive: did you mean "RULE_EXECUTION"?).',
  ]);
  assert.deepEqual(await notices({ ruleId: ['rule-9999', ' rule-0001'] }), [
    'Nothing matched ruleId " rule-0001": it is no rule the service knows (spaces count: did you mean "rule-0001"?).',
    'Nothing matched ruleId "rule-9999": it is no rule the service knows.',
  ]);
  // A rule's name where its id goes: the id it names.
  const { rows } = await db.pool.query(`SELECT rule_name FROM rules WHERE rule_id = 'rule-0003'`);
  assert.deepEqual(await notices({ ruleId: rows[0].rule_name }), [
    `Nothing matched ruleId ${JSON.stringify(rows[0].rule_name)}: it is no rule the service knows (it is the name of rule "rule-0003": filters take ids, as the variables list them).`,
  ]);
  // Known values that matched nothing together, and answers that matched something: no such notice.
  assert.deepEqual(await notices({ ruleId: 'rule-0001', parserId: 'parser-002', metricType: 'ENRICHMENT' }), []);
  assert.deepEqual(await notices({ ruleId: 'rule-0001' }), []);
  assert.deepEqual(await notices({ ruleId: '(none)' }), []);
  // Top rules and timeseries say it too.
  const top = await ask(range, { kind: 'topRules', ruleCategory: 'Network' });
  assert.match(JSON.stringify(top.frames[0].schema.meta.notices), /did you mean \\"network\\"/);
  const series = await ask(range, { kind: 'timeseries', metrics: ['p95ExecutionTimeMs'], sourceType: 'DNS' });
  assert.match(JSON.stringify(series.frames[0].schema.meta.notices), /no source type the service knows/);
});

test('a value only raw rows hold yet (a late row not refreshed, or the last minutes) is known: no "unknown" notice', async () => {
  // Both rows after the rollups' last refresh: one two days back (a late row, pending), one a minute ago.
  await db.pool.query(
    `INSERT INTO metrics (time, metric_type, rule_id, parser_id, rule_category, source_type, status, execution_time_ms, records_processed, records_failed)
     VALUES (now() - interval '2 days', 'RULE_EXECUTION', 'rule-0001', 'parser-001', 'ransomware', 'syslog', 'SUCCESS', 5, 1, 0),
            (now() - interval '1 minute', 'RULE_EXECUTION', 'rule-0001', 'parser-001', 'network', 's3', 'SUCCESS', 5, 1, 0)`
  );
  try {
    // A range holding neither row: nothing matched, and each value is one the data holds.
    const range = { name: 'old', from: now - 8 * DAY, to: now - 7 * DAY };
    for (const filter of [{ ruleCategory: 'ransomware' }, { sourceType: 's3' }]) {
      const { frames } = await ask(range, { kind: 'stats', ...filter });
      assert.equal(frames[0].data.values[0][0], 0, 'the fixture: nothing in that range');
      const warnings = (frames[0].schema.meta.notices ?? []).filter(
        (n: { severity: string }) => n.severity === 'warning'
      );
      assert.deepEqual(warnings, [], JSON.stringify(filter));
    }
    const { frames } = await ask(range, { kind: 'stats', ruleCategory: 'ransomwares' });
    assert.match(
      JSON.stringify(frames[0].schema.meta.notices),
      /it is no category the service knows/,
      'a value nowhere still is'
    );
  } finally {
    await db.pool.query(`DELETE FROM metrics WHERE rule_category = 'ransomware' OR source_type = 's3'`);
  }
});

test('topRules: the slowest rules by p95, with names and categories, each exact', async () => {
  for (const range of [RANGES[1], RANGES[2]]) {
    const { frames, meta } = await ask(range, { kind: 'topRules', limit: 10 });
    const c = columns(frames[0]);
    assert.equal(c.ruleId.length, 10);
    const exact = await rawStats(db.pool, meta.coveredRange.from, meta.coveredRange.to, {}, 'rule_id');
    exact.delete('(none)');
    const { rows: names } = await db.pool.query('SELECT rule_id, rule_name, rule_category FROM rules');
    const byId = new Map(names.map((r) => [r.rule_id, r]));
    c.ruleId.forEach((id: string, i: number) => {
      assert.equal(c.ruleName[i], byId.get(id).rule_name);
      assert.equal(c.ruleCategory[i], byId.get(id).rule_category);
      assertClose(
        Object.fromEntries(Object.entries(c).map(([k, v]) => [k, v[i]])) as Record<string, number>,
        exact.get(id)!,
        `rule ${id}`
      );
      if (i > 0) {
        assert.ok(c.p95ExecutionTimeMs[i] <= c.p95ExecutionTimeMs[i - 1], 'sorted by p95, slowest first');
      }
    });
    // No rule left out is clearly slower than the slowest one shown (1 % sketch tolerance each way).
    const cutoff = Math.min(...c.ruleId.map((id: string) => exact.get(id)!.p95!));
    for (const [id, e] of exact) {
      if (!c.ruleId.includes(id)) {
        assert.ok(e.p95! <= cutoff * 1.02, `${id} (p95 ${e.p95}) should be in the top 10 (cutoff ${cutoff})`);
      }
    }
  }
});

test('errorBreakdown: error and timeout counts per group are exact, most errors first', async () => {
  for (const groupBy of ['ruleCategory', 'parserId', 'ruleId']) {
    const { frames, meta } = await ask(RANGES[1], { kind: 'errorBreakdown', groupBy, limit: 1000 });
    const c = columns(frames[0]);
    const exact = await rawStats(db.pool, meta.coveredRange.from, meta.coveredRange.to, {}, COLUMN[groupBy]);
    assert.equal(c[groupBy].length, exact.size);
    c[groupBy].forEach((g: string, i: number) => {
      assert.equal(c.executionCount[i], exact.get(g)!.n);
      assert.equal(c.errorCount[i], exact.get(g)!.errors);
      assert.equal(c.timeoutCount[i], exact.get(g)!.timeouts);
      if (i > 0) {
        assert.ok(c.errorCount[i] + c.timeoutCount[i] <= c.errorCount[i - 1] + c.timeoutCount[i - 1]);
      }
    });
    if (groupBy === 'ruleId') {
      assert.ok(
        c.name.some((n: string | null) => n && n.length > 0),
        'rule names included'
      );
    }
  }
});

test('the live edge: a row inserted now appears at once in an uncached answer', async () => {
  const before = await ask(RANGES[0], { kind: 'stats', ruleId: 'live-rule' });
  assert.equal(columns(before.frames[0]).executionCount[0], 0);
  await db.pool.query(
    `INSERT INTO metrics (time, metric_type, rule_id, status, execution_time_ms) VALUES (now(), 'RULE_EXECUTION', 'live-rule', 'SUCCESS', 12.5)`
  );
  // Asked up to now: the row was stamped after the test started.
  const after = await ask(
    { name: 'now', from: Date.now() - HOUR, to: Date.now() },
    { kind: 'stats', ruleId: 'live-rule' }
  );
  assert.equal(columns(after.frames[0]).executionCount[0], 1);
  assert.equal(columns(after.frames[0]).p50ExecutionTimeMs[0], 12.5);
  assert.ok(after.meta.tiers.includes('raw'));
});

test('every frame carries meta: tiers, covered range, watermark, cache status and the executed SQL', async () => {
  // A range ending now, asked now (the file's ranges may have settled by this test), and not in
  // the last seconds of a minute, where the covered end would be within a second of the asked one.
  let t = Date.now();
  if (t % 60_000 > 57_000) {
    t -= 3_000;
  }
  const asked = { ...RANGES[2], from: t - (RANGES[2].to - RANGES[2].from), to: t };
  const { frames, meta } = await ask(asked, { kind: 'stats' });
  assert.equal(meta.tiers[0], 'daily_total');
  assert.equal(meta.tiers[meta.tiers.length - 1], 'raw', 'the live edge after the watermark');
  assert.ok(
    Math.abs(meta.coveredRange.from - asked.from) < 60_000 && meta.coveredRange.to - asked.to < 60_000,
    'the asked range, to the minute'
  );
  assert.equal(
    meta.coveredRange.to - meta.coveredRange.from,
    Math.ceil(asked.to / 60_000) * 60_000 - Math.ceil(asked.from / 60_000) * 60_000
  );
  assert.equal(meta.cache, 'bypass');
  assert.ok(meta.watermark > now - 2 * DAY && meta.watermark <= now);
  assert.ok(meta.computedAt >= now);
  assert.match(frames[0].schema.meta.executedQueryString, /FROM "metrics_daily_total"/);
  assert.match(frames[0].schema.meta.executedQueryString, /-- \$1 = /);
  const notice = frames[0].schema.meta.notices.find((n: { text: string }) => /whole minutes/.test(n.text));
  assert.ok(notice, 'a notice says the range was read to the minute');
});

test('a short range ending now is covered to within a sixtieth of its span, not moved a whole minute', async () => {
  const t = Date.now();
  // A row every 5 s over the last 65 s: moved to whole minutes, up to 55 s of them fell out.
  await db.pool.query(
    `INSERT INTO metrics (time, metric_type, rule_id, status, execution_time_ms)
     SELECT to_timestamp(($1::bigint - s * 1000) / 1000.0), 'RULE_EXECUTION', 'short-range', 'SUCCESS', 3
       FROM generate_series(5, 65, 5) s`,
    [t]
  );
  const asked = { name: '70s', from: t - 70_000, to: t };
  const { frames, meta } = await ask(asked, { kind: 'stats', ruleId: 'short-range' });
  assert.ok(
    meta.coveredRange.from - asked.from < 1000 && meta.coveredRange.to - asked.to < 1000,
    `covered ${JSON.stringify(meta.coveredRange)} for ${asked.from}–${asked.to}: within a second`
  );
  assert.equal(columns(frames[0]).executionCount[0], 13, 'every row of the asked range');
  if (meta.coveredRange.from !== asked.from) {
    const notices = frames[0].schema.meta.notices.map((n: { text: string }) => n.text).join(' ');
    assert.match(notices, /a range ending now or later, or given relative to now, is read in whole seconds/);
  }
  const quarter = await ask({ name: '15m', from: t - 15 * 60_000, to: t }, { kind: 'stats' });
  assert.equal(quarter.meta.coveredRange.to % 15_000, 0, 'a 15-minute range: to 15 s');
  assert.ok(quarter.meta.coveredRange.to - t < 15_000);
});

test('a range on whole minutes is answered exactly as asked, without a notice', async () => {
  const to = Math.floor(now / 60_000) * 60_000 - 3 * HOUR;
  const { frames, meta } = await ask({ name: 'whole', from: to - 2 * DAY - 17 * 60_000, to }, { kind: 'stats' });
  assert.deepEqual(meta.coveredRange, { from: to - 2 * DAY - 17 * 60_000, to });
  assert.ok(
    !(frames[0].schema.meta.notices ?? []).some((n: { text: string }) => /whole minutes/.test(n.text)),
    'no range notice'
  );
});

test('a rule actually named "(other)" is never a named series: it is in the rest, so no two series share that label', async () => {
  const from = Math.floor(now / HOUR) * HOUR - 30 * HOUR;
  const range = { name: 'literal (other)', from, to: from + HOUR };
  // The busiest rule of that hour.
  await db.pool.query(
    `INSERT INTO metrics (time, metric_type, rule_id, status, execution_time_ms)
     SELECT to_timestamp(($1::bigint + s * 1000) / 1000.0), 'RULE_EXECUTION', '(other)', 'SUCCESS', 4
       FROM generate_series(1, 900) s`,
    [from]
  );
  const { frames, meta } = await ask(range, {
    kind: 'timeseries',
    groupBy: 'ruleId',
    limit: 2,
    metrics: ['executionCount'],
  });
  const names = frames.map((f: { schema: { name: string } }) => f.schema.name);
  assert.equal(names.filter((n: string) => n === '(other)').length, 1, JSON.stringify(names));
  const totals = await rawStats(db.pool, meta.coveredRange.from, meta.coveredRange.to, {}, 'rule_id');
  const named = names.filter((n: string) => n !== '(other)');
  const busiest = [...totals]
    .filter(([rule]) => rule !== '(other)')
    .sort(([a, x], [b, y]) => y.n - x.n || (a < b ? -1 : 1));
  assert.deepEqual(
    named,
    busiest
      .slice(0, 2)
      .map(([rule]) => rule)
      .sort()
  );
  const sum = (name: string) =>
    columns(frames.find((f: { schema: { name: string } }) => f.schema.name === name)).executionCount.reduce(
      (a: number, b: number | null) => a + (b ?? 0),
      0
    );
  const rest = [...totals].filter(([rule]) => !named.includes(rule)).reduce((a, [, s]) => a + s.n, 0);
  assert.equal(sum('(other)'), rest, 'the rest, the rule named "(other)" in it');
});
