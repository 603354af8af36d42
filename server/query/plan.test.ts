/** The planner's tiling and the covered range, without a database. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { RollupInfo } from './catalog';
import { levels, plan, tiersOf, type PlanInput, type RollupState } from './plan';
import {
  chooseBucket,
  coverRange,
  movingStep,
  coveredInHours,
  differsFromAsked,
  points,
  DAY_MS as D,
  HOUR_MS as H,
  MINUTE_MS as M,
} from './range';
import { FULL_DIMS, NOW, rollup } from './testing';

const FULL = FULL_DIMS;
const ROLLUPS: RollupInfo[] = [
  rollup('metrics_hourly', H, FULL),
  rollup('metrics_daily', D, FULL),
  rollup('metrics_hourly_total', H, []),
  rollup('metrics_daily_total', D, []),
  rollup('metrics_hourly_by_rule', H, ['rule_id', 'rule_category', 'metric_type']),
  rollup('metrics_daily_by_rule', D, ['rule_id', 'rule_category', 'metric_type']),
  rollup('metrics_minute_total', M, []),
  rollup('metrics_minute_by_rule', M, ['rule_id', 'rule_category', 'metric_type']),
];
const allMaterialized = (watermark = NOW - 2 * M): Map<string, RollupState> =>
  new Map(
    ROLLUPS.map((r) => [r.name, { watermark: Math.floor(watermark / r.bucketMs) * r.bucketMs, retainedFrom: null }])
  );

test('a range ending now: both ends moved forward to a whole minute, the span kept; under an hour, to at most a sixtieth of it', () => {
  assert.deepEqual(coverRange({ from: NOW - H, to: NOW }, NOW), {
    from: Date.parse('2026-06-10T12:38:00Z'),
    to: Date.parse('2026-06-10T13:38:00Z'),
  });
  assert.deepEqual(coverRange({ from: 0, to: H }, H), { from: 0, to: H }, 'whole minutes stay as they are');
  assert.deepEqual(
    coverRange({ from: 10_300, to: 40_300 }, 40_300),
    { from: 11_000, to: 41_000 },
    'under a minute: whole seconds'
  );
  // A new user's 70-second range, asked 6 s after its end: moved by a minute, it lost 30 s of the
  // 70 asked. Now to whole seconds.
  assert.deepEqual(coverRange({ from: 150_500, to: 220_700 }, 226_000), { from: 151_000, to: 221_000 });
  assert.deepEqual(coverRange({ from: 100, to: 15 * M + 100 }, 15 * M + 100), { from: 15_000, to: 15 * M + 15_000 });
  assert.deepEqual([movingStep(H - 1), movingStep(H), movingStep(5 * M), movingStep(M - 1)], [30_000, M, 5_000, 1000]);
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 4e12 }), fc.integer({ min: 1, max: 400 * D }), (from, span) => {
      const c = coverRange({ from, to: from + span }, from + span - 1000);
      const step = movingStep(span);
      assert.ok(step === 1000 || step * 60 <= span, 'a sixtieth of the span at most, a second at least');
      assert.ok(c.from % step === 0 && c.to % step === 0 && c.to > c.from);
      assert.ok(Math.abs(c.from - from) < step && Math.abs(c.to - from - span) < step, 'within a step of each end');
      assert.ok(span < H || step === M, 'a minute from an hour up');
    })
  );
  assert.equal(differsFromAsked({ from: 0, to: H }, { from: 0, to: H }), false);
  assert.equal(differsFromAsked({ from: 0, to: H }, { from: 0, to: H - 300 }), true, 'rows in 300 ms change a count');
  assert.equal(differsFromAsked({ from: 0, to: H }, { from: 1500, to: H }), true);
});

test('seconds later, "last 24 hours" is the same covered range for as long as the minute lasts', () => {
  const a = coverRange({ from: NOW - D, to: NOW }, NOW);
  const b = coverRange({ from: NOW - D + 15_000, to: NOW + 15_000 }, NOW + 15_000);
  assert.deepEqual(a, b);
});

test('a range given relative to now ("to: now-5m") moves like one ending now: whole minutes, the same for the minute', () => {
  const asked = (at: number) => ({ from: at - D - 5 * M, to: at - 5 * M, movesWithNow: true });
  const a = coverRange(asked(NOW), NOW);
  assert.equal(a.to % M, 0);
  assert.equal(a.to - a.from, D);
  assert.ok(a.to >= NOW - 5 * M && a.to < NOW - 4 * M, 'moved forward less than a minute');
  const later = NOW - (NOW % M) + M - 1; // the minute's last millisecond
  assert.deepEqual(coverRange(asked(later), later), a);
  // The same instants sent as numbers: covered as asked (an absolute range, a zoomed graph).
  const { movesWithNow: _, ...absolute } = asked(NOW);
  assert.deepEqual(coverRange(absolute, NOW), absolute);
});

test('a range that ended over a minute ago is covered exactly as asked, to the millisecond', () => {
  const asked = { from: NOW - 3 * H - 1234, to: NOW - H + 999 };
  assert.deepEqual(coverRange(asked, NOW), asked);
  assert.deepEqual(
    coverRange({ from: NOW - 2 * H, to: NOW - 30_000 }, NOW),
    { from: NOW - 2 * H - (NOW % M) + M, to: NOW - (NOW % M) + M },
    'ended 30 s ago: still moving'
  );
  const { pieces, live } = plan({ range: asked, fields: [], rollups: ROLLUPS, state: allMaterialized(), pending: [] });
  assert.equal(live, false);
  const raw = pieces.filter((p) => !p.rollup);
  assert.deepEqual(
    raw.map((p) => [p.from, p.to]),
    [
      [asked.from, asked.from - (asked.from % M) + M],
      [asked.to - (asked.to % M), asked.to],
    ],
    'the seconds at each end from raw rows'
  );
});

test('the pieces tile the range exactly: coarse tiers inside, finer at the ends, raw past the watermark', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 40 * D }),
      fc.integer({ min: M, max: 40 * D }),
      fc.integer({ min: 0, max: 3 * H }),
      fc.constantFrom([], ['ruleId'], ['parserId'], ['ruleId', 'metricType']) as fc.Arbitrary<
        Array<'ruleId' | 'parserId' | 'metricType'>
      >,
      (ago, span, lag, fields) => {
        const range = coverRange({ from: NOW - ago - span, to: NOW - ago }, NOW);
        const state = allMaterialized(NOW - lag);
        const { pieces } = plan({ range, fields, rollups: ROLLUPS, state, pending: [] });
        let cursor = range.from;
        for (const p of pieces) {
          assert.equal(p.from, cursor, 'contiguous');
          assert.ok(p.to > p.from);
          if (p.rollup) {
            assert.equal(p.from % p.rollup.bucketMs, 0, 'whole buckets');
            assert.equal(p.to % p.rollup.bucketMs, 0, 'whole buckets');
            assert.ok(p.to <= state.get(p.rollup.name)!.watermark!, 'below the watermark');
          }
          cursor = p.to;
        }
        assert.equal(cursor, range.to, 'covers the whole range');
        const raw = pieces.filter((p) => !p.rollup).reduce((n, p) => n + p.to - p.from, 0);
        if (fields.includes('parserId')) {
          return;
        } // no minute rollup holds parsers
        assert.ok(
          raw <= Math.max(0, range.to - (NOW - lag - M)) + 2 * M,
          `raw rows only at the live edge (${raw / M} min)`
        );
      }
    )
  );
});

test('a 30-day question reads days inside, hours and minutes at the ends, raw at the edge', () => {
  const range = coverRange({ from: NOW - 30 * D, to: NOW }, NOW);
  const { pieces, live } = plan({ range, fields: [], rollups: ROLLUPS, state: allMaterialized(), pending: [] });
  assert.deepEqual(tiersOf(pieces), ['daily_total', 'hourly_total', 'minute_total', 'raw']);
  assert.equal(live, true);
  const days = pieces.filter((p) => p.rollup?.bucketMs === D);
  assert.equal(days.length, 1);
  assert.equal(pieces.filter((p) => !p.rollup).length, 1, 'raw rows only at the end');
});

test('a bucketed plan also tiles its range without buckets (wholeRange), as a plan without a width does', () => {
  const range = coverRange({ from: NOW - 30 * D, to: NOW }, NOW);
  const input = { range, fields: ['ruleId'] as const, rollups: ROLLUPS, state: allMaterialized(), pending: [] };
  const byMinute = plan({ ...input, fields: [...input.fields], bucketMs: 2 * M });
  const whole = plan({ ...input, fields: [...input.fields] });
  assert.ok(
    byMinute.pieces.every((p) => !p.rollup || p.rollup.bucketMs <= 2 * M),
    'the buckets read minute rows'
  );
  assert.deepEqual(byMinute.wholeRange, whole.pieces);
  assert.ok(
    byMinute.wholeRange.some((p) => p.rollup?.bucketMs === D),
    'the whole range reads days'
  );
  assert.equal(whole.wholeRange, whole.pieces, 'a plan without a width is its own');
});

test('a past range read from raw rows (no rollup holds its fields at its width) is not live; one past every watermark is', () => {
  // Five-minute points by parser: only hourly and daily rollups hold parser_id.
  const ten = Math.floor((NOW - 10 * H) / M) * M;
  const old = plan({
    range: { from: ten - 6 * H, to: ten },
    fields: ['parserId'],
    rollups: ROLLUPS,
    state: allMaterialized(),
    pending: [],
    bucketMs: 5 * M,
  });
  assert.deepEqual(tiersOf(old.pieces), ['raw']);
  assert.equal(old.live, false, 'rows arriving there are below the watermarks: tracked as changes');
  const recent = plan({
    range: { from: ten, to: NOW },
    fields: ['parserId'],
    rollups: ROLLUPS,
    state: allMaterialized(),
    pending: [],
    bucketMs: 5 * M,
  });
  assert.equal(recent.live, true);
});

test('a settled past range does not read the live edge', () => {
  const range = { from: NOW - 4 * D - (NOW % M), to: NOW - 2 * D - (NOW % M) };
  const { pieces, live } = plan({ range, fields: ['ruleId'], rollups: ROLLUPS, state: allMaterialized(), pending: [] });
  assert.equal(live, false);
  assert.ok(
    pieces.every((p) => p.rollup),
    'no raw rows'
  );
  assert.deepEqual(tiersOf(pieces), ['daily_by_rule', 'hourly_by_rule', 'minute_by_rule']);
});

test('buckets holding changes the rollups have not absorbed are read from finer tiers and raw rows', () => {
  const range = { from: NOW - 5 * D - (NOW % D), to: NOW - 2 * D - (NOW % D) };
  const change = { from: range.from + D + 3 * H + 17 * M + 5000, to: range.from + D + 3 * H + 17 * M + 9000 };
  const { pieces } = plan({ range, fields: [], rollups: ROLLUPS, state: allMaterialized(), pending: [change] });
  for (const p of pieces) {
    if (p.rollup) {
      assert.ok(
        p.to <= Math.floor(change.from / p.rollup.bucketMs) * p.rollup.bucketMs ||
          p.from >= Math.floor(change.to / p.rollup.bucketMs) * p.rollup.bucketMs + p.rollup.bucketMs,
        `${p.rollup.name} avoids the changed bucket`
      );
    }
  }
  const raw = pieces.filter((p) => !p.rollup);
  assert.deepEqual(
    raw.map((p) => [p.from, p.to]),
    [[change.from - (change.from % M), change.from - (change.from % M) + M]],
    'only the changed minute is read raw'
  );
});

test("the range's partial first day, whole: named when a daily rollup holds it (materialized, kept, unchanged) and the range reaches past it", () => {
  const range = coverRange({ from: NOW - 7 * D, to: NOW }, NOW);
  const day = range.from - (range.from % D);
  const input: PlanInput = { range, fields: ['ruleId'], rollups: ROLLUPS, state: allMaterialized(), pending: [] };
  const { firstDay, pieces } = plan(input);
  assert.deepEqual(firstDay && { rollup: firstDay.rollup?.name, from: firstDay.from, to: firstDay.to }, {
    rollup: 'metrics_daily_by_rule',
    from: day,
    to: day + D,
  });
  assert.ok(
    pieces.some((p) => p.from < day + D && p.rollup?.bucketMs !== D),
    'the pieces themselves still read the partial day at finer widths'
  );
  const none = (why: string, changed: Partial<PlanInput>) =>
    assert.equal(plan({ ...input, ...changed }).firstDay, null, why);
  none('a range starting at midnight has no partial first day', { range: { from: day + D, to: range.to } });
  none('a range within one day', { range: { from: day + H, to: day + D - H } });
  none('a range ending with its first day', { range: { from: day + H, to: day + D } });
  none('a change the daily rollup has not absorbed', { pending: [{ from: day + 3 * M, to: day + 4 * M }] });
  const state = allMaterialized();
  state.set('metrics_daily_by_rule', {
    watermark: state.get('metrics_daily_by_rule')!.watermark,
    retainedFrom: day + D,
  });
  none('a day the daily rollup no longer keeps', { state });
  none('before anything is materialized', { state: new Map() });
  assert.ok(
    plan({ ...input, pending: [{ from: day + D + 3 * M, to: day + D + 4 * M }] }).firstDay,
    'a change in a later day does not matter'
  );
});

test('minutes older than the minute tier keeps come from raw rows; nothing materialized → all raw', () => {
  const state = allMaterialized();
  state.set('metrics_minute_total', {
    watermark: state.get('metrics_minute_total')!.watermark,
    retainedFrom: NOW - 2 * D,
  });
  const range = { from: NOW - 6 * D - (NOW % M), to: NOW - 4 * D - (NOW % M) };
  const { pieces } = plan({ range, fields: [], rollups: ROLLUPS, state, pending: [] });
  assert.deepEqual(tiersOf(pieces), ['daily_total', 'hourly_total', 'raw']);
  const nothing = plan({ range, fields: [], rollups: ROLLUPS, state: new Map(), pending: [] });
  assert.deepEqual(
    nothing.pieces.map((p) => p.rollup),
    [null]
  );
});

/** A range of `ms` from the epoch: on every grid, so its points are span / width. */
const spanOf = (ms: number) => ({ from: 0, to: ms });

test("timeseries buckets follow Grafana's interval and use only tiers that divide them", () => {
  const widths = levels(ROLLUPS, []).map((r) => r.bucketMs);
  assert.equal(
    chooseBucket(spanOf(7 * D), { intervalMs: H, maxDataPoints: 1000, granularity: 'auto' }, widths).bucketMs,
    H,
    '7 days at 1 h: hourly points'
  );
  assert.equal(
    chooseBucket(spanOf(90 * D), { intervalMs: H, maxDataPoints: 1000, granularity: 'auto' }, widths).bucketMs,
    3 * H,
    '90 days: as many as maxDataPoints allows'
  );
  assert.equal(
    chooseBucket(spanOf(D), { intervalMs: M, maxDataPoints: 1000, granularity: 'auto' }, widths).bucketMs,
    2 * M
  );
  assert.equal(
    chooseBucket(spanOf(D), { intervalMs: M, maxDataPoints: 1000, granularity: 'hourly' }, widths).bucketMs,
    H
  );
  assert.equal(chooseBucket(spanOf(10 * D), { intervalMs: M, granularity: 'daily' }, widths).bucketMs, D);
  assert.equal(
    chooseBucket(spanOf(H), { intervalMs: 1, granularity: 'auto' }, widths).bucketMs,
    M,
    'never finer than a minute'
  );
  assert.equal(
    chooseBucket(spanOf(30 * D), { intervalMs: M, granularity: 'auto' }, [H, D]).bucketMs,
    H,
    'no minute rollup for these dimensions: hourly for long spans'
  );
  assert.equal(
    chooseBucket(spanOf(2 * H), { intervalMs: M, granularity: 'auto' }, [H, D]).bucketMs,
    M,
    'short spans: minutes from raw rows'
  );
  // A range off the grid touches one bucket more than span / width: never more points than maxDataPoints.
  for (const [from, to, maxDataPoints] of [
    [1795222800000, 1795237200000, 10],
    [1796363483489, 1796380408740, 10],
    [1795562575627, 1795575765133, 10],
    [7 * M + 30_000, 7 * M + 30_000 + 7 * D, 168],
    [123_456, 123_456 + D, 1000],
    [5 * M, 5 * M + H, 1],
  ]) {
    const b = chooseBucket({ from, to }, { maxDataPoints, granularity: 'auto' }, widths).bucketMs;
    const touched = points({ from, to }, b);
    assert.ok(touched <= Math.max(maxDataPoints, 2), `${touched} points of ${b} ms for maxDataPoints ${maxDataPoints}`);
    // …and not coarser than that needs: the next finer multiple of the tier would not fit.
    const tier = [...widths, M].filter((w) => b % w === 0).sort((x, y) => y - x)[0];
    if (b > tier && maxDataPoints > 1) {
      assert.ok(
        points({ from, to }, b - tier) > maxDataPoints || b - tier < (to - from) / maxDataPoints,
        `${b} ms is coarser than needed`
      );
    }
  }
  assert.equal(
    chooseBucket({ from: 0, to: 7 * D }, { maxDataPoints: 168, granularity: 'auto' }, widths).bucketMs,
    H,
    'a range on the grid keeps exactly maxDataPoints points'
  );
  const range = coverRange({ from: NOW - D, to: NOW }, NOW);
  const { pieces } = plan({
    range,
    fields: [],
    rollups: ROLLUPS,
    state: allMaterialized(),
    pending: [],
    bucketMs: 2 * M,
  });
  assert.ok(
    pieces.every((p) => !p.rollup || p.rollup.bucketMs === M),
    'only minute rollups divide 2-minute buckets'
  );
});

test('of two rollups holding the dimensions, the one measured clearly smaller is read; fewest dimensions otherwise', () => {
  const byCategory = ['rule_category', 'metric_type', 'source_type', 'status'];
  const rollups = [
    ...ROLLUPS,
    rollup('metrics_daily_by_category', D, byCategory),
    rollup('metrics_hourly_by_category', H, byCategory),
  ];
  const daily = (rows?: Record<string, number>) =>
    levels(rollups, ['ruleCategory'], null, rows && ((name) => rows[name]))
      .filter((r) => r.bucketMs === D)
      .map((r) => r.name);
  assert.deepEqual(
    daily(),
    ['metrics_daily_by_rule'],
    'unmeasured: fewest dimensions (3 of by rule, 4 of by category)'
  );
  assert.deepEqual(daily({ metrics_daily_by_rule: 1000, metrics_daily_by_category: 380 }), [
    'metrics_daily_by_category',
  ]);
  assert.deepEqual(
    daily({ metrics_daily_by_rule: 1000, metrics_daily_by_category: 850 }),
    ['metrics_daily_by_rule'],
    'not clearly smaller: kept (no switching back and forth on noise)'
  );
  assert.deepEqual(daily({ metrics_daily_by_rule: 300, metrics_daily_by_category: 380 }), ['metrics_daily_by_rule']);
  assert.deepEqual(
    daily({ metrics_daily_by_category: 10 }),
    ['metrics_daily_by_rule'],
    'the usual choice unmeasured: kept'
  );
  assert.deepEqual(
    daily({ metrics_daily_by_rule: 1000, metrics_daily_by_category: 380, metrics_daily: 100 }),
    ['metrics_daily'],
    'the smallest of all'
  );
  assert.deepEqual(
    levels(rollups, ['ruleId'], null, () => 1)
      .filter((r) => r.bucketMs === D)
      .map((r) => r.name),
    ['metrics_daily_by_rule'],
    'only rollups holding every dimension asked'
  );
  // The plan reads what levels chose.
  const state = new Map(rollups.map((r) => [r.name, { watermark: NOW - (NOW % D), retainedFrom: null }]));
  const { pieces } = plan({
    range: { from: NOW - 10 * D, to: NOW - 2 * D },
    fields: ['ruleCategory'],
    rollups,
    state,
    pending: [],
    rowsPerBucket: (name) => ({ metrics_daily_by_rule: 1000, metrics_daily_by_category: 380 })[name],
  });
  assert.ok(pieces.some((p) => p.rollup?.name === 'metrics_daily_by_category'));
  assert.ok(!pieces.some((p) => p.rollup?.name === 'metrics_daily_by_rule'));
});

test('of rollups of one width, one kept for less time never replaces one kept longer: a 30-day edge reads minutes, not raw rows', () => {
  const byType = { ...rollup('metrics_minute_by_type', M, ['metric_type', 'status']), retentionMs: 7 * D };
  const byCategoryType = rollup('metrics_minute_by_category_type', M, ['rule_category', 'metric_type']);
  const rollups = [...ROLLUPS, byType, byCategoryType];
  const minute = (rows?: Record<string, number>) =>
    levels(rollups, ['metricType'], null, rows && ((name) => rows[name]))
      .filter((r) => r.bucketMs === M)
      .map((r) => r.name);
  assert.deepEqual(minute(), ['metrics_minute_by_category_type'], 'as many dimensions: the one kept longer');
  assert.deepEqual(
    minute({ metrics_minute_by_type: 7, metrics_minute_by_category_type: 30 }),
    ['metrics_minute_by_category_type'],
    'measured smaller but kept 7 days: not chosen'
  );
  // Both kept as long: the smaller is read, as before.
  const longer = rollups.map((r) => (r === byType ? { ...byType, retentionMs: undefined } : r));
  assert.deepEqual(
    levels(
      longer,
      ['metricType'],
      null,
      (name) => ({ metrics_minute_by_type: 7, metrics_minute_by_category_type: 30 })[name]
    )
      .filter((r) => r.bucketMs === M)
      .map((r) => r.name),
    ['metrics_minute_by_type']
  );
  // A question starting 30 days back, mid-hour, reads its first minutes from the minute rollup.
  // By type holds its last 7 days only: were it chosen, the month-old minutes would be raw rows.
  const state = new Map(
    rollups.map((r) => [
      r.name,
      { watermark: NOW - (NOW % M), retainedFrom: r === byType ? NOW - (NOW % M) - 7 * D : null },
    ])
  );
  const from = NOW - 30 * D - (NOW % M);
  const { pieces } = plan({
    range: { from, to: NOW - (NOW % M) },
    fields: ['metricType'],
    rollups,
    state,
    pending: [],
  });
  const head = pieces.find((p) => p.from === from)!;
  assert.equal(head.rollup?.name, 'metrics_minute_by_category_type');
  assert.ok(!pieces.some((p) => !p.rollup && p.to <= NOW - D), 'no raw rows a month back');
});

test('a width between minute, hour and day is read only where it holds fewer rows per unit of time than the finer level', () => {
  const BY_RULE = ['rule_id', 'rule_category', 'metric_type'];
  const rollups = [
    ...ROLLUPS,
    rollup('metrics_10min_by_rule', 10 * M, BY_RULE),
    rollup('metrics_6h_by_rule', 6 * H, BY_RULE),
  ];
  const names = (fields: Parameters<typeof levels>[1], rows?: Record<string, number>) =>
    levels(rollups, fields, null, rows && ((name) => rows[name])).map((r) => r.name);
  assert.deepEqual(
    names(['ruleId']),
    [
      'metrics_daily_by_rule',
      'metrics_6h_by_rule',
      'metrics_hourly_by_rule',
      'metrics_10min_by_rule',
      'metrics_minute_by_rule',
    ],
    'per rule: every width'
  );
  assert.deepEqual(
    names([]),
    ['metrics_daily_total', 'metrics_hourly_total', 'metrics_minute_total'],
    'unfiltered, unmeasured: by rule holds every dimension of the totals and more'
  );
  const measured = {
    metrics_minute_total: 1,
    metrics_10min_by_rule: 450,
    metrics_hourly_total: 1,
    metrics_6h_by_rule: 500,
    metrics_daily_total: 1,
  };
  assert.deepEqual(names([], measured), ['metrics_daily_total', 'metrics_hourly_total', 'metrics_minute_total']);
  assert.deepEqual(
    names([], { ...measured, metrics_10min_by_rule: 5 }),
    ['metrics_daily_total', 'metrics_hourly_total', 'metrics_10min_by_rule', 'metrics_minute_total'],
    'measured sparser per minute than the minute total: read'
  );
  assert.deepEqual(
    names([], { metrics_10min_by_rule: 450 }),
    ['metrics_daily_total', 'metrics_hourly_total', 'metrics_10min_by_rule', 'metrics_minute_total'],
    'one of the two unmeasured: kept, as before'
  );

  assert.deepEqual(
    names(['ruleId'], { metrics_minute_by_rule: 0, metrics_10min_by_rule: 450, metrics_hourly_by_rule: 500 }),
    names(['ruleId']),
    'a quiet spell measured in the finer level drops no width holding the same dimensions'
  );
  // Other dimensions than the finer level's, not all of them: densities still decide.
  const BY_TYPE = ['metric_type', 'status'];
  const withTypes = [
    ...rollups,
    rollup('metrics_minute_by_type', M, BY_TYPE),
    rollup('metrics_hourly_by_type', H, BY_TYPE),
    rollup('metrics_daily_by_type', D, BY_TYPE),
  ];
  const typeLevels = (rows?: Record<string, number>) =>
    levels(withTypes, ['metricType'], null, rows && ((name) => rows[name])).map((r) => r.name);
  const byType = ['metrics_daily_by_type', 'metrics_hourly_by_type', 'metrics_minute_by_type'];
  assert.deepEqual(typeLevels(), byType, 'a metric-type question, unmeasured');
  assert.deepEqual(
    typeLevels({ ...measured, metrics_minute_by_type: 12, metrics_hourly_by_type: 14, metrics_daily_by_type: 15 }),
    byType,
    'a metric-type question, measured'
  );
  assert.deepEqual(
    names([], { ...measured, metrics_minute_total: 0 }),
    ['metrics_daily_total', 'metrics_hourly_total', 'metrics_10min_by_rule', 'metrics_minute_total'],
    'the finer level measured empty (a quiet spell): kept, a density of nothing decides nothing'
  );
  // Hours are never given up for a minute tier that keeps 7 days, however its density reads.
  const kept7Days = { ...rollup('metrics_minute_total', M, []), retentionMs: 7 * D };
  const fullAndMinute = [rollup('metrics_hourly', H, FULL), kept7Days];
  for (const rows of [undefined, { metrics_hourly: 5000, metrics_minute_total: 0 }]) {
    assert.deepEqual(
      levels(fullAndMinute, [], null, rows && ((name: string) => (rows as Record<string, number>)[name])).map(
        (r) => r.name
      ),
      ['metrics_hourly', 'metrics_minute_total'],
      JSON.stringify(rows)
    );
  }

  // A 7-day question per rule: days inside, then 6 hours, hours, 10 minutes and minutes toward the ends, tiled exactly.
  const state = new Map(rollups.map((r) => [r.name, { watermark: NOW - (NOW % M) - M, retainedFrom: null }]));
  const range = { from: NOW - 7 * D, to: NOW - (NOW % M) - M };
  const { pieces } = plan({ range, fields: ['ruleId'], rollups, state, pending: [] });
  assert.deepEqual(tiersOf(pieces), [
    'daily_by_rule',
    '6h_by_rule',
    'hourly_by_rule',
    '10min_by_rule',
    'minute_by_rule',
    'raw',
  ]);
  const sorted = [...pieces].sort((a, b) => a.from - b.from);
  assert.equal(sorted[0].from, range.from);
  assert.equal(sorted[sorted.length - 1].to, range.to);
  sorted.slice(1).forEach((p, i) => assert.equal(p.from, sorted[i].to, 'pieces meet'));
  for (const p of pieces.filter((x) => x.rollup)) {
    assert.ok(p.from % p.rollup!.bucketMs === 0 && p.to % p.rollup!.bucketMs === 0, `${p.rollup!.name} aligned`);
  }
  const { pieces: unfiltered } = plan({ range, fields: [], rollups, state, pending: [] });
  assert.ok(!tiersOf(unfiltered).some((t) => t.includes('by_rule')), `unfiltered: ${tiersOf(unfiltered)}`);
});

test("a rollup's buckets near its retention's edge are read from other tiers, whatever retained_from the plan last read", () => {
  // The minute tier kept 7 days; its retained_from as read before another instance's refresh dropped more.
  const minute = {
    ...rollup('metrics_minute_by_rule', M, ['rule_id', 'rule_category', 'metric_type']),
    retentionMs: 7 * D,
  };
  const rollups = [rollup('metrics_hourly_by_rule', H, ['rule_id', 'rule_category', 'metric_type']), minute];
  const edge = NOW - 7 * D;
  const state = new Map<string, RollupState>([
    ['metrics_hourly_by_rule', { watermark: NOW - H, retainedFrom: null }],
    ['metrics_minute_by_rule', { watermark: NOW - M, retainedFrom: Math.floor((edge - 5 * M) / M) * M }],
  ]);
  const at = (from: number, to: number) =>
    plan({ range: { from, to }, fields: ['ruleId'], rollups, state, pending: [], now: NOW }).pieces;
  const nearEdge = at(Math.floor(edge / M) * M, Math.floor(edge / M) * M + 8 * M);
  assert.ok(
    nearEdge.every((p) => p.rollup?.name !== 'metrics_minute_by_rule'),
    JSON.stringify(nearEdge.map((p) => p.rollup?.name ?? 'raw'))
  );
  const later = at(Math.floor(edge / M) * M + 20 * M, Math.floor(edge / M) * M + 28 * M);
  assert.deepEqual(
    later.map((p) => p.rollup?.name),
    ['metrics_minute_by_rule'],
    'past the margin the minute tier answers'
  );
});

test('a settled range whose ends lie before the oldest raw rows is covered in whole hours, and says why', () => {
  const kept = NOW - 90 * D;
  const asked = { from: kept - 5 * D + 20 * M, to: kept - 4 * D + 10 * M };
  const covered = coverRange(asked, NOW, kept);
  assert.deepEqual(covered, { from: Math.floor(asked.from / H) * H, to: Math.ceil(asked.to / H) * H });
  assert.equal(coveredInHours(covered, asked, kept), true);
  const later = { from: kept + 20 * M, to: kept + D + 10 * M };
  assert.deepEqual(coverRange(later, NOW, kept), later, 'after the oldest raw rows: as asked');
  assert.equal(coveredInHours(later, later, kept), false);
  const across = { from: kept - 20 * M, to: kept + D + 10 * M };
  assert.deepEqual(coverRange(across, NOW, kept), { from: Math.floor(across.from / H) * H, to: across.to });
  assert.deepEqual(coverRange(asked, NOW, null), asked, 'raw rows kept whole: as asked');
  // "Last 90 days" asked an instant before the oldest raw row (computed a moment later): its
  // start moves to the next whole minute, past that row, not to an hour.
  const ninety = { from: NOW - 90 * D - 30_000, to: NOW };
  const keptNow = NOW - 90 * D - 29_990;
  const moved = coverRange(ninety, NOW, keptNow);
  assert.deepEqual(moved, { from: Math.ceil(ninety.from / M) * M, to: Math.ceil(NOW / M) * M });
  assert.equal(coveredInHours(moved, ninety, keptNow), false, 'read in whole minutes, not hours');
});
