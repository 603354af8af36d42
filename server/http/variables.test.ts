/** The variables' lists: one read shared by concurrent asks, kept for its age limit, a failure not kept. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { VariableValue } from '../contract';
import { VariableLists } from './variables';

test('asks share one read while it runs and for maxAgeMs after; then, or after a failure, it is read again', async () => {
  let now = 0;
  let reads = 0;
  let fail = false;
  const lists = new VariableLists(
    async (name) => {
      reads++;
      if (fail) {
        throw new Error('busy');
      }
      return [{ value: `${name}-${reads}`, text: '' }] as VariableValue[];
    },
    10_000,
    () => now
  );
  const [a, b] = await Promise.all([lists.get('rules'), lists.get('rules')]);
  assert.equal(reads, 1);
  assert.equal(a, b);
  now = 10_000;
  assert.equal((await lists.get('rules'))[0].value, 'rules-1', 'still within its age');
  await lists.get('parsers');
  assert.equal(reads, 2, 'each list its own read');
  now = 10_001;
  fail = true;
  await assert.rejects(lists.get('categories'), 'no list read before: the failure is the answer');
  fail = false;
  assert.equal((await lists.get('categories'))[0].value, 'categories-4', 'the failure was not kept');
});

test('a failed read serves the list read before, marked stale with when it was read, until staleMaxMs; then the failure', async () => {
  let now = 0;
  let reads = 0;
  let fail = false;
  const lists = new VariableLists(
    async () => {
      reads++;
      if (fail) {
        throw new Error('database is unavailable');
      }
      return [{ value: `r-${reads}`, text: '' }] as VariableValue[];
    },
    10_000,
    () => now,
    60_000
  );
  // What the endpoint sends: the body rendered once per read.
  const sent = async () => {
    const l = await lists.list('rules');
    assert.deepEqual(JSON.parse(l.body.toString()).values, l.values);
    return { values: l.values, staleSince: l.staleSince, body: JSON.parse(l.body.toString()) };
  };
  assert.deepEqual(await sent(), {
    values: [{ value: 'r-1', text: '' }],
    staleSince: undefined,
    body: { values: [{ value: 'r-1', text: '' }] },
  });
  assert.equal((await lists.list('rules')).body, (await lists.list('rules')).body, 'one body for every ask');
  fail = true;
  now = 10_001;
  assert.deepEqual(await sent(), {
    values: [{ value: 'r-1', text: '' }],
    staleSince: 0,
    body: { values: [{ value: 'r-1', text: '' }], stale: true, listedAt: '1970-01-01T00:00:00.000Z' },
  });
  assert.equal(reads, 2);
  now = 15_000;
  assert.equal((await lists.list('rules')).staleSince, 0, 'the fallback is held for maxAgeMs: no read per ask');
  assert.equal(reads, 2);
  fail = false;
  now = 20_002;
  assert.deepEqual((await sent()).body, { values: [{ value: 'r-3', text: '' }] }, 'read again, fresh');
  fail = true;
  now = 20_002 + 60_001;
  await assert.rejects(lists.list('rules'), /unavailable/, 'older than staleMaxMs: not served');
});
