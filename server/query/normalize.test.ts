/** Normalization and the request budget, without a database. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { normalizeQuery } from './normalize';
import { coarserBucketNotice } from './render';
import { BudgetExceeded, BUDGET, checkBudget, schemaCardinality } from './budget';
import { DAY_MS as D, HOUR_MS as H, MINUTE_MS as M } from './range';
import { FULL_DIMS, NOW, query, rollup, SMALL_CATALOG } from './testing';
import type { SeriesMetric } from '../contract';

const ROLLUPS = SMALL_CATALOG;
const last = (span: number) => ({ range: { from: NOW - span, to: NOW } });

test("filters become sorted distinct lists under the contract's names; unused parameters are dropped", () => {
  const q = normalizeQuery(
    last(D),
    query({
      kind: 'stats',
      ruleId: ['b', 'a', 'b'],
      status: 'ERROR',
      metrics: ['executionCount'],
      limit: 5,
      groupBy: 'status',
    }),
    ROLLUPS,
    NOW
  );
  assert.deepEqual(q.filters, { ruleId: ['a', 'b'], status: ['ERROR'] });
  assert.deepEqual(
    [q.metrics, q.limit, q.groupBy, q.sortBy, q.bucketMs],
    [[], 0, null, null, null],
    'stats uses none of them'
  );
  assert.deepEqual(q.fields, ['ruleId', 'status']);
});

test("each kind's defaults, in one place", () => {
  const top = normalizeQuery(last(D), query({ kind: 'topRules' }), ROLLUPS, NOW);
  assert.deepEqual([top.limit, top.sortBy, top.fields], [10, 'p95ExecutionTimeMs', ['ruleId']]);
  const eb = normalizeQuery(last(D), query({ kind: 'errorBreakdown' }), ROLLUPS, NOW);
  assert.deepEqual([eb.groupBy, eb.limit], ['ruleCategory', 10]);
  const ts = normalizeQuery(
    { ...last(D), intervalMs: M, maxDataPoints: 1000 },
    query({ kind: 'timeseries' }),
    ROLLUPS,
    NOW
  );
  assert.deepEqual(ts.metrics, ['p50ExecutionTimeMs', 'p95ExecutionTimeMs', 'p99ExecutionTimeMs']);
  assert.equal(ts.bucketMs, 2 * M, '24 h at a 1-minute interval and 1000 points: 2-minute buckets of the minute tier');
  const grouped = normalizeQuery(last(D), query({ kind: 'timeseries', groupBy: 'ruleId' }), ROLLUPS, NOW);
  assert.equal(grouped.limit, 20);
  assert.equal(grouped.bucketMs, H, 'no minute rollup holds rules here: hourly points');
});

test('points wider than asked are marked where they hold totals per point, not where rates and percentiles mean the same', () => {
  const catalog = [...SMALL_CATALOG, rollup('metrics_10min_total', 10 * M, [])];
  const at = (intervalMs: number, metrics: SeriesMetric[]) =>
    normalizeQuery(
      { ...last(D), intervalMs, maxDataPoints: 2000 },
      query({ kind: 'timeseries', metrics }),
      catalog,
      NOW
    );
  const counts = at(15 * M, ['executionCount', 'p95ExecutionTimeMs']);
  assert.equal(counts.bucketMs, 20 * M, '15 minutes from 10-minute buckets: 20');
  assert.deepEqual([counts.coarserBecause, counts.coarserThanAskedMs], ['totals', 15 * M]);
  const rates = at(15 * M, ['throughputPerSecond', 'errorRate', 'p95ExecutionTimeMs']);
  assert.deepEqual([rates.bucketMs, rates.coarserBecause, rates.coarserThanAskedMs], [20 * M, null, null]);
  const exact = at(20 * M, ['executionCount']);
  assert.deepEqual([exact.bucketMs, exact.coarserBecause], [20 * M, null], 'as asked: nothing to say');
  const noRollup = normalizeQuery(
    { ...last(7 * D), intervalMs: M },
    query({ kind: 'timeseries', groupBy: 'ruleId', metrics: ['executionCount'] }),
    catalog,
    NOW
  );
  assert.equal(noRollup.coarserBecause, 'rollups', 'no finer rollup holds rules: the reason given first');
  const subMinute = normalizeQuery(
    { range: { from: NOW - 7 * H, to: NOW }, intervalMs: 20_000 },
    query({ kind: 'timeseries', groupBy: 'ruleId', metrics: ['executionCount'] }),
    catalog,
    NOW
  );
  assert.deepEqual(
    [subMinute.coarserBecause, subMinute.coarserThanAskedMs],
    ['rollups', M],
    'no rollup is finer than a minute: said against a minute, not the 20 s asked'
  );
  // A "last 5 minutes" panel at Grafana's 1-second interval: minute points, each count a minute's.
  const fiveMinutes = (metrics: SeriesMetric[]) =>
    normalizeQuery(
      { range: { from: NOW - 5 * M, to: NOW }, intervalMs: 1000, maxDataPoints: 1000 },
      query({ kind: 'timeseries', metrics }),
      catalog,
      NOW
    );
  const perSecond = fiveMinutes(['executionCount']);
  assert.deepEqual([perSecond.bucketMs, perSecond.coarserBecause, perSecond.coarserThanAskedMs], [M, 'minute', 1000]);
  assert.equal(
    fiveMinutes(['p95ExecutionTimeMs', 'errorRate']).coarserBecause,
    null,
    'rates and percentiles: nothing to say'
  );
  // Under a second, the width asked is said in milliseconds (it said "the 1 second asked" for 200 ms).
  const subSecond = normalizeQuery(
    { range: { from: NOW - 5 * M, to: NOW }, intervalMs: 200 },
    query({ kind: 'timeseries', metrics: ['executionCount'] }),
    catalog,
    NOW
  );
  assert.deepEqual([subSecond.coarserBecause, subSecond.coarserThanAskedMs], ['minute', 200]);
  assert.match(
    coarserBucketNotice(M, subSecond.coarserThanAskedMs!, [], 'minute').text,
    /^Points are 1 minute apart, not the 200 milliseconds asked: /
  );
  // Nothing asked (no interval, no maxDataPoints): the width is the service's own choice, no notice
  // (it said "not the 0 days asked").
  const unasked = normalizeQuery(
    { range: { from: NOW - D, to: NOW } },
    query({ kind: 'timeseries', metrics: ['executionCount'] }),
    catalog,
    NOW
  );
  assert.deepEqual([unasked.bucketMs, unasked.coarserBecause, unasked.coarserThanAskedMs], [M, null, null]);
});

test('the budget refuses, before any work, what could return too much, and names every query', () => {
  const probe = Array.from({ length: 10 }, (_, i) => ({
    refId: `Q${i}`,
    q: normalizeQuery(
      { range: { from: NOW - 400 * D, to: NOW }, intervalMs: 1, maxDataPoints: 10_000 },
      query({
        kind: 'timeseries',
        groupBy: 'ruleId',
        granularity: 'hourly',
        metrics: ['executionCount', 'p95ExecutionTimeMs'],
      }),
      ROLLUPS,
      NOW
    ),
  }));
  assert.throws(
    () => checkBudget(probe, schemaCardinality),
    (err: unknown) => {
      assert.ok(err instanceof BudgetExceeded);
      assert.match(err.message, /limit/);
      assert.equal(err.details.length, 10);
      return true;
    }
  );
  const fine = [
    {
      refId: 'A',
      q: normalizeQuery(
        { ...last(7 * D), intervalMs: H },
        query({ kind: 'timeseries', groupBy: 'status' }),
        ROLLUPS,
        NOW
      ),
    },
  ];
  assert.doesNotThrow(() => checkBudget(fine, schemaCardinality));
  // At most 3 statuses: 169 hourly points × (3 + "(none)" at most) series.
  const big = Array.from({ length: 50 }, (_, i) => ({
    refId: `S${i}`,
    q: normalizeQuery(
      { ...last(30 * D), intervalMs: H },
      query({ kind: 'timeseries', groupBy: 'ruleId', limit: 1000 }),
      ROLLUPS,
      NOW
    ),
  }));
  assert.throws(() => checkBudget(big, schemaCardinality), BudgetExceeded);
  assert.ok(BUDGET.maxCells >= 100_000);
});

test('the asked range counts only through the covered range and whether the two differ (the notice)', () => {
  const moving = normalizeQuery(last(H), query({}), ROLLUPS, NOW);
  assert.deepEqual(
    [moving.range.to % M, moving.differsFromAsked],
    [0, true],
    'a range ending now moves to whole minutes, and says so'
  );
  assert.equal(moving.movingStepMs, M);
  const short = normalizeQuery({ range: { from: NOW - 70_000, to: NOW } }, query({}), ROLLUPS, NOW);
  assert.deepEqual([short.movingStepMs, short.range.to - NOW < 1000], [1000, true], 'a 70-second one: whole seconds');
  const settled = normalizeQuery({ range: { from: NOW - 3 * H, to: NOW - 2 * H } }, query({}), ROLLUPS, NOW);
  assert.deepEqual(
    [settled.range, settled.differsFromAsked],
    [{ from: NOW - 3 * H, to: NOW - 2 * H }, false],
    'a settled range is covered as asked'
  );
  assert.equal(settled.movingStepMs, null, 'and moves by no step');
  assert.equal('asked' in moving, false, 'nothing per request is kept, so a normalized query can be shared');
});

test('a range the minute rollups no longer keep takes the widths of the rollups that keep it, and says why', () => {
  // The minute tier per rule, kept 7 days and an hour; hourly kept as long as raw rows.
  const catalog = [
    rollup('metrics_hourly', H, FULL_DIMS),
    { ...rollup('metrics_minute_by_rule', M, ['rule_id', 'rule_category', 'metric_type']), retentionMs: 7 * D + H },
  ];
  const ask = (from: number, to: number) =>
    normalizeQuery(
      { range: { from, to }, maxDataPoints: 500 },
      query({ kind: 'timeseries', ruleId: 'rule-0001', metrics: ['executionCount'] }),
      catalog,
      NOW
    );
  // Three days, three weeks back: 9-minute points on the minute grid read three days of raw rows.
  const old = ask(NOW - 23 * D, NOW - 20 * D);
  assert.equal(old.bucketMs, H);
  assert.equal(old.coarserBecause, 'retention');
  assert.match(
    coarserBucketNotice(old.bucketMs!, old.coarserThanAskedMs!, old.fields, old.coarserBecause!).text,
    /^Points are 1 hour apart, not the 519 seconds asked: the rollups as fine as that keep only the most recent days/
  );
  // The same span inside the retention: the minute grid (9 minutes for 519 s: counts per point said as such).
  const recent = ask(NOW - 3 * D, NOW);
  assert.deepEqual([recent.bucketMs, recent.coarserBecause], [9 * M, 'totals']);
  // Starting up to RAW_MINUTES_MAX_SPAN (6 h) before the edge: the rest read by the minute, as a short range is.
  const edge = NOW - 7 * D - H + 10 * M;
  assert.equal(ask(edge - 5 * H, edge - 5 * H + 3 * D).bucketMs, 9 * M);
  assert.equal(ask(edge - 7 * H, edge - 7 * H + 3 * D).bucketMs, H);
  // A short range that old is still read by the minute from raw rows.
  assert.deepEqual(
    [ask(NOW - 20 * D, NOW - 20 * D + 2 * H).bucketMs, ask(NOW - 20 * D, NOW - 20 * D + 2 * H).coarserBecause],
    [M, 'minute'],
    'by the minute, the finest width (14.4 s asked)'
  );
});
