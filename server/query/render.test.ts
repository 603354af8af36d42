/** Rendering: the JSON text of a cached answer equals the objects' JSON, and the range notice follows the asked range. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Answer } from './executor';
import type { NormalizedQuery } from './normalize';
import { renderFrames, withMeta } from './render';

const answer: Answer = {
  frames: [{ schema: { name: 'stats', fields: [{ name: 'executionCount', type: 'number' }] }, data: { values: [[42]] } }],
  tiers: ['hourly_total', 'raw'],
  watermark: 1000,
  touchesLiveEdge: true,
  sql: 'SELECT 1',
  notices: [],
  computedAt: 5000,
};
const q = (asked: { from: number; to: number }): NormalizedQuery => ({
  kind: 'stats',
  filters: {},
  groupBy: null,
  metrics: [],
  limit: 0,
  sortBy: null,
  asked,
  range: { from: 60_000, to: 180_000 },
  bucketMs: null,
  fields: [],
});

test('rendered text equals JSON.stringify of the frames with meta, for every refId and cache status', () => {
  for (const cache of ['hit', 'miss', 'stale', 'bypass'] as const) {
    for (const asked of [{ from: 60_000, to: 180_000 }, { from: 30_001, to: 150_001 }]) {
      const text = renderFrames(answer, q(asked), cache, 'B"x');
      assert.deepEqual(JSON.parse(text), { frames: withMeta(answer, q(asked), cache, 'B"x') });
    }
  }
});

test('a notice names the covered range when it differs from the asked one by more than a second, and only then', () => {
  const notices = (asked: { from: number; to: number }) => withMeta(answer, q(asked), 'hit', 'A')[0].schema.meta?.notices ?? [];
  assert.deepEqual(notices({ from: 60_500, to: 179_500 }), []);
  const [n] = notices({ from: 30_001, to: 150_001 });
  assert.equal(n.severity, 'info');
  assert.match(n.text, /Covered 1970-01-01 00:01:00 – 00:03:00 UTC|Covered 1970-01-01 00:01:00 – 1970-01-01 00:03:00 UTC/);
  const custom = withMeta(answer, q({ from: 30_001, to: 150_001 }), 'stale', 'A')[0].schema.meta!.custom!;
  assert.deepEqual(custom.coveredRange, { from: 60_000, to: 180_000 });
  assert.equal(custom.cache, 'stale');
  assert.equal(custom.computedAt, 5000);
});
