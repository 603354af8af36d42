/** Earlier ranges: the latest range per question and span, handed back only for a later range of the same question. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RuleperfQuery } from '../contract';
import { EarlierRanges, MAX_SHIFT_MS, earlierRangeNotice, servedInstead } from './earlier-ranges';
import { NormalizeMemo } from './normalize-memo';
import { DAY_MS as D, MINUTE_MS as M } from './range';
import { NOW, query, SMALL_CATALOG } from './testing';
import type { Answer } from './executor';

const memo = new NormalizeMemo();
const ask = (q: RuleperfQuery, to: number, span = D) =>
  memo.normalize({ range: { from: to - span, to }, intervalMs: M, maxDataPoints: 1000 }, q, SMALL_CATALOG, NOW);

test('a later range of the same question gets the latest earlier one; nothing else does', () => {
  const ranges = new EarlierRanges();
  const stats = query({});
  const a = ask(stats, NOW);
  assert.equal(ranges.before(ask(stats, NOW + M)), undefined, 'nothing remembered yet');
  ranges.remember(a);
  assert.equal(ranges.before(ask(stats, NOW + M)), a);
  assert.equal(ranges.before(a), undefined, 'not itself');
  assert.equal(ranges.before(ask(stats, NOW - M)), undefined, 'not for an earlier range');
  assert.equal(ranges.before(ask(stats, NOW + M, 2 * D)), undefined, 'not for another span');
  assert.equal(ranges.before(ask(query({ ruleId: ['rule-0001'] }), NOW + M)), undefined, 'not for another filter');
  assert.equal(ranges.before(ask(query({ kind: 'topRules' }), NOW + M)), undefined, 'not for another kind');
  assert.equal(ranges.before(ask(stats, NOW + MAX_SHIFT_MS)), a, 'up to the limit behind');
  assert.equal(ranges.before(ask(stats, NOW + MAX_SHIFT_MS + M)), undefined, 'not further');

  // The latest range is kept: an older one answered afterwards (a zoomed-out panel) does not replace it.
  const b = ask(stats, NOW + 2 * M);
  ranges.remember(b);
  ranges.remember(ask(stats, NOW + M));
  assert.equal(ranges.before(ask(stats, NOW + 3 * M)), b);
  assert.equal(ranges.size, 1);
});

test('bounded: the oldest questions go first', () => {
  const ranges = new EarlierRanges();
  const first = ask(query({ ruleId: ['r-0'] }), NOW);
  ranges.remember(first);
  for (let i = 1; i <= 1100; i++) {
    ranges.remember(ask(query({ ruleId: [`r-${i}`] }), NOW));
  }
  assert.ok(ranges.size <= 1024, `${ranges.size} kept`);
  assert.equal(ranges.before(ask(query({ ruleId: ['r-0'] }), NOW + M)), undefined);
  assert.ok(ranges.before(ask(query({ ruleId: ['r-1100'] }), NOW + M)));
});

test('served instead: the answer with the notice, rendered for its own range without the whole-minutes notice; the same objects each time', () => {
  const earlier = ask(query({}), NOW + 1234);
  assert.equal(earlier.differsFromAsked, true, 'a range that does not end on a minute is covered to its end');
  const answer: Answer = {
    frames: [],
    tiers: ['raw'],
    watermark: null,
    touchesLiveEdge: true,
    sql: 'SELECT 1',
    notices: [{ severity: 'info', text: 'a notice of its own' }],
    computedAt: NOW,
  };
  const served = servedInstead(answer, earlier);
  assert.deepEqual(served.answer.notices, [...answer.notices, earlierRangeNotice(earlier.range)]);
  assert.equal(answer.notices.length, 1, 'the cached answer is not changed');
  assert.deepEqual(served.renderAs.range, earlier.range);
  assert.equal(served.renderAs.differsFromAsked, false);
  assert.equal(servedInstead(answer, earlier), served);
  assert.match(
    earlierRangeNotice({ from: Date.UTC(2026, 0, 1, 10), to: Date.UTC(2026, 0, 2, 10) }).text,
    /for 2026-01-01 10:00:00 – 2026-01-02 10:00:00 UTC, not the range asked/
  );
});
