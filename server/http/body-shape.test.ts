/** shapeRefusal's count of list items, before parsing: exact at the limit, blind to text inside strings. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MAX_LIST_VALUES, shapeRefusal } from './body-shape';

/** A body whose lists hold `items` in all: a query (the queries list's one item) holding lists of `size`. */
const body = (items: number, size: number) => {
  const lists: string[] = [];
  for (let left = items - 1; left > 0; left -= size) {
    lists.push(`"l${lists.length}":[${Array(Math.min(size, left)).fill('"v"').join(',')}]`);
  }
  return `{"queries":[{${lists.join(',')}}]}`;
};

test('list items are counted to the limit exactly, the first item of each list too', () => {
  for (const size of [500, 25]) {
    assert.equal(shapeRefusal(body(MAX_LIST_VALUES, size)), null, `lists of ${size}`);
    assert.match(shapeRefusal(body(MAX_LIST_VALUES + 1, size))?.error ?? '', /more than 10,000 values in all/);
  }
  const bytes = new TextEncoder().encode(body(MAX_LIST_VALUES + 1, 25));
  assert.match(shapeRefusal(bytes)?.error ?? '', /more than 10,000 values in all/, 'bytes as text');
  const list = `[${Array(500).fill(1).join(',')}]`;
  const nested = `{"a":[${Array(20).fill(list).join(',')}]}`; // 20 lists of 500 in a list: 10,020 items
  assert.match(
    shapeRefusal(nested)?.error ?? '',
    /more than 10,000/,
    'a list inside a list is an item, and its items too'
  );
  // One list longer than any may be is left to arrayTooLong, after parsing, which names where it is.
  assert.equal(shapeRefusal(`{"queries":[{"ruleId":[${Array(10_001).fill(1).join(',')}]}]}`), null);
});

test('commas and brackets inside strings, empty lists and object members are not list items', () => {
  const tricky = JSON.stringify({ a: Array(5000).fill('x,[y],"z"'), b: [], c: { d: 1, e: 2 } });
  assert.equal(shapeRefusal(tricky), null);
  const queries = JSON.stringify({ queries: Array.from({ length: 50 }, (_, i) => ({ refId: `q${i}` })) });
  assert.equal(shapeRefusal(queries), null, 'a request of 50 queries');
});
