import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Busy } from '../db/admission';
import { BudgetExceeded } from './budget';
import { normalized, rollup, FULL_DIMS } from './testing';
import { checkWork, effectiveLimit, histogramValues, RAW_SOURCE, WorkEstimator, type Densities } from './work';
import { HOUR_MS } from './range';

const hourly = rollup('metrics_hourly_by_rule', HOUR_MS, ['rule_id', 'rule_category', 'metric_type']);
const densities: Densities = new Map([
  [
    'metrics_hourly_by_rule',
    { bucketMs: HOUR_MS, first: 0, rowsPerBucket: 500, valuesPerRow: 20, distinct: { ruleId: 500 } },
  ],
  [RAW_SOURCE, { bucketMs: HOUR_MS, first: 0, rowsPerBucket: 14_000, valuesPerRow: 1, distinct: { ruleId: 500 } }],
]);
const day = { from: 0, to: 24 * HOUR_MS };
const p95ByRule = normalized({
  kind: 'timeseries',
  groupBy: 'ruleId',
  metrics: ['p95ExecutionTimeMs'],
  limit: 10,
  range: day,
  bucketMs: HOUR_MS,
});

test('a percentile answer merges rows × values per row of every piece: rollup and raw edges', () => {
  const pieces = [
    { rollup: hourly, from: 0, to: 23 * HOUR_MS },
    { rollup: null, from: 23 * HOUR_MS, to: 23.5 * HOUR_MS },
  ];
  assert.equal(histogramValues(p95ByRule, pieces, densities), 23 * 500 * 20 + 0.5 * 14_000);
});

test('answers without percentiles, and kinds that merge only their chosen groups, merge nothing', () => {
  const pieces = [{ rollup: hourly, ...day }];
  assert.equal(histogramValues({ ...p95ByRule, metrics: ['executionCount', 'errorRate'] }, pieces, densities), 0);
  assert.equal(histogramValues({ ...p95ByRule, kind: 'topRules', metrics: [] }, pieces, densities), 0);
  assert.ok(histogramValues({ ...p95ByRule, kind: 'stats', metrics: [] }, pieces, densities) > 0);
});

test('a filter keeps its share of the dimension, at most all of it; an unread source counts nothing', () => {
  const pieces = [{ rollup: hourly, ...day }];
  const all = histogramValues(p95ByRule, pieces, densities);
  assert.equal(
    histogramValues({ ...p95ByRule, filters: { ruleId: ['r1', 'r2'] } }, pieces, densities),
    all * (2 / 500)
  );
  const many = Array.from({ length: 900 }, (_, i) => `r${i}`);
  assert.equal(histogramValues({ ...p95ByRule, filters: { ruleId: many } }, pieces, densities), all);
  // A dimension the density does not know (not a column of that rollup): no share taken.
  assert.equal(histogramValues({ ...p95ByRule, filters: { parserId: ['p1'] } }, pieces, densities), all);
  const unread = rollup('metrics_hourly', HOUR_MS, FULL_DIMS);
  assert.equal(histogramValues(p95ByRule, [{ rollup: unread, ...day }], densities), 0);
});

test('checkWork refuses over the limit with the estimate, the limit and how to narrow it', () => {
  const pieces = [{ rollup: hourly, ...day }];
  const ungrouped = { ...p95ByRule, groupBy: null, limit: 0 };
  assert.doesNotThrow(() => checkWork(ungrouped, pieces, densities, 240_000));
  assert.throws(
    () => checkWork(ungrouped, pieces, densities, 239_999),
    (err: unknown) =>
      err instanceof BudgetExceeded &&
      /about 240,000 latency-histogram values \(limit 239,999\)/.test(err.message) &&
      /shorter range/.test(err.message) &&
      /metrics_hourly_by_rule/.test(err.details[0].message)
  );
});

test('the estimator refuses nothing before its first reading, and keeps the last reading when one fails', async () => {
  let fail = false;
  const estimator = new WorkEstimator(
    async () => {
      if (fail) {
        throw new Error('database gone');
      }
      return densities;
    },
    { limit: 1000 }
  );
  const pieces = [{ rollup: hourly, ...day }];
  const reading = estimator.refresh();
  assert.doesNotThrow(() => estimator.check(p95ByRule, pieces), 'not read yet');
  await reading;
  assert.throws(() => estimator.check(p95ByRule, pieces), BudgetExceeded);
  fail = true;
  await estimator.refresh();
  assert.throws(() => estimator.check(p95ByRule, pieces), BudgetExceeded, 'the last reading still holds');
});

test('a range reaching back before a source holds rows counts only the stretch it holds', () => {
  const young: Densities = new Map([
    ['metrics_hourly_by_rule', { ...densities.get('metrics_hourly_by_rule')!, first: 18 * HOUR_MS }],
  ]);
  assert.equal(histogramValues(p95ByRule, [{ rollup: hourly, ...day }], young), 6 * 500 * 20);
  assert.equal(histogramValues(p95ByRule, [{ rollup: hourly, from: 0, to: 12 * HOUR_MS }], young), 0);
});

test("the more of a grouping's values get a series of their own, the lower the limit", () => {
  const pieces = [{ rollup: hourly, ...day }];
  const limitFor = (q: typeof p95ByRule) => effectiveLimit(q, pieces, densities, 1_000_000);
  assert.deepEqual(limitFor({ ...p95ByRule, groupBy: null, limit: 0 }), { limit: 1_000_000, named: 0, of: 0 });
  // 10 of 500 rules named: 1 + 4 × 0.02; 100 of 500: 1 + 4 × 0.2; all of them: 5.
  assert.equal(Math.round(limitFor(p95ByRule).limit), Math.round(1_000_000 / 1.08));
  assert.equal(Math.round(limitFor({ ...p95ByRule, limit: 100 }).limit), Math.round(1_000_000 / 1.8));
  assert.equal(limitFor({ ...p95ByRule, limit: 900 }).limit, 200_000);
  // Grouped by rule and filtered to 3 rules: all 3 named, as heavy per value as naming every rule.
  assert.equal(limitFor({ ...p95ByRule, filters: { ruleId: ['r1', 'r2', 'r3'] } }).limit, 200_000);
  // A grouping the densities do not count: every value may be named.
  assert.equal(limitFor({ ...p95ByRule, groupBy: 'parserId' }).limit, 200_000);
  assert.throws(
    () => checkWork({ ...p95ByRule, limit: 100 }, pieces, densities, 400_000),
    (err: unknown) =>
      err instanceof BudgetExceeded &&
      /\(limit 222,222 with 100 named series of 500 ruleId values; 400,000 for one series\)/.test(err.message)
  );
});

test('the limit follows what large answers typically cost here, within a share of the statement timeout, and recovers', () => {
  let now = day.to;
  const estimator = new WorkEstimator(async () => densities, { limit: 1_000_000, timeoutMs: 10_000, now: () => now });
  const pieces = [{ rollup: hourly, ...day }];
  return estimator.refresh().then(() => {
    // 24 h × 500 rows × 20 values, 10 of 500 rules named: weighed 1 + 4 × 0.02.
    const work = estimator.check(p95ByRule, pieces);
    assert.equal(work, 240_000 * 1.08);
    // One answer cancelled by the timeout (a lock, a stall): one cost says nothing of the machine.
    estimator.observe(work, 10_000);
    assert.equal(estimator.check(p95ByRule, pieces), work, 'one slow answer alone: the limit stays');
    estimator.observe(work, 300); // 1.2 µs a unit: 6 s allow 5M, above the configured limit
    assert.equal(estimator.currentLimit().limit, 1_000_000);
    estimator.observe(1_000, 10_000); // too small to say anything
    assert.equal(estimator.currentLimit().limit, 1_000_000);
    estimator.observe(work, 5_990); // just within 60 % of the timeout
    assert.equal(estimator.check(p95ByRule, pieces), work, 'at the edge: accepted');
    now += 60_000;
    // A second slow one, among faster ones: still not typical.
    estimator.observe(work, 10_000);
    assert.equal(estimator.check(p95ByRule, pieces), work, 'two slow answers of four: not typical yet');
    // Most recent large answers this slow: the limit follows them.
    estimator.observe(work, 10_000);
    assert.equal(estimator.currentLimit().limit, Math.floor(work * 0.6));
    assert.throws(
      () => estimator.check(p95ByRule, pieces),
      (err: unknown) =>
        err instanceof Busy &&
        err.retryAfterSeconds === 60 &&
        /slower than usual now: recent large answers took about 38\.58 µs per value of one series, so this query \(about 240,000 values, as much work as 259,200 of one series\) would take about 10\.0 s, more than 60 % of the 10000 ms statement timeout/.test(
          err.message
        ),
      'within the configured limit: busy, not a query to narrow'
    );
    // What fits the lowered limit still runs; what exceeds the configured one is still a 400.
    const fewerRules = { ...p95ByRule, filters: { ruleId: Array.from({ length: 200 }, (_, i) => `r${i}`) } };
    assert.ok(estimator.check(fewerRules, pieces) <= Math.floor(work * 0.6));
    assert.throws(() => estimator.check({ ...p95ByRule, limit: 500 }, pieces), BudgetExceeded);
    // Three minutes after the slow answers, the configured limit is back.
    now += 3 * 60_000 + 1;
    assert.equal(estimator.currentLimit().limit, 1_000_000);
    assert.doesNotThrow(() => estimator.check(p95ByRule, pieces));
  });
});

test('without a statement timeout the configured limit stands whatever answers cost', async () => {
  const estimator = new WorkEstimator(async () => densities, { limit: 1_000_000 });
  await estimator.refresh();
  estimator.observe(500_000, 100_000);
  assert.equal(estimator.currentLimit().limit, 1_000_000);
});

test('a rollup the last reading did not measure has the densities read again within a minute, not at their usual age', async () => {
  let now = 0;
  let reads = 0;
  const estimator = new WorkEstimator(
    async () => {
      reads++;
      return reads === 1
        ? densities
        : new Map([...densities, ['metrics_minute_total', { ...densities.get(RAW_SOURCE)!, rowsPerBucket: 1 }]]);
    },
    { limit: 1000, now: () => now }
  );
  await estimator.refresh();
  assert.equal(estimator.rowsPerBucket('metrics_minute_total'), undefined);
  assert.equal(reads, 1, 'not at once');
  now = 61_000;
  assert.equal(estimator.rowsPerBucket('metrics_hourly_by_rule'), 500, 'a measured one asks for nothing');
  assert.equal(reads, 1);
  assert.equal(estimator.rowsPerBucket('metrics_minute_total'), undefined);
  await new Promise((r) => setImmediate(r));
  assert.equal(reads, 2);
  assert.equal(estimator.rowsPerBucket('metrics_minute_total'), 1);
});

test('a range reaching into the future counts no rows after now', async () => {
  const twoDays = { from: 0, to: 48 * HOUR_MS };
  const raw = [{ rollup: null, ...twoDays }];
  const q = { ...p95ByRule, range: twoDays };
  assert.equal(histogramValues(q, raw, densities, 24 * HOUR_MS), histogramValues(q, raw, densities) / 2);
  assert.equal(histogramValues(q, raw, densities, -1), 0, 'wholly in the future: nothing');
  // Over the limit for its whole span, within it up to now.
  const limit = Math.ceil(histogramValues(q, raw, densities) * 0.75 * 1.08);
  const estimator = new WorkEstimator(async () => densities, { limit, now: () => 24 * HOUR_MS });
  await estimator.refresh();
  assert.doesNotThrow(() => estimator.check(q, raw));
  assert.throws(() => checkWork(q, raw, densities, limit), BudgetExceeded);
});
