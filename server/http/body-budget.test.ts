/** The body budget: bytes counted as they arrive; a full budget makes room from bodies arriving too long, else refuses the newcomer. */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { test } from 'node:test';
import { BodyBudget, PIECE_HEAP_BYTES, SLOW_BODY_MS } from './body-budget';

/** A request and response as count() sees them: events, and whether the body has all arrived. */
function exchange(budget: BodyBudget) {
  const req = Object.assign(new EventEmitter(), { complete: false });
  const res = new EventEmitter();
  const refused: string[] = [];
  budget.count(req as unknown as IncomingMessage, res as unknown as ServerResponse, {
    busy: () => refused.push('busy'),
    slow: () => refused.push('slow'),
    tooLarge: (why) => refused.push(`tooLarge:${why}`),
  });
  req.emit('resume');
  return {
    refused,
    send: (bytes: number) => req.emit('data', Buffer.alloc(bytes)),
    end: () => {
      req.complete = true;
      req.emit('end');
    },
    answered: () => res.emit('close'),
  };
}

test('a full budget refuses bodies arriving over SLOW_BODY_MS, longest first, to make room; else the newcomer is busy', () => {
  let now = 0;
  const budget = new BodyBudget(1000, () => now);
  const first = exchange(budget);
  first.send(400);
  now = SLOW_BODY_MS / 4;
  const second = exchange(budget);
  second.send(400);
  now = SLOW_BODY_MS / 2;
  const young = exchange(budget);
  young.send(300);
  assert.deepEqual(young.refused, ['busy'], 'nobody has been arriving long: the newcomer is refused');
  assert.equal(budget.heldBytes, 800);

  now = SLOW_BODY_MS + SLOW_BODY_MS / 8; // the first has been arriving over SLOW_BODY_MS, the second not yet
  const next = exchange(budget);
  next.send(300);
  assert.deepEqual([first.refused, second.refused, next.refused], [['slow'], [], []]);
  assert.equal(budget.heldBytes, 700);
  first.send(100); // its later bytes count for nothing
  assert.equal(budget.heldBytes, 700);

  // A body that has all arrived is waiting for its answer, not arriving: never refused as slow.
  second.end();
  now += 10 * SLOW_BODY_MS;
  const big = exchange(budget);
  big.send(400);
  assert.deepEqual([second.refused, next.refused, big.refused], [[], ['slow'], []]);
  assert.equal(budget.heldBytes, 400 + 400);
  second.answered();
  assert.equal(budget.heldBytes, 400, 'given back when its answer is over');
});

test('a body arriving long that holds no bytes yet is not refused: it would free nothing', () => {
  let now = 0;
  const budget = new BodyBudget(1000, () => now);
  const nothingYet = exchange(budget);
  const full = exchange(budget);
  full.send(900);
  now = 5 * SLOW_BODY_MS;
  const next = exchange(budget);
  next.send(200);
  assert.deepEqual([nothingYet.refused, full.refused, next.refused], [[], ['slow'], []]);
});

test('a body is not refused as slow to make room for its own next bytes', () => {
  let now = 0;
  const budget = new BodyBudget(1000, () => now);
  const alone = exchange(budget);
  alone.send(600);
  now = 5 * SLOW_BODY_MS;
  alone.send(600);
  assert.deepEqual(alone.refused, ['busy']);
  assert.equal(budget.heldBytes, 0);
});

test('each piece is charged what it holds of the heap at least: many 1-byte chunks fill the budget as their Buffers fill memory', () => {
  const budget = new BodyBudget(10 * PIECE_HEAP_BYTES, () => 0);
  const tiny = exchange(budget);
  for (let i = 0; i < 10; i++) {
    tiny.send(1);
  }
  assert.equal(budget.heldBytes, 10 * PIECE_HEAP_BYTES);
  assert.deepEqual(tiny.refused, []);
  const next = exchange(budget);
  next.send(1);
  assert.deepEqual(next.refused, ['busy']);
});
