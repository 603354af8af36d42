/**
 * A cached answer is never served after the data under it changed, and never comes back
 * after an invalidation — against real PostgreSQL and real Redis:
 * - rows inserted below the watermark appear in the next uncached answer (PostgreSQL flavour);
 * - a deleted or evicted generation key never brings invalidated answers back;
 * - two deployments sharing one Redis and prefix answer each from its own database.
 */
import assert from 'node:assert/strict';
import { test, before, after } from 'node:test';
import Redis from 'ioredis';
import { scanKeys } from '../support/redis-keys';
import { postJson, startTestService, uniqueName, REDIS_URL, type TestDatabase } from '../support/services';
import { historyDatabase, DAY, HOUR } from '../support/fixture';
import { hasRedisServer, startPrivateRedis, type PrivateRedis } from '../support/private-redis';
import { rawStats } from '../../testkit/raw';
import type { RunningService } from '../../server/main';

let db: TestDatabase;
const services: RunningService[] = [];
const cleanups: Array<() => Promise<unknown>> = [];

before(async () => {
  db = await historyDatabase({ days: 3, rowsPerHour: 300, refreshedHoursAgo: 1 });
});
after(async () => {
  await Promise.all(services.map((s) => s.stop()));
  for (const c of cleanups) {
    await c();
  }
  await db?.drop();
});

async function start(env: Record<string, string>) {
  const svc = await startTestService({ DATABASE_URL: db.url, ...env });
  services.push(svc);
  return svc;
}

/** A settled past range on whole minutes: two days ago, three hours long. */
const past = {
  from: Math.floor((Date.now() - 2 * DAY) / HOUR) * HOUR + 7 * 60_000,
  to: Math.floor((Date.now() - 2 * DAY) / HOUR) * HOUR + 3 * HOUR + 7 * 60_000,
};

async function stats(svc: RunningService, range: { from: number; to: number }, filters: Record<string, unknown> = {}) {
  const r = await postJson(`${svc.url}/api/v1/query`, { range, queries: [{ refId: 'A', kind: 'stats', ...filters }] });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const frame = r.body.results.A.frames[0];
  return { n: frame.data.values[0][0] as number, meta: frame.schema.meta.custom };
}

test('rows inserted below the watermark are in the next uncached answer, before any refresh (PostgreSQL flavour)', async () => {
  const svc = await start({ CACHE_ENABLED: 'false' });
  const hours = { from: past.from - 7 * 60_000, to: past.to - 7 * 60_000 };
  const before = await stats(svc, hours, { ruleId: 'late-rule' });
  assert.equal(before.n, 0);
  assert.ok(!before.meta.tiers.includes('raw'), `a settled range is read from rollups (${before.meta.tiers})`);
  await db.pool.query(
    `INSERT INTO metrics (time, metric_type, rule_id, status, execution_time_ms)
     SELECT $1::timestamptz + g * interval '1 minute', 'RULE_EXECUTION', 'late-rule', 'ERROR', g FROM generate_series(1, 5) g`,
    [new Date(past.from + HOUR)]
  );
  const after = await stats(svc, hours, { ruleId: 'late-rule' });
  assert.equal(after.n, 5, 'late rows counted at once');
  assert.ok(after.meta.tiers.includes('raw'), 'the changed hour is read from raw rows until the next refresh');
  const all = await stats(svc, hours);
  assert.equal(
    all.n,
    (await rawStats(db.pool, hours.from, hours.to)).get('')!.n,
    'the unfiltered answer equals raw SQL'
  );
});

test('a deleted generation key never brings an invalidated answer back (real Redis)', async () => {
  const prefix = uniqueName('gen').replace(/_/g, '-');
  const svc = await start({ CACHE_PREFIX: prefix, CACHE_NEAR_LEASE_MS: '0' });
  const redis = new Redis(REDIS_URL);
  cleanups.push(async () => redis.disconnect());
  const filters = { ruleId: 'rule-0003' };
  const first = await stats(svc, past, filters);
  assert.equal(first.meta.cache, 'miss');
  assert.equal((await stats(svc, past, filters)).meta.cache, 'hit');
  const invalidatedAt = Date.now();
  assert.equal((await postJson(`${svc.url}/api/v1/invalidate`, { ruleId: 'rule-0003' })).status, 200);
  const second = await stats(svc, past, filters);
  assert.equal(second.meta.cache, 'miss', 'invalidated');
  assert.ok(second.meta.computedAt >= invalidatedAt);
  // Delete every generation key this query depends on, as eviction or an operator might.
  const gens = (await scanKeys(redis, `{${prefix}}:*:gen:*`)).filter((k) => !k.endsWith(':near-lease'));
  assert.ok(gens.length >= 2, `generation keys: ${gens}`);
  await redis.del(...gens);
  for (let i = 0; i < 3; i++) {
    const again = await stats(svc, past, filters);
    assert.ok(
      again.meta.computedAt >= invalidatedAt,
      `never the answer from before the invalidation (${again.meta.cache})`
    );
  }
});

test(
  'generations evicted under maxmemory with allkeys-lru never bring invalidated answers back',
  { skip: hasRedisServer ? false : 'redis-server is not installed (Debian package redis-server)' },
  async () => {
    const redisServer: PrivateRedis = await startPrivateRedis([
      '--maxmemory',
      '4mb',
      '--maxmemory-policy',
      'allkeys-lru',
    ]);
    cleanups.push(() => redisServer.stop());
    const svc = await start({ REDIS_URL: redisServer.url, CACHE_NEAR_LEASE_MS: '0' });
    const filler = new Redis(redisServer.url);
    cleanups.push(async () => filler.disconnect());
    const rules = Array.from({ length: 30 }, (_, i) => `rule-${String(i + 1).padStart(4, '0')}`);
    for (const ruleId of rules) {
      await stats(svc, past, { ruleId });
    }
    const invalidatedAt = Date.now();
    for (const ruleId of rules) {
      assert.equal((await postJson(`${svc.url}/api/v1/invalidate`, { ruleId })).status, 200);
    }
    let served = 0;
    for (let round = 0; round < 4; round++) {
      // Push the cache's keys out: each round writes more than maxmemory of other keys.
      const value = 'x'.repeat(8192);
      for (let i = 0; i < 800; i++) {
        void filler.set(`filler:${round}:${i}`, value);
      }
      await filler.ping();
      for (const ruleId of rules) {
        const r = await stats(svc, past, { ruleId });
        assert.ok(
          r.meta.computedAt >= invalidatedAt,
          `${ruleId}: an answer from before the invalidation came back (${r.meta.cache})`
        );
        served++;
      }
    }
    const evicted = Number(/evicted_keys:(\d+)/.exec(await filler.info('stats'))![1]);
    assert.ok(evicted > 1000, `Redis evicted keys under memory pressure (${evicted})`);
    assert.equal(served, 120);
  }
);

test('two deployments sharing one Redis and prefix each answer from their own database', async () => {
  const other = await historyDatabase({ days: 3, rowsPerHour: 120, refreshedHoursAgo: 1 });
  cleanups.push(() => other.drop());
  const prefix = uniqueName('shared').replace(/_/g, '-');
  const a = await start({ CACHE_PREFIX: prefix });
  const b = await startTestService({ DATABASE_URL: other.url, CACHE_PREFIX: prefix });
  services.push(b);
  const ra = await stats(a, past);
  const rb = await stats(b, past);
  assert.equal(ra.n, (await rawStats(db.pool, past.from, past.to)).get('')!.n);
  assert.equal(rb.n, (await rawStats(other.pool, past.from, past.to)).get('')!.n);
  assert.notEqual(ra.n, rb.n);
  assert.equal(rb.meta.cache, 'miss', "the other deployment's entry is not shared");
  assert.equal((await stats(b, past)).meta.cache, 'hit');
});
