/** The doorkeeper's parts: Redis read as nearly full or not, and the keys asked once. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RedisInfo } from './redis';
import { MemoryPressure, NEARLY_FULL } from './pressure';

const info = (usedMemory: number, maxMemory: number): RedisInfo => ({
  usedMemory,
  maxMemory,
  entries: 0,
  evictedKeys: 0,
  evicts: true,
});

test('nearly full past NEARLY_FULL of maxmemory; never without maxmemory; read in the background at most every everyMs', async () => {
  let reads = 0;
  let current = info(0.9 * 100, 100);
  const pressure = new MemoryPressure(async () => {
    reads++;
    return current;
  }, 50);
  assert.equal(pressure.nearlyFull(), false, 'read at once, in the background: the caller does not wait');
  await new Promise((r) => setImmediate(r));
  assert.equal(pressure.nearlyFull(), true);
  assert.equal(reads, 1, 'not read again within everyMs');
  current = info(NEARLY_FULL * 100 - 1, 100);
  await new Promise((r) => setTimeout(r, 60));
  pressure.nearlyFull();
  await new Promise((r) => setImmediate(r));
  assert.equal(pressure.nearlyFull(), false);
  current = info(10 ** 12, 0);
  await new Promise((r) => setTimeout(r, 60));
  pressure.nearlyFull();
  await new Promise((r) => setImmediate(r));
  assert.equal(pressure.nearlyFull(), false, 'no maxmemory: nothing to be nearly');
});
