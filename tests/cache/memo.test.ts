/**
 * What the cached path remembers between requests (normalized queries, their keys) against
 * real Redis: a changed data version or covered minute is a different key and a miss, and
 * the near cache never answers across such a change.
 */
import assert from 'node:assert/strict';
import { test, before, after } from 'node:test';
import Redis from 'ioredis';
import { scanKeys } from '../support/redis-keys';
import { QueryCache } from '../../server/cache/store';
import { createMetrics } from '../../server/observability/metrics';
import { NormalizeMemo } from '../../server/query/normalize-memo';
import type { RollupInfo } from '../../server/query/catalog';
import type { Answer } from '../../server/query/executor';
import type { RuleperfQuery } from '../../server/contract';
import { REDIS_URL, uniqueName } from '../support/services';

let redis: Redis;
const prefix = uniqueName('memo').replace(/_/g, '-');
before(() => {
  redis = new Redis(REDIS_URL);
});
after(async () => {
  const keys = await scanKeys(redis, `{${prefix}}*`);
  if (keys.length) {
    await redis.del(...keys);
  }
  redis.disconnect();
});

const H = 3_600_000;
const ROLLUPS: RollupInfo[] = [
  {
    name: 'metrics_hourly_total',
    tier: 'hourly_total',
    source: 'metrics',
    bucketMs: H,
    dims: [],
    refreshEveryMs: 300_000,
    rankKeys: false,
  },
];
const answer = (n: number): Answer => ({
  frames: [
    { schema: { name: 'stats', fields: [{ name: 'executionCount', type: 'number' }] }, data: { values: [[n]] } },
  ],
  tiers: ['hourly_total'],
  watermark: null,
  touchesLiveEdge: true,
  sql: 'SELECT 1',
  notices: [],
  computedAt: Date.now(),
});

test('a new data version or covered minute is another key: the near cache and Redis miss, then hold the new answer', async () => {
  let version = '7';
  const cache = new QueryCache(
    redis,
    {
      prefix,
      ttlSeconds: 60,
      jitterSeconds: 0,
      settledTtlSeconds: 3600,
      maxValueBytes: 1 << 20,
      lockMs: 2000,
      nearLeaseMs: 10_000,
      nearEntries: 100,
    },
    createMetrics(),
    {
      database: 'test-db',
      dataVersion: () => version,
    }
  );
  const memo = new NormalizeMemo();
  const query = { refId: 'A', kind: 'stats', granularity: 'auto' } as RuleperfQuery;
  const now = Date.now();
  const q = memo.normalize({ range: { from: now - H, to: now } }, query, ROLLUPS, now);
  let computed = 0;
  const compute = (n: number) => async () => {
    computed++;
    return answer(n);
  };
  assert.equal((await cache.fetch(q, compute(1))).status, 'miss');
  assert.equal((await cache.fetch(q, compute(1))).status, 'hit', 'from Redis, now held near');
  assert.equal(cache.nearHit(q)?.frames[0].data.values[0][0], 1);
  const before = cache.baseKey(q);
  assert.equal(cache.baseKey(q), before, 'the same key object while nothing changes');

  version = '8'; // a refresh rewrote rows this answer covers
  assert.notEqual(cache.baseKey(q), before);
  assert.match(cache.baseKey(q), /:8$/);
  assert.equal(cache.nearHit(q), undefined, 'the near cache does not answer under the new version');
  const fresh = await cache.fetch(q, compute(2));
  assert.deepEqual([fresh.status, fresh.answer.frames[0].data.values[0][0], computed], ['miss', 2, 2]);

  // A minute later the covered range moves: another normalized query, another key.
  const later = memo.normalize({ range: { from: now - H + 60_000, to: now + 60_000 } }, query, ROLLUPS, now + 60_000);
  assert.notEqual(later, q);
  assert.notEqual(cache.baseKey(later), cache.baseKey(q));
  assert.equal(cache.nearHit(later), undefined);
  assert.equal((await cache.fetch(later, compute(3))).status, 'miss');
});

test(
  'a miss is answered before it is stored; meanwhile this instance serves it as a hit, other instances wait on the lock, and it is in Redis afterwards',
  { timeout: 20_000 },
  async () => {
    // Storing waits on a gate this test opens: nothing here depends on timing.
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const gated = new Proxy(redis, {
      get(target, name, receiver) {
        if (name === 'set') {
          return async (...args: unknown[]) => {
            if (!args.includes('NX')) {
              await gate; // the entry, not the lock
            }
            return (target.set as (...a: unknown[]) => Promise<unknown>)(...args);
          };
        }
        const value = Reflect.get(target, name, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const settings = {
      prefix: uniqueName('store-after').replace(/_/g, '-'),
      ttlSeconds: 60,
      jitterSeconds: 0,
      settledTtlSeconds: 3600,
      maxValueBytes: 1 << 20,
      lockMs: 5000,
      nearLeaseMs: 10_000,
      nearEntries: 100,
    };
    const cache = new QueryCache(gated as Redis, settings, createMetrics(), { database: 'test-db' });
    const other = new QueryCache(redis, { ...settings, nearLeaseMs: 0 }, createMetrics(), { database: 'test-db' });
    const query = { refId: 'A', kind: 'stats', granularity: 'auto' } as RuleperfQuery;
    const now = Date.now();
    const q = new NormalizeMemo().normalize({ range: { from: now - H, to: now } }, query, ROLLUPS, now);
    let computed = 0;
    const compute = async () => answer(++computed);

    const first = await cache.fetch(q, compute);
    assert.deepEqual([first.status, computed], ['miss', 1], 'answered while its entry waits to be stored');
    const second = await cache.fetch(q, compute);
    assert.deepEqual([second.status, second.answer, computed], ['hit', first.answer, 1]);
    // Another instance finds no entry and the lock taken: it waits for the entry, computing nothing.
    const elsewhere = other.fetch(q, async () => {
      computed++;
      return answer(99);
    });
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(computed, 1, 'the other instance waits on the lock');

    open();
    const waited = await elsewhere;
    assert.deepEqual([waited.answer.frames[0].data.values[0][0], computed], [1, 1], 'it got the stored answer');
    const found = await other.lookup(other.baseKey(q), q);
    assert.equal(found?.entry?.a.frames[0].data.values[0][0], 1, 'in Redis');
    const locks = await scanKeys(redis, `{${settings.prefix}}*lock*`);
    assert.deepEqual(locks, [], 'the lock was given back once stored');
    const keys = await scanKeys(redis, `{${settings.prefix}}*`);
    if (keys.length) {
      await redis.del(...keys);
    }
  }
);

test('coalesced requests are dashboard requests answered by another query in flight: warming that joins one is not counted', async () => {
  // Cache Health's share of queries answered without the database adds them to hits: counting
  // warming's (not in ruleperf_cache_requests_total) put it above all.
  const metrics = createMetrics();
  const cache = new QueryCache(
    redis,
    { prefix, ttlSeconds: 60, jitterSeconds: 0, settledTtlSeconds: 3600, maxValueBytes: 1 << 20, lockMs: 2000 },
    metrics,
    { database: 'test-db' }
  );
  const now = Date.now();
  const q = new NormalizeMemo().normalize(
    { range: { from: now - 3 * H, to: now - 2 * H } },
    { refId: 'A', kind: 'stats', granularity: 'auto' } as RuleperfQuery,
    ROLLUPS,
    now
  );
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let computed = 0;
  const compute = async () => {
    computed++;
    await gate;
    return answer(5);
  };
  const asked = [true, true, true, false, false].map((background) => cache.fetch(q, compute, { background }));
  await new Promise((r) => setTimeout(r, 50));
  release();
  await Promise.all(asked);
  assert.equal(computed, 1, 'one query for all five');
  const users = (await metrics.cacheRequests.get()).values.reduce((n, v) => n + v.value, 0);
  assert.equal(users, 2, 'two dashboard lookups');
  assert.equal(
    (await metrics.coalesced.get()).values[0].value,
    2,
    'both answered by the query in flight, warming not counted'
  );
});
