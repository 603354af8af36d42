/**
 * The near cache's lease rules, on a controlled clock: an entry is served only while its
 * lease (counted from when the confirming lookup was sent) runs and it is fresh; a clear
 * keeps lookups already in flight from re-installing old copies.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NearCache } from './near';

const LEASE = 1000;
const WALL = 1_700_000_000_000;

test('an entry is served while its lease runs, counted from when its lookup was sent', () => {
  const near = new NearCache<string>(LEASE, 10);
  const token = near.begin(100);
  near.put('q1', token, 'answer', WALL + 60_000);
  assert.equal(near.get('q1', 100 + LEASE - 1, WALL)?.entry.value, 'answer');
  assert.equal(near.get('q1', 100 + LEASE, WALL), undefined, 'the lease has ended');
  assert.equal(near.size, 0, 'an ended lease is dropped');
});

test('renewal is asked for past half the lease, and a renewed lease runs from the new lookup', () => {
  const near = new NearCache<string>(LEASE, 10);
  near.put('q1', near.begin(0), 'a', WALL + 60_000);
  assert.equal(near.get('q1', LEASE / 2 - 1, WALL)?.renew, false);
  assert.equal(near.get('q1', LEASE / 2, WALL)?.renew, true);
  near.put('q1', near.begin(LEASE / 2), 'a', WALL + 60_000);
  assert.equal(near.get('q1', LEASE + 10, WALL)?.entry.value, 'a');
  // An older lookup's reply arriving late does not shorten the lease.
  near.put('q1', { epoch: 0, sentAt: 1 }, 'a', WALL + 60_000);
  assert.equal(near.get('q1', LEASE + 10, WALL)?.entry.leasedAt, LEASE / 2);
});

test('an entry past its freshness is not served, whatever its lease', () => {
  const near = new NearCache<string>(LEASE, 10);
  near.put('q1', near.begin(0), 'a', WALL + 5);
  assert.ok(near.get('q1', 1, WALL + 4));
  assert.equal(near.get('q1', 1, WALL + 5), undefined);
});

test('clear drops every copy, and a lookup sent before it cannot re-install its answer', () => {
  const near = new NearCache<string>(LEASE, 10);
  near.put('q1', near.begin(0), 'old', WALL + 60_000);
  const inFlight = near.begin(10);
  near.clear();
  assert.equal(near.get('q1', 20, WALL), undefined);
  near.put('q1', inFlight, 'old', WALL + 60_000);
  assert.equal(near.get('q1', 30, WALL), undefined, 'the reply of a lookup sent before the clear is not kept');
  near.put('q1', near.begin(40), 'new', WALL + 60_000);
  assert.equal(near.get('q1', 50, WALL)?.entry.value, 'new');
});

test('the least recently confirmed entry goes first when full; a zero lease turns it off', () => {
  const near = new NearCache<string>(LEASE, 2);
  near.put('q1', near.begin(0), 'a', WALL + 60_000);
  near.put('q2', near.begin(1), 'b', WALL + 60_000);
  near.put('q1', near.begin(2), 'a', WALL + 60_000);
  near.put('q3', near.begin(3), 'c', WALL + 60_000);
  assert.deepEqual(
    ['q1', 'q2', 'q3'].map((q) => near.get(q, 4, WALL)?.entry.value),
    ['a', undefined, 'c']
  );
  const off = new NearCache<string>(0, 10);
  off.put('q1', off.begin(0), 'a', WALL + 60_000);
  assert.equal(off.get('q1', 0, WALL), undefined);
});

test('kept within a number of bytes: the least recently confirmed go first, a hit weighs its entry again', () => {
  const weights = new Map([
    ['a', 40],
    ['b', 40],
    ['c', 40],
  ]);
  const near = new NearCache<string>(LEASE, 10, 100, (v) => weights.get(v)!);
  near.put('a', near.begin(0), 'a', WALL + 60_000);
  near.put('b', near.begin(1), 'b', WALL + 60_000);
  assert.equal(near.heldBytes, 80);
  near.put('c', near.begin(2), 'c', WALL + 60_000);
  assert.equal(near.size, 2, 'a went: 120 bytes is over 100');
  assert.equal(near.get('a', 10, WALL), undefined);
  assert.equal(near.heldBytes, 80);
  // b rendered something since: weighed again when hit, it pushes the oldest (b itself) out.
  weights.set('b', 70);
  assert.equal(near.get('b', 10, WALL)?.entry.value, 'b', 'the hit is answered');
  assert.equal(near.size, 1);
  assert.equal(near.heldBytes, 40);
  // An entry over the limit alone is not kept.
  weights.set('a', 101);
  near.put('a', near.begin(20), 'a', WALL + 60_000);
  assert.equal(near.get('a', 30, WALL), undefined);
  assert.equal(near.heldBytes, 40);
  near.clear();
  assert.equal(near.heldBytes, 0);
});
