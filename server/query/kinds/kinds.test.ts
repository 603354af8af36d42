/** Each kind's frames from result rows, without a database. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { NormalizedQuery } from '../normalize';
import { KINDS } from '.';
import { candidatesStatement, chooseCandidates, phaseOnePieces, rankTopRules, worthSplitting } from './top-rules';
import { normalized, rollup } from '../testing';

const M = 60_000;
const base = (over: Partial<NormalizedQuery>): NormalizedQuery => normalized({ range: { from: 0, to: 0 }, ...over });
const row = (n: number, over: Record<string, unknown> = {}) => ({
  execution_count: n,
  exec_time_sum: 10 * n,
  exec_time_min: 1,
  exec_time_max: 50,
  records_processed: 3 * n,
  records_failed: 0,
  error_count: 1,
  success_count: n - 1,
  timeout_count: 0,
  p50: 8,
  p95: 40,
  p99: 60,
  ...over,
});

test('stats: averages are sum / count, percentiles clamped to the exact extremes, an empty range is zeros and nulls', () => {
  const q = base({ range: { from: 0, to: 10 * M } });
  const [frame] = KINDS.stats.frames(q, [row(4, { p50: 0.5, p95: 40, p99: 99 })], 0);
  const c = Object.fromEntries(frame.schema.fields.map((f, i) => [f.name, frame.data.values[i][0]]));
  assert.deepEqual(
    [c.executionCount, c.avgExecutionTimeMs, c.p50ExecutionTimeMs, c.p99ExecutionTimeMs, c.errorRate],
    [4, 10, 1, 50, 0.25]
  );
  const [empty] = KINDS.stats.frames(q, [], 0);
  const e = Object.fromEntries(empty.schema.fields.map((f, i) => [f.name, empty.data.values[i][0]]));
  assert.deepEqual([e.executionCount, e.avgExecutionTimeMs, e.p95ExecutionTimeMs, e.errorRate], [0, null, null, null]);
});

test('timeseries: a point per bucket; partial buckets at the ends and at the live edge count their own seconds', () => {
  // Covered 00:01:30–00:06:00 in 2-minute buckets, computed at 00:05:00.
  const q = base({
    kind: 'timeseries',
    metrics: ['executionCount', 'throughputPerSecond'],
    range: { from: 1.5 * M, to: 6 * M },
    bucketMs: 2 * M,
  });
  const rows = [
    { bucket: new Date(0), grp: '', ...row(30) },
    { bucket: new Date(2 * M), grp: '', ...row(120) },
    { bucket: new Date(4 * M), grp: '', ...row(60) },
  ];
  const [frame] = KINDS.timeseries.frames(q, rows, 5 * M);
  assert.deepEqual(frame.data.values[0], [0, 2 * M, 4 * M]);
  assert.deepEqual(frame.data.values[1], [30, 120, 60]);
  assert.deepEqual(frame.data.values[2], [30 / 30, 120 / 120, 60 / 60], '30 s, 120 s and 60 s covered');
  const [later] = KINDS.timeseries.frames({ ...q, range: { from: 1.5 * M, to: 8 * M } }, rows, 5 * M);
  assert.deepEqual(later.data.values[1], [30, 120, 60, null], 'a bucket in the future has no count (not 0) yet');
  assert.deepEqual(later.data.values[2], [1, 1, 1, null], 'a bucket in the future has no throughput yet');
  // Rows dated ahead of when the answer was computed (a fast clock): counted, and their
  // throughput over the bucket's span (it was null beside a count).
  const [ahead] = KINDS.timeseries.frames(
    { ...q, range: { from: 1.5 * M, to: 8 * M } },
    [...rows, { bucket: new Date(6 * M), grp: '', ...row(240) }],
    5 * M
  );
  assert.deepEqual(ahead.data.values[1], [30, 120, 60, 240]);
  assert.deepEqual(ahead.data.values[2], [1, 1, 1, 2], '240 rows over its 120 s');
  // A first bucket begun before the answer was computed, its part in the range after it.
  const [straddling] = KINDS.timeseries.frames(
    { ...q, range: { from: 3 * M, to: 8 * M } },
    [
      { bucket: new Date(2 * M), grp: '', ...row(60) },
      { bucket: new Date(4 * M), grp: '', ...row(120) },
    ],
    2.5 * M
  );
  assert.deepEqual(straddling.data.values[1], [60, 120, null]);
  assert.deepEqual(straddling.data.values[2], [1, 1, null], '60 rows over its 60 s in the range, 120 over 120 s');
  // A bucket without rows that has begun (here 00:04–00:06, computed at 00:05) counts 0.
  const [empty] = KINDS.timeseries.frames(q, rows.slice(0, 2), 5 * M);
  assert.deepEqual(empty.data.values[1], [30, 120, 0]);
});

test('timeseries grouped: one frame per group, named and labelled, "(other)" last', () => {
  const q = base({
    kind: 'timeseries',
    metrics: ['executionCount'],
    groupBy: 'ruleId',
    limit: 2,
    range: { from: 0, to: 2 * M },
    bucketMs: M,
  });
  const rows = [
    { bucket: new Date(0), grp: '(other)', ...row(1) },
    { bucket: new Date(0), grp: 'r2', ...row(5) },
    { bucket: new Date(M), grp: 'r1', ...row(7) },
  ];
  const frames = [...KINDS.timeseries.frames(q, rows, 10 * M)];
  assert.deepEqual(
    frames.map((f) => f.schema.name),
    ['r1', 'r2', '(other)']
  );
  assert.deepEqual(frames[0].schema.fields[1].labels, { ruleId: 'r1' });
  assert.deepEqual(frames[0].data.values[1], [0, 7]);
});

test('timeseries grouped, no group has a row: one empty frame, so the meta still reaches the panel', () => {
  const q = base({
    kind: 'timeseries',
    metrics: ['executionCount', 'p95ExecutionTimeMs'],
    groupBy: 'status',
    limit: 20,
    range: { from: 0, to: 2 * M },
    bucketMs: M,
  });
  const frames = [...KINDS.timeseries.frames(q, [], 10 * M)];
  assert.equal(frames.length, 1);
  assert.deepEqual(
    frames[0].schema.fields.map((f) => f.name),
    ['time', 'executionCount', 'p95ExecutionTimeMs']
  );
  assert.deepEqual(frames[0].data.values, [[], [], []]);
});

test('top rules: ranked by the sort value (nulls last), ties by rule id in byte order, cut at the limit', () => {
  const q = base({ kind: 'topRules', sortBy: 'p95ExecutionTimeMs', limit: 3, range: { from: 0, to: M } });
  const rows = [
    { grp: 'b', ...row(3, { p50: 1, p95: 20, p99: 30 }) },
    { grp: 'a', ...row(3, { p50: 1, p95: 20, p99: 30 }) },
    { grp: 'c', ...row(3, { p50: 1, p95: 45, p99: 50 }) },
    { grp: 'Z', ...row(3, { p50: 1, p95: 20, p99: 30 }) },
  ];
  assert.deepEqual(
    rankTopRules(rows, q, 60).map((r) => r.grp),
    ['c', 'Z', 'a']
  );
});

test('error breakdown: names for rules and parsers only', () => {
  const rows = [{ grp: 'r1', name: 'Rule one', ...row(10) }];
  const [byRule] = KINDS.errorBreakdown.frames(
    base({ kind: 'errorBreakdown', groupBy: 'ruleId', limit: 10, range: { from: 0, to: M } }),
    rows,
    0
  );
  assert.deepEqual(byRule.schema.fields.map((f) => f.name).slice(0, 2), ['ruleId', 'name']);
  const [byStatus] = KINDS.errorBreakdown.frames(
    base({ kind: 'errorBreakdown', groupBy: 'status', limit: 10, range: { from: 0, to: M } }),
    rows,
    0
  );
  assert.equal(byStatus.schema.fields[1].name, 'executionCount');
  assert.deepEqual(KINDS.errorBreakdown.names(base({ groupBy: 'parserId' })), { rules: false, parsers: true });
  assert.deepEqual(KINDS.topRules.names(base({})), { rules: true, parsers: false });
});

test('top rules splits its first phase by the rows it reads: rules (known, or those a filter names) × buckets', () => {
  const daily = rollup('metrics_daily_by_rule', 24 * 60 * M, ['rule_id']);
  const hourly = rollup('metrics_hourly_by_rule', 60 * M, ['rule_id']);
  // Six days and five hours of rollup buckets, and two minutes of raw rows: 13 a rule.
  const pieces = [
    { rollup: daily, from: 0, to: 6 * 24 * 60 * M },
    { rollup: hourly, from: 6 * 24 * 60 * M, to: (6 * 24 + 5) * 60 * M },
    { rollup: null, from: (6 * 24 + 5) * 60 * M, to: (6 * 24 + 5) * 60 * M + 2 * M },
  ];
  const q = base({ kind: 'topRules', limit: 10, sortBy: 'p95ExecutionTimeMs' });
  assert.equal(worthSplitting({ at: 'rule-2501', rules: 5000 }, q, pieces), true, '5,000 rules: 65,000 rows');
  assert.equal(worthSplitting({ at: 'rule-0251', rules: 500 }, q, pieces), false, '500 rules: 6,500 rows');
  assert.equal(worthSplitting({ at: 'rule-1539', rules: 1539 }, q, pieces), true, '20,007 rows');
  assert.equal(worthSplitting({ at: 'rule-1538', rules: 1538 }, q, pieces), false, '19,994 rows');
  const filtered = base({ ...q, filters: { ruleId: ['rule-1', 'rule-2', 'rule-3'] } });
  assert.equal(worthSplitting({ at: 'rule-2501', rules: 5000 }, filtered, pieces), false, 'three rules named');
  assert.equal(worthSplitting(null, q, pieces), false, 'no split point');
});

test("top rules' first phase reads the range's first day whole only by a percentile, with the extension, and five days after it", () => {
  const D = 24 * 60 * M;
  const H = 60 * M;
  const daily = rollup('metrics_daily_by_rule', D, ['rule_id']);
  const sixHours = rollup('metrics_6h_by_rule', 6 * H, ['rule_id']);
  const hourly = rollup('metrics_hourly_by_rule', H, ['rule_id']);
  const odd = rollup('metrics_7h_by_rule', 7 * H, ['rule_id']);
  const day = { rollup: daily, from: 0, to: D };
  // From 03:00 on the first day to 05:00 on the seventh; six-hours run past the first day's
  // end (a change kept day 2 from the daily rollup).
  const range = { from: 3 * H, to: 6 * D + 5 * H };
  const pieces = [
    { rollup: hourly, from: 3 * H, to: 6 * H },
    { rollup: sixHours, from: 6 * H, to: D + 12 * H },
    { rollup: daily, from: D + 12 * H + 12 * H, to: 6 * D },
    { rollup: hourly, from: 6 * D, to: 6 * D + 5 * H },
  ];
  const plan = { pieces, live: false, firstDay: day, wholeRange: pieces };
  const q = base({ kind: 'topRules', limit: 10, sortBy: 'p95ExecutionTimeMs', range });
  const read = phaseOnePieces(q, plan, true);
  assert.equal(read.firstDay, day);
  assert.deepEqual(
    read.inside.map((p) => [p.rollup?.name, p.from, p.to]),
    [
      ['metrics_6h_by_rule', D, D + 12 * H],
      ['metrics_daily_by_rule', 2 * D, 6 * D],
      ['metrics_hourly_by_rule', 6 * D, 6 * D + 5 * H],
    ],
    "the first day's pieces left out, the six-hours from the day's end"
  );
  const asPlanned = (why: string, got: ReturnType<typeof phaseOnePieces>, planned = pieces) => {
    assert.equal(got.firstDay, null, why);
    assert.equal(got.inside, planned, why);
  };
  asPlanned('without the extension', phaseOnePieces(q, plan, false));
  asPlanned('no whole first day', phaseOnePieces(q, { ...plan, firstDay: null }, true));
  asPlanned('an exact sum reads the range itself', phaseOnePieces({ ...q, sortBy: 'avgExecutionTimeMs' }, plan, true));
  asPlanned(
    'under five days after the first day',
    phaseOnePieces({ ...q, range: { from: range.from, to: 6 * D - M } }, plan, true)
  );
  const cut = [
    { rollup: hourly, from: 3 * H, to: 7 * H },
    { rollup: odd, from: 7 * H, to: D + 4 * H },
    ...pieces.slice(2),
  ];
  asPlanned(
    "a 7-hour bucket across the day's end (it would be cut)",
    phaseOnePieces(q, { ...plan, pieces: cut }, true),
    cut
  );
  // Read any other way, the pieces without the first day would be less than the range.
  assert.throws(() => candidatesStatement(q, read.inside, false, undefined, day), /ruleperf_native/);
  assert.throws(
    () => candidatesStatement({ ...q, sortBy: 'errorRate' }, read.inside, true, undefined, day),
    /percentile/
  );
  assert.match(candidatesStatement(q, read.inside, true, undefined, day).text, /ruleperf_native_keys_within_agg/);
});

test("top rules' candidates from both halves: bounds judged together, exact sums ordered as SQL orders them", () => {
  const byP95 = base({ kind: 'topRules', limit: 2, sortBy: 'p95ExecutionTimeMs' });
  // Lower bounds 9, 7, 5, 3 (the limit-th is 7): upper bounds from 7 up stay, ties included;
  // a missing lower bound bounds nothing, a missing upper bound keeps its rule.
  const bounds = [
    { grp: 'a', lo: 9, hi: 12 },
    { grp: 'b', lo: 3, hi: 7 },
    { grp: 'c', lo: 7, hi: 8 },
    { grp: 'd', lo: 5, hi: 6.999 },
    { grp: 'e', lo: null, hi: 100 },
    { grp: 'f', lo: 1, hi: null },
  ];
  assert.deepEqual(chooseCandidates(bounds, byP95).sort(), ['a', 'b', 'c', 'e', 'f']);
  // Fewer rows than the limit: every rule stays.
  assert.deepEqual(chooseCandidates(bounds.slice(0, 1), byP95), ['a']);
  // By count: value descending, nulls last, ties by byte order ('Z' before 'a', 'é' after 'z').
  const byCount = base({ kind: 'topRules', limit: 4, sortBy: 'executionCount' });
  const sums = [
    { grp: 'z', v: 5 },
    { grp: 'é', v: 5 },
    { grp: 'a', v: 5 },
    { grp: 'Z', v: 5 },
    { grp: 'big', v: 9 },
    { grp: 'none', v: null },
  ];
  assert.deepEqual(chooseCandidates(sums, byCount), ['big', 'Z', 'a', 'z']);
  assert.deepEqual(chooseCandidates(sums, { ...byCount, limit: 10 }), ['big', 'Z', 'a', 'z', 'é', 'none']);
});
