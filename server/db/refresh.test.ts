/** Which ranges a TimescaleDB refresh takes one by one before its whole window (refresh.ts changedWindows). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { changedWindows } from './refresh';

const H = 3_600_000;
const range = (from: number | null, to: number | null) => ({
  from: from === null ? null : new Date(from),
  to: to === null ? null : new Date(to),
});

test('changed ranges become whole buckets within the window, merged where they meet, open ones left to the whole refresh', () => {
  assert.deepEqual(
    changedWindows(
      [range(10 * H + 5, 10 * H + 9), range(2 * H + 1, 3 * H + 7), range(3 * H + 30, 3 * H + 40), range(null, 5 * H)],
      H,
      0,
      20 * H
    ),
    [
      { from: 2 * H, to: 4 * H },
      { from: 10 * H, to: 11 * H },
    ]
  );
  assert.deepEqual(changedWindows([range(30 * H, 31 * H)], H, 0, 20 * H), [], 'past the watermark: not a change');
  assert.deepEqual(changedWindows([range(H, 9 * H)], H, 4 * H, 6 * H), [{ from: 4 * H, to: 6 * H }], 'clipped');
  const many = Array.from({ length: 9 }, (_, i) => range(2 * i * H, 2 * i * H + 1));
  assert.deepEqual(changedWindows(many, H, 0, 40 * H), [], 'too many: one refresh of the whole window');
});
