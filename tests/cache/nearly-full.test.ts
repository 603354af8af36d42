/**
 * A Redis nearly full (a private one, with maxmemory): an answer is stored on its second ask, so
 * a stream of one-off ranges cannot push the dashboards' entries out; with room to spare, on its
 * first, as always.
 */
import assert from 'node:assert/strict';
import { test, before, after } from 'node:test';
import Redis from 'ioredis';
import pino from 'pino';
import { postJson, startTestService, type TestDatabase } from '../support/services';
import { historyDatabase, DAY, HOUR } from '../support/fixture';
import { hasRedisServer, startPrivateRedis, type PrivateRedis } from '../support/private-redis';
import type { RunningService } from '../../server/main';

let db: TestDatabase;
let redis: PrivateRedis | undefined;
let svc: RunningService | undefined;
let other: RunningService | undefined;

before(async () => {
  db = await historyDatabase({ days: 3, rowsPerHour: 100 });
});
after(async () => {
  await svc?.stop();
  await other?.stop();
  await redis?.stop();
  await db?.drop();
});

const past = (hoursAgo: number) => {
  const to = Math.floor(Date.now() / HOUR) * HOUR - hoursAgo * HOUR;
  return { range: { from: to - DAY + 17_000, to }, queries: [{ refId: 'A', kind: 'stats' }] };
};
/** The next ask, after the one before has been stored (that follows its answer). */
const later = () => new Promise((r) => setTimeout(r, 200));
const cacheOf = async (body: object, on = svc!) => {
  const r = await postJson(`${on.url}/api/v1/query`, body);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body.results.A.frames[0].schema.meta.custom.cache as string;
};

test('nearly full: an answer, settled or ending now, is stored when asked the second time, by any instance; with room, the first', async (t) => {
  if (!hasRedisServer) {
    return t.skip('redis-server is not installed: no private Redis to fill');
  }
  redis = await startPrivateRedis(['--maxmemory', '16mb', '--maxmemory-policy', 'allkeys-lru']);
  const client = new Redis(redis.url);
  try {
    // Someone else's data: past 80 % of maxmemory, below it (nothing evicted).
    const used = async () => Number(/used_memory:(\d+)/.exec(await client.info('memory'))![1]);
    const others: string[] = [];
    while ((await used()) < 0.86 * 16 * 1024 * 1024) {
      others.push(`other:data:${others.length}`);
      await client.set(others[others.length - 1], 'x'.repeat(256 * 1024));
    }
    const env = { DATABASE_URL: db.url, REDIS_URL: redis.url, CACHE_NEAR_LEASE_MS: '0', CACHE_PREFIX: 'nearly-full' };
    svc = await startTestService(env);
    other = await startTestService(env);
    await new Promise((r) => setTimeout(r, 300)); // the first INFO read
    const oneOff = past(3);
    const asks = async (body: object, second = svc!) => [
      await cacheOf(body),
      await cacheOf(body, second),
      await later().then(() => cacheOf(body)),
    ];
    assert.deepEqual(await asks(oneOff), ['miss', 'miss', 'hit']);
    const metrics = await (await fetch(`${svc.url}/metrics`)).text();
    assert.match(metrics, /ruleperf_cache_skipped_total\{reason="first_ask_nearly_full"\} 1\n/);
    // A range ending now too (a stream of distinct spans ending now pushed settled entries out):
    // asked within one minute, so all three are one cache key.
    if (Date.now() % 60_000 > 55_000) {
      await new Promise((r) => setTimeout(r, 60_000 - (Date.now() % 60_000) + 100));
    }
    const now = Date.now();
    const moving = { range: { from: now - 2 * HOUR, to: now }, queries: [{ refId: 'A', kind: 'stats' }] };
    assert.deepEqual(await asks(moving), ['miss', 'miss', 'hit']);
    // Asked first of one instance, then of another: stored at the second ask all the same.
    const twice = past(12);
    assert.deepEqual(await asks(twice, other), ['miss', 'miss', 'hit']);
    assert.equal(await client.exists(...others), others.length, 'nothing evicted');
    // Room again: read at the next settled miss (at most a second old), stored at once after.
    await client.del(...others);
    await new Promise((r) => setTimeout(r, 1100));
    await cacheOf(past(30));
    await new Promise((r) => setTimeout(r, 100));
    const roomy = past(6);
    assert.deepEqual([await cacheOf(roomy), await cacheOf(roomy)], ['miss', 'hit']);
  } finally {
    client.disconnect();
  }
});

test('full, evicting nothing: the log says why every answer bypasses the cache', async (t) => {
  if (!hasRedisServer) {
    return t.skip('redis-server is not installed: no private Redis to fill');
  }
  // Redis refuses every write "OOM"; the lookup script writes, so the circuit opened and every
  // answer went to the database, with nothing in the log (connection errors only were logged).
  const full = await startPrivateRedis(['--maxmemory', '1mb', '--maxmemory-policy', 'noeviction']);
  const client = new Redis(full.url);
  const lines: string[] = [];
  const log = pino({ level: 'warn' }, { write: (line: string) => void lines.push(line) });
  let svcFull: RunningService | undefined;
  try {
    for (let i = 0; ; i++) {
      try {
        await client.set(`other:data:${i}`, 'x'.repeat(64 * 1024));
      } catch {
        break; // full
      }
    }
    svcFull = await startTestService({ DATABASE_URL: db.url, REDIS_URL: full.url, CACHE_PREFIX: 'full' }, log);
    const body = past(5);
    const caches = [await cacheOf(body, svcFull), await cacheOf(body, svcFull), await cacheOf(body, svcFull)];
    assert.ok(!caches.includes('hit'), `nothing can be stored: ${caches.join(', ')}`);
    const said = lines.map((l) => JSON.parse(l).msg as string).filter((m) => /OOM/.test(m));
    assert.equal(said.length, 1, `said once: ${JSON.stringify(lines.map((l) => JSON.parse(l).msg))}`);
    assert.match(said[0], /Redis is full and evicts nothing .*maxmemory-policy allkeys-lru/);
  } finally {
    client.disconnect();
    await svcFull?.stop();
    await full.stop();
  }
});
