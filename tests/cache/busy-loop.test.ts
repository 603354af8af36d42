/**
 * Redis is judged by its own latency, not the event loop's: a loop busy for longer than
 * CACHE_SLOW_MS (a flood of cheap requests, a large answer encoded) left replies that had arrived
 * in time unread until after their timer fired, so a healthy Redis "timed out" and the circuit
 * opened, sending every dashboard query to the database. A Redis that really is slow still opens it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import Redis from 'ioredis';
import { loadConfig } from '../../server/config';
import { createRedis } from '../../server/cache/redis';
import { RedisGuard } from '../../server/cache/guard';
import { createMetrics } from '../../server/observability/metrics';
import { REDIS_URL } from '../support/services';
import { hasRedisServer, startPrivateRedis } from '../support/private-redis';
import { TcpProxy } from '../support/tcp-proxy';

const SLOW_MS = 50;

/** The product's client (its timeouts) and guard, on `url`. */
async function guarded(url: string) {
  const redis = createRedis(loadConfig({ REDIS_URL: url, CACHE_SLOW_MS: String(SLOW_MS) }));
  redis.on('error', () => undefined);
  await new Promise((ok) => (redis.status === 'ready' ? ok(null) : redis.once('ready', ok)));
  const metrics = createMetrics();
  const guard = new RedisGuard(metrics, { ping: () => redis.ping(), slowMs: SLOW_MS });
  const errors = async () => (await metrics.cacheErrors.get()).values.reduce((n, v) => n + v.value, 0);
  return { redis, guard, errors };
}

/** Holds the loop for `ms` once the command has been written (after the current turn). */
const busyLoop = (ms: number) =>
  new Promise<void>((done) =>
    setImmediate(() => {
      const until = Date.now() + ms;
      while (Date.now() < until) {
        // the loop does other work: nothing is read from any socket meanwhile
      }
      done();
    })
  );

test('a loop busy for three times CACHE_SLOW_MS after each command: the answers count, the circuit stays closed', async () => {
  const { redis, guard, errors } = await guarded(REDIS_URL);
  const key = `busy-loop-test:${process.pid}`;
  try {
    await redis.set(key, 'held', 'PX', 60_000);
    for (let i = 0; i < 5; i++) {
      const answer = guard.run('lookup', () => redis.get(key));
      await busyLoop(3 * SLOW_MS);
      assert.equal(await answer, 'held', `round ${i}: the answer that arrived while the loop was busy`);
    }
    assert.equal(guard.circuit.isOpen, false);
    assert.equal(await errors(), 0);
  } finally {
    await redis.del(key);
    redis.disconnect();
  }
});

test('a handler busy for three times CACHE_SLOW_MS right after issuing its command, over a network hop: the time counts from the write', async () => {
  // ioredis writes a pipelined command at the end of the turn it was issued in: a timer started at
  // the call had run out before the command left, and every lookup of a flood "timed out".
  const hop = new TcpProxy('127.0.0.1', Number(new URL(REDIS_URL).port || 6379));
  hop.delayMs = 2; // each way: a Redis on the network, not on this machine
  const port = await hop.start();
  const { redis, guard, errors } = await guarded(`redis://127.0.0.1:${port}`);
  const key = `busy-loop-test:hop:${process.pid}`;
  try {
    await redis.set(key, 'held', 'PX', 60_000);
    for (let i = 0; i < 5; i++) {
      const answer = guard.run('lookup', () => redis.get(key));
      const until = Date.now() + 3 * SLOW_MS;
      while (Date.now() < until) {
        // the same handler goes on working: the command is not written yet
      }
      assert.equal(await answer, 'held', `round ${i}`);
    }
    assert.equal(guard.circuit.isOpen, false);
    assert.equal(await errors(), 0);
  } finally {
    await redis.del(key);
    redis.disconnect();
    await hop.stop();
  }
});

test('a Redis that answers later than CACHE_SLOW_MS still opens the circuit', async (t) => {
  if (!hasRedisServer) {
    return t.skip('redis-server is not installed: no private Redis to pause');
  }
  const paused = await startPrivateRedis();
  const { redis, guard, errors } = await guarded(paused.url);
  const admin = new Redis(paused.url);
  try {
    // Every client's commands wait 2 s: Redis itself is slow.
    await admin.call('CLIENT', 'PAUSE', '2000', 'ALL');
    assert.equal(await guard.run('lookup', () => redis.get('k')), undefined);
    assert.equal(await guard.run('lookup', () => redis.get('k')), undefined);
    assert.equal(guard.circuit.isOpen, true, 'two late answers open the circuit');
    assert.equal(await errors(), 2);
  } finally {
    await admin.call('CLIENT', 'UNPAUSE').catch(() => undefined);
    admin.disconnect();
    redis.disconnect();
    await paused.stop();
  }
});

test('while the circuit is open, the probe is a PING in the background: the request that let it through is bypassed at once, and nothing is written on its behalf', async () => {
  const { redis, guard, errors } = await guarded(REDIS_URL);
  const key = `busy-loop-test:lock:${process.pid}`;
  try {
    guard.circuit.failure();
    guard.circuit.failure();
    assert.equal(guard.circuit.isOpen, true);
    await new Promise((r) => setTimeout(r, 550)); // a probe is due
    const got = await guard.run('lock', () => redis.set(key, '1', 'PX', 5000, 'NX'));
    assert.equal(got, undefined, 'the request carrying the probe is bypassed');
    await new Promise((r) => setTimeout(r, 100)); // the PING's answer
    assert.equal(guard.circuit.isOpen, false, 'a healthy PING closes the circuit');
    assert.equal(await redis.exists(key), 0, 'no lock was taken for a request that does not use it');
    assert.equal(await redis.set(key, '1', 'PX', 5000, 'NX'), 'OK');
    assert.equal(await guard.run('lock', () => redis.get(key)), '1', 'closed: calls go through again');
    assert.equal(await errors(), 0);
  } finally {
    await redis.del(key);
    redis.disconnect();
  }
});
