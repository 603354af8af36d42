/** The benchmark's building blocks: percentiles, the load model, the ADR key replay, the report writer. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { medianOfRuns, percentile, summarize } from '../../bench/lib/stats';
import { refreshSchedule, userFilters, dashboardRequests, adrKey, simulatedHitRate } from '../../testkit/load-model';
import { table, writeResults, latencyChart, ms } from '../../bench/lib/report';

test('percentiles are nearest-rank: a value the samples took', () => {
  const xs = Array.from({ length: 100 }, (_, i) => i + 1);
  assert.equal(percentile(xs, 0.5), 50);
  assert.equal(percentile(xs, 0.95), 95);
  assert.equal(percentile(xs, 0.99), 99);
  assert.equal(percentile([7], 0.99), 7);
  const s = summarize([5, 1, 4, 2, 3]);
  assert.deepEqual([s.n, s.p50, s.max, s.mean], [5, 3, 5, 3]);
  assert.ok(Number.isNaN(summarize([]).p95));
});

test('the schedule: every user refreshes every period, offsets spread, in time order', () => {
  const s = refreshSchedule(100, 5000, 20_000);
  assert.equal(s.length, 400);
  assert.deepEqual(
    s.filter((r) => r.user === 7).map((r) => r.at),
    [350, 5350, 10350, 15350]
  );
  assert.ok(s.every((r, i) => i === 0 || s[i - 1].at <= r.at));
});

test('a dashboard refresh: one request per panel, ranges ending now, filters applied', () => {
  const panels = [
    {
      query: { refId: 'A', kind: 'stats' as const, granularity: 'auto' as const },
      spanMs: 86_400_000,
      maxDataPoints: 1000,
    },
    { query: { refId: 'B', kind: 'timeseries' as const, granularity: 'auto' as const }, spanMs: 86_400_000 },
  ];
  const reqs = dashboardRequests(panels, 1_000_000_000_000, userFilters(3, ['web', 'dns']));
  assert.equal(reqs.length, 2);
  assert.deepEqual(reqs[0].range, { from: 1_000_000_000_000 - 86_400_000, to: 1_000_000_000_000 });
  assert.equal(reqs[0].queries[0].ruleCategory, 'web');
  assert.deepEqual(userFilters(0, ['web']), {});
});

test("the ADR's millisecond keys: a moving clock never hits; shared keys across panels collide", () => {
  const req = (to: number, kind = 'stats', metrics?: string[]) => ({
    range: { from: to - 1000, to },
    queries: [{ refId: 'A', kind: kind as 'stats', metrics: metrics as never }],
  });
  const stream = [0, 5000, 10000].map((at) => ({
    at,
    key: adrKey(req(1e12 + at)),
    question: JSON.stringify(req(1e12 + at)),
  }));
  assert.deepEqual(simulatedHitRate(stream, 60_000), { hitRate: 0, collisionRate: 0 });
  const a = req(1e12, 'timeseries', ['p95ExecutionTimeMs']);
  const b = req(1e12, 'timeseries', ['executionCount']);
  const same = [a, a, b].map((r, i) => ({ at: i, key: adrKey(r), question: JSON.stringify(r) }));
  const r = simulatedHitRate(same, 60_000);
  assert.ok(Math.abs(r.hitRate - 1 / 3) < 1e-9 && Math.abs(r.collisionRate - 1 / 3) < 1e-9);
});

test('the report: aligned markdown tables, results files, an SVG chart', () => {
  const t = table(
    ['a', 'bb'],
    [
      ['1', 'x'],
      ['22', 'yyy'],
    ]
  );
  assert.deepEqual(t.split('\n'), ['| a  | bb  |', '|----|-----|', '| 1  | x   |', '| 22 | yyy |']);
  assert.equal(ms(0.456), '0.46ms');
  assert.equal(ms(1234.4), '1,234ms');
  const dir = mkdtempSync(join(tmpdir(), 'bench-'));
  const files = writeResults(dir, 'day', '# hi\n', { x: 1 });
  assert.equal(readFileSync(files.md, 'utf8'), '# hi\n');
  assert.deepEqual(JSON.parse(readFileSync(files.json, 'utf8')), { x: 1 });
  const svg = latencyChart(
    [
      {
        name: 'raw',
        points: [
          [1e6, 300],
          [1e7, 3000],
        ],
      },
    ],
    'title'
  );
  assert.match(svg, /^<svg/);
  assert.equal((svg.match(/<circle/g) ?? []).length, 2);
});

test("medianOfRuns quotes the median of each run's percentiles, not a pooled percentile", () => {
  const runs = [summarize([1, 2, 3, 100]), summarize([1, 2, 3, 4]), summarize([2, 3, 4, 5])];
  const m = medianOfRuns(runs);
  assert.equal(m.n, 12);
  assert.equal(m.p95, 5, 'one slow run does not set the figure');
  assert.equal(m.max, 5);
  assert.equal(m.p50, 2);
  assert.equal(summarize(runs.flatMap(() => [1, 2, 3, 100, 1, 2, 3, 4, 2, 3, 4, 5])).p95, 100, 'pooling would have');
});
