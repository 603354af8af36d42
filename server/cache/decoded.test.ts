/** The recently decoded values: reused while the bytes are the same, kept within entries and bytes. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encode } from './codec';
import { RecentlyDecoded } from './decoded';

test('a value is reused while its bytes are the same, decoded afresh when they change', async () => {
  const decoded = new RecentlyDecoded<{ n: number }>(10);
  const one = await encode({ n: 1 });
  const first = decoded.decode('k', one);
  assert.deepEqual(first, { n: 1 });
  assert.equal(decoded.decode('k', Buffer.from(one)), first, 'the same object');
  const two = decoded.decode('k', await encode({ n: 2 }));
  assert.deepEqual(two, { n: 2 });
});

test('kept within a number of bytes, weighed again at every reuse; the least recently used go first', async () => {
  const extra = new Map<number, number>();
  const decoded = new RecentlyDecoded<{ n: number }>(10, 1000, (v) => extra.get(v.n) ?? 0);
  const raw = await Promise.all([0, 1, 2].map((n) => encode({ n })));
  const values = raw.map((r, i) => decoded.decode(`k${i}`, r));
  const rawBytes = raw.reduce((sum, r) => sum + r.length, 0);
  assert.equal(decoded.heldBytes, rawBytes);
  // k0 renders 990 bytes' worth: reused, it is weighed again, and k1 (least recently used) goes.
  extra.set(0, 990);
  assert.equal(decoded.decode('k0', raw[0]), values[0]);
  const k1 = decoded.decode('k1', raw[1]);
  assert.notEqual(k1, values[1], 'k1 was decoded again');
  assert.ok(decoded.heldBytes <= 1000, `${decoded.heldBytes}`);
  // One value over the limit alone is answered, not kept.
  extra.set(3, 5000);
  const big = await encode({ n: 3 });
  const once = decoded.decode('k3', big);
  assert.deepEqual(once, { n: 3 });
  assert.notEqual(decoded.decode('k3', big), once);
  assert.ok(decoded.heldBytes <= 1000);
  assert.equal(decoded.decode('k1', raw[1]), k1, 'and nothing else went for it');
});
