/** Which changes an answer depends on. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { affects, type Change } from './change-feed';

const change = (over: Partial<Change>): Change => ({
  id: 1,
  from: null,
  to: null,
  ruleId: null,
  parserId: null,
  at: 0,
  ...over,
});
const scope = (over = {}) => ({
  range: { from: 1000, to: 2000 },
  names: { rules: false, parsers: false },
  filters: {},
  ...over,
});

test('rewritten rows: only answers whose range overlaps them', () => {
  assert.equal(affects(change({ from: 1500, to: 1600 }), scope()), true);
  assert.equal(affects(change({ from: 500, to: 1000 }), scope()), true, 'the first instant is in the range');
  assert.equal(affects(change({ from: 2000, to: 2500 }), scope()), false, 'the end is exclusive');
  assert.equal(affects(change({ from: 0, to: 999 }), scope()), false);
});

test('renamed rules and parsers: only answers that show names, and only for the rules they show', () => {
  assert.equal(affects(change({ ruleId: 'r1' }), scope()), false, 'a stats answer shows no names');
  assert.equal(
    affects(change({ ruleId: 'r1' }), scope({ names: { rules: true, parsers: false } })),
    true,
    'top rules over every rule'
  );
  assert.equal(
    affects(change({ ruleId: 'r1' }), scope({ names: { rules: true, parsers: false }, filters: { ruleId: ['r2'] } })),
    false
  );
  assert.equal(affects(change({ parserId: 'p1' }), scope({ names: { rules: true, parsers: false } })), false);
  assert.equal(affects(change({ parserId: 'p1' }), scope({ names: { rules: false, parsers: true } })), true);
});
