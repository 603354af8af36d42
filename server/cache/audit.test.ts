/** The auditor's comparison: numbers to 1e-9 relative, everything else exactly. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sameValues } from './audit';
import type { DataFrameJSON } from '../contract';

const frame = (values: unknown[][], name = 'stats'): DataFrameJSON => ({
  schema: { name, fields: [] },
  data: { values },
});

test('equal answers pass; any count, name, length or string difference does not', () => {
  assert.ok(
    sameValues(
      [
        frame([
          [1, 2.5],
          ['a', null],
        ]),
      ],
      [
        frame([
          [1, 2.5 * (1 + 1e-12)],
          ['a', null],
        ]),
      ]
    ),
    'sums added in another order'
  );
  assert.ok(!sameValues([frame([[1]])], [frame([[2]])]));
  assert.ok(!sameValues([frame([[1]])], [frame([[1]], 'other')]));
  assert.ok(!sameValues([frame([[1, 2]])], [frame([[1]])]));
  assert.ok(!sameValues([frame([['a']])], [frame([['b']])]));
  assert.ok(!sameValues([frame([[null]])], [frame([[0]])]));
  assert.ok(!sameValues([frame([[1]])], [frame([[1]]), frame([[1]])]));
});
