/** Cache values: round trips, compression, and corrupt values read as misses. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decode, encode } from './codec';

test('values round-trip; large ones are deflated, small ones kept plain', async () => {
  const small = { a: 1 };
  const large = { rows: Array.from({ length: 200 }, (_, i) => ({ i, text: 'the same words again' })) };
  const s = await encode(small);
  const l = await encode(large);
  assert.equal(s[0], 1);
  assert.equal(l[0], 2);
  assert.ok(l.length < JSON.stringify(large).length / 4);
  assert.deepEqual(decode(s), small);
  assert.deepEqual(decode(l), large);
});

test('a corrupt or unknown value is a miss (null), never an exception', async () => {
  const l = await encode({ rows: Array.from({ length: 100 }, () => 'x') });
  assert.equal(decode(Buffer.concat([l.subarray(0, 10), Buffer.from('garbage')])), null);
  assert.equal(decode(Buffer.from([9, 1, 2, 3])), null);
  assert.equal(decode(Buffer.from([1])), null);
  assert.equal(decode(Buffer.from([1, 0x7b])), null);
});
