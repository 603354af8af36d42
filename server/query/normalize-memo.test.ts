/** The normalize memo: one value per query and coverage, equal to normalizing afresh, and a miss whenever anything it reads changes. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { RuleperfQuery } from '../contract';
import { normalizeQuery } from './normalize';
import { NormalizeMemo } from './normalize-memo';
import { DAY_MS as D, HOUR_MS as H, MINUTE_MS as M } from './range';
import { fingerprint } from '../cache/keys';
import { NOW, query as statsQuery, rollup, SMALL_CATALOG } from './testing';

const ROLLUPS = SMALL_CATALOG;
/** A timeseries unless overridden. */
const query = (q: Partial<RuleperfQuery>): RuleperfQuery => statsQuery({ kind: 'timeseries', ...q });
const last = (span: number, now = NOW, extra: object = {}) => ({
  range: { from: now - span, to: now },
  intervalMs: M,
  maxDataPoints: 1000,
  ...extra,
});

test('the same query over the same covered minutes is one frozen value; its fingerprint is computed once', () => {
  const memo = new NormalizeMemo();
  const ts = query({ ruleId: ['b', 'a'] });
  const first = memo.normalize(last(D), ts, ROLLUPS, NOW);
  const later = memo.normalize(last(D, NOW + 9_000), ts, ROLLUPS, NOW + 9_000);
  assert.equal(later, first, 'nine seconds later, the same minutes');
  assert.ok(Object.isFrozen(first) && Object.isFrozen(first.filters.ruleId) && Object.isFrozen(first.range));
  assert.throws(
    () => (first.filters.ruleId as string[]).push('c'),
    TypeError,
    'nothing downstream can change a shared value'
  );
  assert.equal(fingerprint(first), fingerprint(later));
  assert.deepEqual(first, normalizeQuery(last(D), ts, ROLLUPS, NOW));
});

test('a miss whenever something normalizing reads differs: covered minute, interval, points, notice, query object, catalog', () => {
  const memo = new NormalizeMemo();
  const ts = query({});
  const base = memo.normalize(last(D), ts, ROLLUPS, NOW);
  const nextMinute = memo.normalize(last(D, NOW + 20_000), ts, ROLLUPS, NOW + 20_000);
  assert.notEqual(nextMinute, base);
  assert.equal(nextMinute.range.to - base.range.to, M, 'the covered range moved a minute');
  assert.notEqual(fingerprint(nextMinute), fingerprint(base), 'and so does the cache key');
  const wider = memo.normalize(last(D, NOW, { intervalMs: H }), ts, ROLLUPS, NOW);
  assert.equal(wider.bucketMs, H);
  const fewer = memo.normalize(last(D, NOW, { maxDataPoints: 10 }), ts, ROLLUPS, NOW);
  assert.ok(fewer.bucketMs! > base.bucketMs!);
  // Ending on a whole minute: covered exactly, no notice; same covered range otherwise.
  const exact = memo.normalize(
    { range: { from: base.range.from, to: base.range.to }, intervalMs: M, maxDataPoints: 1000 },
    ts,
    ROLLUPS,
    NOW
  );
  assert.deepEqual([exact.range, exact.differsFromAsked, base.differsFromAsked], [base.range, false, true]);
  assert.notEqual(exact, base);
  const twin = memo.normalize(last(D), query({}), ROLLUPS, NOW);
  assert.notEqual(twin, base, 'another query object is another entry');
  assert.deepEqual(twin, base, 'with the same value');
  const noMinutes = ROLLUPS.slice(0, 2);
  const other = memo.normalize(last(2 * H), ts, noMinutes, NOW);
  assert.deepEqual(other, normalizeQuery(last(2 * H), ts, noMinutes, NOW), 'another catalog is read, not remembered');
  assert.equal(memo.normalize(last(2 * H), ts, ROLLUPS, NOW).bucketMs, M);
});

test('memoized values equal normalizing afresh (random ranges, intervals, kinds, at any moment)', () => {
  const memo = new NormalizeMemo();
  const queries = [
    query({}),
    query({ kind: 'stats' }),
    query({ kind: 'topRules', limit: 5 }),
    query({ groupBy: 'status', metrics: ['executionCount'] }),
    query({ kind: 'errorBreakdown', status: ['ERROR', 'TIMEOUT'] }),
  ];
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 4 }),
      fc.integer({ min: 1, max: 40 * D }),
      fc.integer({ min: -3 * M, max: 3 * D }),
      fc.integer({ min: 0, max: 10 * M }),
      fc.option(fc.integer({ min: 1, max: D })),
      fc.option(fc.integer({ min: 1, max: 5000 })),
      (i, span, endAgo, drift, intervalMs, maxDataPoints) => {
        const now = NOW + drift;
        const request = {
          range: { from: NOW - endAgo - span, to: NOW - endAgo },
          intervalMs: intervalMs ?? undefined,
          maxDataPoints: maxDataPoints ?? undefined,
        };
        assert.deepEqual(
          memo.normalize(request, queries[i], ROLLUPS, now),
          normalizeQuery(request, queries[i], ROLLUPS, now)
        );
      }
    ),
    { numRuns: 2000, seed: 18 }
  );
});

test('a remembered settled range is normalized again once a rollup kept for a while no longer keeps its start', () => {
  const catalog = [
    ...ROLLUPS,
    { ...rollup('metrics_minute_by_rule', M, ['rule_id', 'rule_category', 'metric_type']), retentionMs: 7 * D + H },
  ];
  const memo = new NormalizeMemo();
  const ts = query({ ruleId: 'rule-0001', metrics: ['executionCount'] });
  // Three days ending 4 days back: on the minute grid today; its start leaves the retention in ~2 days.
  const asked = { range: { from: NOW - 7 * D, to: NOW - 4 * D }, maxDataPoints: 500 };
  const today = memo.normalize(asked, ts, catalog, NOW);
  assert.equal(today.bucketMs, 9 * M);
  assert.equal(memo.normalize(asked, ts, catalog, NOW + H), today, 'remembered meanwhile');
  const later = memo.normalize(asked, ts, catalog, NOW + 2 * D);
  assert.deepEqual([later.bucketMs, later.coarserBecause], [H, 'retention']);
  assert.deepEqual(later, normalizeQuery(asked, ts, catalog, NOW + 2 * D));
});
