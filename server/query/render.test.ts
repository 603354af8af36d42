/** Rendering: the JSON text of a cached answer equals the objects' JSON, and the range notice follows the asked range. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Answer } from './executor';
import type { NormalizedQuery } from './normalize';
import { differsFromAsked } from './range';
import {
  coveredRangeNotice,
  joinResults,
  offPanelPointNotice,
  renderedBytes,
  renderFrames,
  renderInTurns,
  renderResponse,
  resultMember,
  withMeta,
} from './render';

const answer: Answer = {
  frames: [
    { schema: { name: 'stats', fields: [{ name: 'executionCount', type: 'number' }] }, data: { values: [[42]] } },
  ],
  tiers: ['hourly_total', 'raw'],
  watermark: 1000,
  touchesLiveEdge: false,
  sql: 'SELECT 1',
  notices: [],
  computedAt: 200_000, // after the covered range (60_000–180_000): its rows are all in it
};
const q = (asked: { from: number; to: number }, coarserThanAskedMs: number | null = null): NormalizedQuery => ({
  kind: 'stats',
  filters: {},
  groupBy: null,
  metrics: [],
  limit: 0,
  sortBy: null,
  differsFromAsked: differsFromAsked({ from: 60_000, to: 180_000 }, asked),
  inWholeHours: false,
  movingStepMs: null,
  range: { from: 60_000, to: 180_000 },
  bucketMs: coarserThanAskedMs === null ? null : 3_600_000,
  coarserThanAskedMs,
  coarserBecause: coarserThanAskedMs === null ? null : 'rollups',
  fields: coarserThanAskedMs === null ? [] : ['parserId'],
});

test('rendered text equals JSON.stringify of the frames with meta, for every refId and cache status', () => {
  for (const cache of ['hit', 'miss', 'stale', 'bypass'] as const) {
    for (const asked of [
      { from: 60_000, to: 180_000 },
      { from: 30_001, to: 150_001 },
    ]) {
      const text = renderFrames(answer, q(asked), cache, 'B"x');
      assert.deepEqual(JSON.parse(text), { frames: withMeta(answer, q(asked), cache, 'B"x') });
    }
  }
});

test('a notice names the covered range when it differs from the asked one, by as little as a millisecond, and only then', () => {
  const notices = (asked: { from: number; to: number }) =>
    withMeta(answer, q(asked), 'hit', 'A')[0].schema.meta?.notices ?? [];
  assert.deepEqual(notices({ from: 60_000, to: 180_000 }), []);
  assert.equal(notices({ from: 60_000, to: 179_700 }).length, 1);
  const [n] = notices({ from: 30_001, to: 150_001 });
  assert.equal(n.severity, 'info');
  assert.match(
    n.text,
    /Covered 1970-01-01 00:01:00 – 00:03:00 UTC|Covered 1970-01-01 00:01:00 – 1970-01-01 00:03:00 UTC/
  );
  const custom = withMeta(answer, q({ from: 30_001, to: 150_001 }), 'stale', 'A')[0].schema.meta!.custom!;
  assert.deepEqual(custom.coveredRange, { from: 60_000, to: 180_000 });
  assert.equal(custom.cache, 'stale');
  assert.equal(custom.computedAt, 200_000);
});

test('points wider than asked because they keep to the grid of the widest rollup not wider say so, and that each point counts its width', () => {
  const totals = {
    ...q({ from: 60_000, to: 180_000 }, 15 * 60_000),
    bucketMs: 20 * 60_000,
    coarserBecause: 'totals' as const,
  };
  const [notice] = withMeta(answer, totals, 'hit', 'A')[0].schema.meta!.notices!;
  assert.equal(
    notice.text,
    "Points are 20 minutes apart, not the 15 minutes asked: points are on the grid of the widest rollup at or under the width asked (a whole multiple of its width, and no more points than asked), and each point's counts are totals over its 20 minutes (the first and last point's, over the part of it in the range)."
  );
  const minute = { ...totals, bucketMs: 60_000, coarserThanAskedMs: 1000, coarserBecause: 'minute' as const };
  assert.equal(
    withMeta(answer, minute, 'hit', 'A')[0].schema.meta!.notices![0].text,
    "Points are 1 minute apart, not the 1 second asked: a minute is the finest width points have, and each point's counts are totals over its 1 minute (the first and last point's, over the part of it in the range)."
  );
});

test('a notice says when points are further apart than asked, and the answer shared by both asks renders each its own', () => {
  const range = { from: 60_000, to: 180_000 };
  const notices = (coarser: number | null) =>
    JSON.parse(renderResponse(answer, q(range, coarser), 'hit', 'A').toString()).results.A.frames[0].schema.meta
      .notices ?? [];
  assert.deepEqual(notices(null), []);
  assert.deepEqual(notices(600_000), [
    {
      severity: 'info',
      text: 'Points are 1 hour apart, not the 10 minutes asked: no finer rollup holds parserId; over 6 hours or less, raw rows are read by the minute.',
    },
    {
      // This fixture's hour is wider than its two minutes of range, and starts before them.
      severity: 'warning',
      text: 'Points are 1 hour apart, wider than the range: a point sits at the start of its 1 hour, so the first, at 1970-01-01 00:00:00 UTC, is before the range starts, off a panel showing the range. Its counts are over the part of its 1 hour inside the range; a narrower interval shows it.',
    },
  ]);
  assert.match(notices(90_000)[0].text, /not the 90 seconds asked/);
  assert.deepEqual(notices(null), [], 'the other variant again: no notice');
});

test('points wider than the range are said to lie off the panel only when the first starts before the range', () => {
  const H = 3_600_000;
  assert.equal(offPanelPointNotice({ from: 10 * H, to: 12 * H }, H), null, 'narrower than the range');
  assert.equal(offPanelPointNotice({ from: 10 * H, to: 12 * H }, null), null, 'no points');
  assert.equal(offPanelPointNotice({ from: 24 * H, to: 30 * H }, 24 * H), null, 'wider, but starting with the range');
  assert.equal(offPanelPointNotice({ from: 10 * H, to: 12 * H }, 2 * H), null, 'as wide as the range');
  const said = offPanelPointNotice({ from: 30 * H, to: 32 * H }, 24 * H);
  assert.equal(said?.severity, 'warning');
  assert.match(
    said!.text,
    /^Points are 1 day apart, wider than the range: .* the first, at 1970-01-02 00:00:00 UTC, is before/
  );
});

test('a one-query response body is the JSON of {results: {refId: {frames}}} in UTF-8, rendered once per variant and refId', () => {
  const moving = { from: 30_001, to: 150_001 };
  for (const cache of ['hit', 'stale'] as const) {
    for (const refId of ['A', 'B"x', 'é–ü']) {
      const body = renderResponse(answer, q(moving), cache, refId);
      assert.deepEqual(JSON.parse(body.toString('utf8')), {
        results: { [refId]: { frames: withMeta(answer, q(moving), cache, refId) } },
      });
      assert.equal(renderResponse(answer, q(moving), cache, refId), body, 'the same bytes again');
      assert.deepEqual(JSON.parse(`{${resultMember(body).toString('utf8')}}`), {
        [refId]: { frames: withMeta(answer, q(moving), cache, refId) },
      });
    }
  }
  const settled = renderResponse(answer, q({ from: 60_000, to: 180_000 }), 'hit', 'A');
  assert.equal(
    JSON.parse(settled.toString()).results.A.frames[0].schema.meta.notices,
    undefined,
    'no notice in the other variant'
  );
  // A kept body is memory of its own: on the 8 KB slab small Buffers share, it held it all alive.
  assert.equal(settled.buffer.byteLength, settled.length, 'not a view of a shared slab');
  // Any number of refIds is answered right, though only a few are kept per variant.
  for (let i = 0; i < 20; i++) {
    assert.equal(
      JSON.parse(renderResponse(answer, q(moving), 'miss', `R${i}`).toString()).results[`R${i}`].frames[0].schema.refId,
      `R${i}`
    );
  }
});

test("results join into one body, with the request's error first when it has one", () => {
  const a = resultMember(renderResponse(answer, q({ from: 60_000, to: 180_000 }), 'hit', 'A'));
  const b = Buffer.from('"B":{"frames":[],"error":"busy","status":503}');
  assert.deepEqual(JSON.parse(joinResults([a, b]).toString()), {
    results: {
      A: { frames: withMeta(answer, q({ from: 60_000, to: 180_000 }), 'hit', 'A') },
      B: { frames: [], error: 'busy', status: 503 },
    },
  });
  assert.deepEqual(JSON.parse(joinResults([b], 'the service is busy').toString()), {
    error: 'the service is busy',
    results: { B: { frames: [], error: 'busy', status: 503 } },
  });
  assert.equal(joinResults([]).toString(), '{"results":{}}');
});

test('a large answer rendered a slice per loop turn is the same body renderResponse gives, and is then reused', async () => {
  const times = Array.from({ length: 900 }, (_, i) => i * 3_600_000);
  const large: Answer = {
    ...answer,
    frames: Array.from({ length: 30 }, (_, g) => ({
      schema: {
        name: `r${g}`,
        fields: [
          { name: 'time', type: 'time' },
          { name: 'executionCount', type: 'number' },
        ],
      },
      data: { values: [times, times.map((t) => (t / 3_600_000) * g)] },
    })),
  };
  const copy: Answer = { ...large, frames: large.frames.map((f) => ({ ...f })) };
  for (const cache of ['miss', 'bypass'] as const) {
    const asked = q({ from: 30_001, to: 150_001 });
    let otherWork = false;
    setImmediate(() => (otherWork = true));
    await renderInTurns(large, asked, cache, 'B"x');
    assert.ok(otherWork, 'other work ran while it rendered');
    const body = renderResponse(large, asked, cache, 'B"x');
    assert.equal(body.toString(), renderResponse(copy, asked, cache, 'B"x').toString());
    assert.equal(renderResponse(large, asked, cache, 'B"x'), body, 'the body is kept');
  }
});

test('an answer computed before its covered range ends says up to when its rows go, in the range notice or alone', () => {
  const early: Answer = { ...answer, computedAt: 150_000.5 };
  const notices = (asked: { from: number; to: number }) =>
    withMeta(early, q(asked), 'hit', 'A')[0].schema.meta?.notices?.map((n) => n.text) ?? [];
  assert.deepEqual(notices({ from: 60_000, to: 180_000 }), [
    'Rows as stored at 1970-01-01 00:02:30 UTC, when this answer was computed: rows added, changed or deleted since are not reflected until it is computed again, about once a minute for answers reaching the last minutes.',
  ]);
  const [both] = notices({ from: 30_001, to: 150_001 });
  assert.match(
    both,
    /^Covered 1970-01-01 00:01:00 – 1970-01-01 00:03:00 UTC: a range ending now or later, or given relative to now, is read in whole minutes\. Rows as stored at 1970-01-01 00:02:30 UTC/
  );
  // Under an hour, the step the covered ends were moved to (range.ts movingStep), read off them.
  const step = (stepMs: number) =>
    coveredRangeNotice({ from: 0, to: 900_000 }, true, 901_000, false, false, stepMs)!.text.replace(
      /^Covered .* UTC: /,
      ''
    );
  assert.equal(step(15_000), 'a range ending now or later, or given relative to now, is read in steps of 15 seconds.');
  assert.equal(step(1000), 'a range ending now or later, or given relative to now, is read in whole seconds.');
  // The rendered text says the same.
  const text = renderFrames(early, q({ from: 60_000, to: 180_000 }), 'hit', 'A');
  assert.match(text, /Rows as stored at 1970-01-01 00:02:30 UTC/);
});

test('requests sharing a large answer wait for one rendering, not one each', async () => {
  const times = Array.from({ length: 900 }, (_, i) => i * 3_600_000);
  const large: Answer = {
    ...answer,
    frames: Array.from({ length: 30 }, (_, g) => ({
      schema: {
        name: `r${g}`,
        fields: [
          { name: 'time', type: 'time' },
          { name: 'executionCount', type: 'number' },
        ],
      },
      data: { values: [times, times.map((t) => t % 7)] },
    })),
  };
  const asked = q({ from: 60_000, to: 180_000 });
  let frames = 0;
  const counting = {
    ...large,
    frames: large.frames.map((f) => ({
      ...f,
      get data() {
        frames++;
        return f.data;
      },
    })),
  };
  await Promise.all(Array.from({ length: 5 }, () => renderInTurns(counting, asked, 'miss', 'A')));
  assert.equal(frames, large.frames.length, 'each frame rendered once');
  assert.equal(
    renderResponse(counting, asked, 'miss', 'A').toString(),
    renderResponse(large, asked, 'miss', 'A').toString()
  );
});

test('an answer keeps at most 4 variants and 4 bodies each, however many ways it is asked for', () => {
  const held: Answer = { ...answer, frames: answer.frames.map((f) => ({ ...f })) };
  const one = renderResponse(held, q({ from: 60_000, to: 180_000 }, 1000), 'hit', 'A', true);
  const perVariant = renderedBytes(held);
  assert.ok(perVariant > one.length, 'the pieces and the body are counted');
  // Every intervalMs a client may send is a variant (the notice names the step it asked for).
  for (let asked = 2000; asked < 200_000; asked += 1000) {
    for (const refId of ['A', 'B', 'C', 'D', 'E', 'F']) {
      const body = renderResponse(held, q({ from: 60_000, to: 180_000 }, asked), 'hit', refId, true);
      assert.equal(JSON.parse(body.toString()).results[refId].frames.length, 1);
    }
  }
  // 4 variants × (pieces + 4 bodies): a few times one variant's bytes, not 198 × 6 of them.
  assert.ok(renderedBytes(held) <= 4 * 5 * perVariant, `${renderedBytes(held)} bytes against ${perVariant} for one`);
  // What is kept is still what is answered.
  const again = renderResponse(held, q({ from: 60_000, to: 180_000 }, 1000), 'hit', 'A', true);
  assert.deepEqual(JSON.parse(again.toString()), JSON.parse(one.toString()));
});

test('an answer read from raw rows still arriving says which rows it holds: up to when computed, or written by then', () => {
  const live: Answer = { ...answer, touchesLiveEdge: true };
  const text = (a: Answer, computedAt: number) =>
    (withMeta({ ...a, computedAt }, q({ from: 60_000, to: 180_000 }), 'hit', 'A')[0].schema.meta?.notices ?? []).map(
      (n) => n.text
    );
  // Computed before the range ends (a range ending now): its counts stop then.
  assert.deepEqual(text(live, 170_500), [
    'Rows as stored at 1970-01-01 00:02:50 UTC, when this answer was computed: rows added, changed or deleted since are not reflected until it is computed again, about once a minute for answers reaching the last minutes.',
  ]);
  // Computed after it ended, its last minutes read from raw rows: rows arriving later are not in it.
  assert.deepEqual(text(live, 200_000), [
    'Rows written by 1970-01-01 00:03:20 UTC, when this answer was computed: rows still arriving for its last minutes are counted when it is next computed.',
  ]);
  // Read from rollups alone (changes there are tracked and reach the cache): nothing to say.
  assert.deepEqual(text(answer, 200_000), []);
});

test('a range wholly after the answer was computed says it holds only rows dated ahead, not how a range ending now is read', () => {
  const notice = coveredRangeNotice({ from: 7_200_000, to: 10_800_000 }, true, 3_600_500);
  assert.equal(
    notice?.text,
    'Covered 1970-01-01 02:00:00 – 1970-01-01 03:00:00 UTC: the whole range is after 1970-01-01 01:00:00 UTC, when this answer was computed, so it holds only rows stored by then with times ahead of it; rows stored since are counted when it is next computed.'
  );
});
