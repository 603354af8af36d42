import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import { CALL_CAUSE_EVERY_MS, cacheCallErrorReporter, reportRedisErrors } from './redis';

test('each Redis error cause is logged once an outage, told apart without its numbers, a few at most', () => {
  const redis = new EventEmitter();
  const lines: string[] = [];
  reportRedisErrors(redis, { warn: (_o: unknown, msg: string) => lines.push(msg) } as never);
  // Sentinel's retries grow by 10 ms each; a cluster may alternate between two causes.
  for (let ms = 10; ms <= 1000; ms += 10) {
    redis.emit('error', new Error(`Retrying from scratch after ${ms}ms`));
    redis.emit('error', new Error(ms % 20 ? 'connect ECONNREFUSED 127.0.0.1:6379' : 'Connection is closed.'));
  }
  assert.deepEqual(lines, [
    "the cache's Redis: Retrying from scratch after 10ms",
    "the cache's Redis: connect ECONNREFUSED 127.0.0.1:6379",
    "the cache's Redis: Connection is closed.",
  ]);
  for (let i = 0; i < 10; i++) {
    redis.emit('error', new Error(`cause ${'abcdefghij'[i]}`));
  }
  assert.equal(lines.length, 5, 'a few causes at most an outage');
  redis.emit('ready');
  redis.emit('error', new Error('Connection is closed.'));
  assert.equal(lines.at(-1), "the cache's Redis: Connection is closed.", 'said again after Redis was back');
});

test('a cause of failed cache calls is logged once every ten minutes, timeouts and lost connections not', () => {
  let now = 0;
  const lines: string[] = [];
  const report = cacheCallErrorReporter({ warn: (_o: unknown, msg: string) => lines.push(msg) } as never, () => now);
  const replyError = (message: string) => Object.assign(new Error(message), { name: 'ReplyError' });
  for (let i = 0; i < 50; i++) {
    report(replyError("OOM command not allowed when used memory > 'maxmemory'."));
    report(new Error(`Command timed out: Redis gave no answer within ${i} ms`));
    report(new Error('Connection is closed.'));
  }
  assert.equal(lines.length, 1);
  assert.match(lines[0], /^cache calls fail, Redis answers: OOM .*Redis is full and evicts nothing/);
  report(new Error('Cannot read properties of undefined'));
  assert.equal(lines.length, 2, 'another cause is said');
  assert.equal(lines[1], 'a cache call failed: Cannot read properties of undefined', "not said to be Redis's answer");
  now += CALL_CAUSE_EVERY_MS - 1;
  report(replyError("OOM command not allowed when used memory > 'maxmemory'."));
  assert.equal(lines.length, 2);
  now += 1;
  report(replyError("OOM command not allowed when used memory > 'maxmemory'."));
  assert.equal(lines.length, 3, 'said again ten minutes on');
});
