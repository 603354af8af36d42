/** RecentQueries: which now-relative questions are counted, and under which identity. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { QueryRequest, RuleperfQuery } from '../contract';
import { RecentQueries, warm, type WarmItem } from './warmer';

const NOW = Date.parse('2026-06-10T12:00:00Z');
const HOUR = 3_600_000;
const request = (spanMs: number, o: { to?: number; intervalMs?: number; maxDataPoints?: number } = {}) =>
  ({
    range: { from: (o.to ?? NOW) - spanMs, to: o.to ?? NOW },
    intervalMs: o.intervalMs,
    maxDataPoints: o.maxDataPoints,
    queries: [],
  }) as unknown as QueryRequest;

for (const frozen of [true, false]) {
  test(`the same question is counted as one, whatever its refId and its second; others apart (${frozen ? 'shared frozen' : 'fresh'} queries)`, () => {
    const recent = new RecentQueries();
    const make = (q: object): RuleperfQuery => (frozen ? Object.freeze(q) : q) as RuleperfQuery;
    const stats = make({ refId: 'A', kind: 'stats' });
    const p95 = make({ refId: 'A', kind: 'timeseries', metrics: ['p95ExecutionTimeMs'] });
    for (let i = 0; i < 5; i++) {
      recent.record(request(24 * HOUR, { to: NOW + i * 1000, intervalMs: 60_000 }), stats, NOW + i * 1000);
    }
    recent.record(request(24 * HOUR, { intervalMs: 60_000 }), make({ refId: 'B', kind: 'stats' }), NOW);
    recent.record(request(24 * HOUR, { intervalMs: 60_000, maxDataPoints: 500 }), stats, NOW);
    for (let i = 0; i < 3; i++) {
      recent.record(request(24 * HOUR, { intervalMs: 120_000 }), stats, NOW); // another interval
    }
    for (let i = 0; i < 3; i++) {
      recent.record(request(HOUR, { intervalMs: 120_000 }), stats, NOW); // another span
    }
    recent.record(request(24 * HOUR, { intervalMs: 60_000 }), p95, NOW);
    recent.record(request(24 * HOUR, { to: NOW - 10 * 60_000, intervalMs: 60_000 }), p95, NOW); // not ending now
    const top = recent.top(10, NOW);
    assert.deepEqual(
      top.map((t) => [t.query.kind, t.spanMs, t.intervalMs, t.maxDataPoints]),
      [
        ['stats', 24 * HOUR, 60_000, undefined],
        ['stats', 24 * HOUR, 120_000, undefined],
        ['stats', HOUR, 120_000, undefined],
        ['stats', 24 * HOUR, 60_000, 500],
        ['timeseries', 24 * HOUR, 60_000, undefined],
      ],
      'six asks of 24 h stats at 1 min (any refId) first, then the three-ask shapes'
    );
    assert.equal(top.length, 5);
  });
}

test('full: questions unseen for the window make room, then the least asked', () => {
  const recent = new RecentQueries(2, 60_000);
  const q = (kind: string) => Object.freeze({ refId: 'A', kind }) as RuleperfQuery;
  recent.record(request(HOUR), q('stats'), NOW);
  recent.record(request(HOUR), q('stats'), NOW);
  recent.record(request(HOUR, { to: NOW + 120_000 }), q('topRules'), NOW + 120_000);
  recent.record(request(HOUR, { to: NOW + 120_000 }), q('errorBreakdown'), NOW + 120_000);
  assert.deepEqual(
    recent.top(10, NOW + 120_000).map((t) => t.query.kind),
    ['topRules', 'errorBreakdown'],
    'stats, unseen for two minutes, made room'
  );
});

test('asks of one shared query differing in one field only, one right after the other, are counted apart', () => {
  const variants: Array<[string, QueryRequest, QueryRequest]> = [
    ['span', request(24 * HOUR, { intervalMs: 60_000 }), request(HOUR, { intervalMs: 60_000 })],
    ['interval', request(24 * HOUR, { intervalMs: 60_000 }), request(24 * HOUR, { intervalMs: 120_000 })],
    [
      'points',
      request(24 * HOUR, { intervalMs: 60_000, maxDataPoints: 1000 }),
      request(24 * HOUR, { intervalMs: 60_000, maxDataPoints: 500 }),
    ],
  ];
  for (const [field, first, second] of variants) {
    const recent = new RecentQueries();
    const stats = Object.freeze({ refId: 'A', kind: 'stats' }) as RuleperfQuery;
    recent.record(first, stats, NOW);
    recent.record(second, stats, NOW);
    recent.record(second, stats, NOW);
    assert.deepEqual(
      recent.top(10, NOW).map((t) => [t.spanMs, t.intervalMs, t.maxDataPoints]),
      [
        [second.range.to - second.range.from, second.intervalMs, second.maxDataPoints],
        [first.range.to - first.range.from, first.intervalMs, first.maxDataPoints],
      ],
      field
    );
  }
});

test('a warming pass answers at most `workers` at once and begins none after `until`', async () => {
  const items: WarmItem[] = Array.from({ length: 12 }, (_, i) => ({
    query: { refId: 'A', kind: 'stats', ruleId: `rule-${i}` } as RuleperfQuery,
    spanMs: HOUR,
  }));
  let inFlight = 0;
  let most = 0;
  const answer = async () => {
    most = Math.max(most, ++inFlight);
    await new Promise((r) => setTimeout(r, 20));
    inFlight--;
  };
  assert.deepEqual(await warm(items, answer, NOW), { warmed: 12, failed: 0 });
  assert.equal(most, 2, 'two at a time by default');
  most = 0;
  const started = Date.now();
  const bounded = await warm(items, answer, NOW, undefined, { workers: 1, until: started + 70 });
  assert.equal(most, 1);
  // 20 ms each, one at a time: begun at about 0, 20, 40 and 60 ms, then the deadline.
  assert.ok(bounded.warmed >= 2 && bounded.warmed <= 5, JSON.stringify(bounded));
});
