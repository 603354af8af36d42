/** The key scheme: what makes two queries one entry, and what keeps them apart. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ANSWER_CODE_DIGEST,
  MAX_NAMED_GENERATIONS,
  codeDigest,
  fingerprint,
  generationKeys,
  invalidationKeys,
  keyspace,
} from './keys';
import type { NormalizedQuery } from '../query/normalize';
import { normalized } from '../query/testing';

const q = (over: Partial<NormalizedQuery> = {}): NormalizedQuery => normalized({ differsFromAsked: true, ...over });

test('the fingerprint covers everything that changes an answer, and nothing else', () => {
  const base = fingerprint(q());
  assert.equal(
    fingerprint(q({ differsFromAsked: false })),
    base,
    'the asked range only matters through the covered range'
  );
  assert.equal(fingerprint(q({ fields: ['ruleId'] })), base, 'derived from the rest');
  for (const other of [
    q({ kind: 'timeseries' }),
    q({ filters: { ruleId: ['r1'] } }),
    q({ groupBy: 'status' }),
    q({ metrics: ['executionCount'] }),
    q({ limit: 10 }),
    q({ sortBy: 'errorRate' }),
    q({ range: { from: 0, to: 120_000 } }),
    q({ bucketMs: 60_000 }),
  ]) {
    assert.notEqual(fingerprint(other), base, JSON.stringify(other));
  }
  assert.equal(
    fingerprint(q({ filters: { ruleId: ['a'], status: ['ERROR'] } })),
    fingerprint(q({ filters: { status: ['ERROR'], ruleId: ['a'] } })),
    'filter order'
  );
});

test('keys: one hash tag, the database in every key, generations per filtered rule or "any"', () => {
  const a = keyspace('rp', 'id:db-a');
  const b = keyspace('rp', 'id:db-b');
  assert.notEqual(a.query('f', '0'), b.query('f', '0'), 'two databases never share an entry');
  assert.notEqual(a.genAll, b.genAll, 'nor generations');
  for (const key of [a.query('f', '7'), a.genAll, a.genRule('x'), a.nearLease, a.lock(a.query('f', '0'))]) {
    assert.ok(key.startsWith('{rp}:'), key);
  }
  assert.deepEqual(generationKeys(a, q()), [a.genAll, a.genAnyRule, a.genAnyParser]);
  assert.deepEqual(generationKeys(a, q({ filters: { ruleId: ['r1', 'r2'] } })), [
    a.genAll,
    a.genRule('r1'),
    a.genRule('r2'),
    a.genAnyParser,
  ]);
  // Past MAX_NAMED_GENERATIONS values, "any": a request cannot create a Redis key per value it names.
  const many = Array.from({ length: MAX_NAMED_GENERATIONS + 1 }, (_, i) => `r${i}`);
  assert.deepEqual(generationKeys(a, q({ filters: { ruleId: many, parserId: ['p1'] } })), [
    a.genAll,
    a.genAnyRule,
    a.genParser('p1'),
  ]);
  assert.equal(generationKeys(a, q({ filters: { parserId: many } }))[2], a.genAnyParser);
  // Ids the service does not know depend on "any rule": a request naming made-up ids creates no key per id.
  const known = (_field: string, id: string) => id.startsWith('r');
  assert.deepEqual(generationKeys(a, q({ filters: { ruleId: ['made-up-1', 'made-up-2', 'r1'] } }), known), [
    a.genAll,
    a.genAnyRule,
    a.genRule('r1'),
    a.genAnyParser,
  ]);
  assert.deepEqual(invalidationKeys(a, { ruleId: 'r1' }), [a.genRule('r1'), a.genAnyRule]);
  assert.deepEqual(invalidationKeys(a, { all: true }), [a.genAll]);
  assert.doesNotMatch(a.genRule('odd\nid with spaces'), /\s/, 'ids are hashed');
});

test('entry keys carry a digest of the code that computes answers: code that answers otherwise reads none of the old entries, and invalidations reach both', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ruleperf-code-'));
  try {
    mkdirSync(join(dir, 'kinds'));
    writeFileSync(join(dir, 'a.ts'), 'export const a = 1;');
    writeFileSync(join(dir, 'kinds', 'b.ts'), 'export const b = 1;');
    writeFileSync(join(dir, 'a.test.ts'), 'test 1');
    const before = codeDigest(dir, []);
    writeFileSync(join(dir, 'a.test.ts'), 'test 2');
    assert.equal(codeDigest(dir, []), before, 'tests do not count');
    writeFileSync(join(dir, 'kinds', 'b.ts'), 'export const b = 2;');
    assert.notEqual(codeDigest(dir, []), before, 'a module in a subfolder does');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const ks = keyspace('rp', 'db');
  assert.ok(ks.query('f', '0').startsWith(`${ks.base}:q:${ANSWER_CODE_DIGEST}.f:`), ks.query('f', '0'));
  assert.ok(!ks.genAll.includes(ANSWER_CODE_DIGEST), 'generations are shared by every build');
  assert.equal(ANSWER_CODE_DIGEST.length, 8);
});
