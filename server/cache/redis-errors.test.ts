import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import { reportRedisErrors } from './redis';

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
