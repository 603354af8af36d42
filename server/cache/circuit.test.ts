/** The circuit breaker on a controlled clock. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CircuitBreaker } from './circuit';

function breaker() {
  let t = 0;
  const changes: boolean[] = [];
  const c = new CircuitBreaker({
    failureThreshold: 2,
    probeIntervalMs: 500,
    onChange: (open) => changes.push(open),
    now: () => t,
  });
  return { c, changes, advance: (ms: number) => (t += ms) };
}

test('consecutive failures open it; one success in between resets the count', () => {
  const { c, changes } = breaker();
  c.failure();
  c.success();
  c.failure();
  assert.equal(c.isOpen, false);
  c.failure();
  assert.equal(c.isOpen, true);
  assert.deepEqual(changes, [true]);
});

test('while open, nothing passes until the probe interval, then exactly one probe at a time', () => {
  const { c, advance } = breaker();
  c.failure();
  c.failure();
  assert.equal(c.allow(), false);
  advance(499);
  assert.equal(c.allow(), false);
  advance(1);
  assert.equal(c.allow(), true, 'the probe');
  assert.equal(c.allow(), false, 'only one probe at a time');
});

test('a failed probe waits a full interval again; a healthy probe closes it', () => {
  const { c, changes, advance } = breaker();
  c.failure();
  c.failure();
  advance(500);
  assert.equal(c.allow(), true);
  c.failure();
  advance(499);
  assert.equal(c.allow(), false);
  advance(1);
  assert.equal(c.allow(), true);
  c.success();
  assert.equal(c.isOpen, false);
  assert.equal(c.allow(), true);
  assert.deepEqual(changes, [true, false]);
});
