/** When the next minute is warmed. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { nextTurn } from './loop';

test('the next turn of the minute still more than the lead away', () => {
  const minute = Date.parse('2026-06-10T13:37:00Z');
  assert.equal(nextTurn(minute + 20_000, 10), minute + 60_000, '40 s before the turn: this one');
  assert.equal(nextTurn(minute + 49_999, 10), minute + 60_000);
  assert.equal(nextTurn(minute + 50_000, 10), minute + 120_000, 'inside the lead: the one after');
  assert.equal(nextTurn(minute, 0), minute + 60_000);
});
