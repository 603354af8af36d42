/**
 * The Redis tier against real Redis and PostgreSQL: aligned keys, coalescing across
 * instances, invalidation (API, and renames through the change log) without KEYS, stale-while-revalidate,
 * degradation when Redis is down or slow, bounded keys.
 */
import assert from 'node:assert/strict';
import { test, before, after } from 'node:test';
import Redis from 'ioredis';
import { Client } from 'pg';
import {
  postJson,
  startTestService,
  uniqueName,
  REDIS_URL,
  PG_HOST,
  PG_PORT,
  type TestDatabase,
} from '../support/services';
import { historyDatabase, DAY, HOUR } from '../support/fixture';
import { TcpProxy } from '../support/tcp-proxy';
import type { RunningService } from '../../server/main';
import { dashboardWarmItems } from '../../server/warming/warmer';
import { dashboardRequests } from '../../testkit/load-model';
import { join } from 'node:path';
import { SERIES_METRICS } from '../../server/contract';
import { MANY_VALUES } from '../../server/query/executor';

let db: TestDatabase;
let redis: Redis;
const services: RunningService[] = [];
const redisPort = Number(new URL(REDIS_URL).port || 6379);

before(async () => {
  db = await historyDatabase({ days: 2, rowsPerHour: 300 });
  redis = new Redis(REDIS_URL);
});
after(async () => {
  await Promise.all(services.map((s) => s.stop()));
  redis.disconnect();
  await db?.drop();
});

async function start(env: Record<string, string> = {}) {
  const svc = await startTestService({ DATABASE_URL: db.url, ...env });
  services.push(svc);
  return svc;
}

/** A fixed past instant: a range ending there is settled, answered exactly as asked. */
const midHour = Math.floor(Date.now() / HOUR) * HOUR - 30 * 60_000 - 50_000;

/** Waits, if needed, so that the next 20 s stay within one minute (ranges ending now move to the minute's end). */
async function startOfMinute(): Promise<number> {
  const into = Date.now() % 60_000;
  if (into > 35_000) {
    await new Promise((r) => setTimeout(r, 60_000 - into + 500));
  }
  return Date.now();
}

async function ask(svc: RunningService, q: Record<string, unknown>, at = midHour, span = DAY) {
  const r = await postJson(`${svc.url}/api/v1/query`, {
    range: { from: at - span, to: at },
    queries: [{ refId: 'A', kind: 'stats', ...q }],
  });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const frame = r.body.results.A.frames[0];
  return { cache: frame.schema.meta.custom.cache as string, frame, body: r.body };
}

const dbQueries = async (...svcs: RunningService[]) => {
  let n = 0;
  for (const s of svcs) {
    for (const v of (await s.metrics.dbQueries.get()).values) {
      n += v.value;
    }
  }
  return n;
};

test('"last 24 hours" asked again seconds later is a hit; a different filter is a miss', async () => {
  const svc = await start();
  const t0 = await startOfMinute();
  assert.equal((await ask(svc, { metricType: 'RULE_EXECUTION' }, t0)).cache, 'miss');
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal((await ask(svc, { metricType: 'RULE_EXECUTION' }, Date.now())).cache, 'hit');
  assert.equal(
    (await ask(svc, { metricType: ['RULE_EXECUTION'] }, Date.now())).cache,
    'hit',
    'a one-value list is the same query'
  );
  assert.equal(
    (await ask(svc, { metricType: 'RULE_EXECUTION' }, t0 + 60_000)).cache,
    'miss',
    'the next minute is another range'
  );
  assert.equal((await ask(svc, { metricType: 'ENRICHMENT' })).cache, 'miss');
  assert.equal((await ask(svc, { metricType: ['ENRICHMENT', 'RULE_EXECUTION'] })).cache, 'miss');
  assert.equal(
    (await ask(svc, { metricType: ['RULE_EXECUTION', 'ENRICHMENT'] })).cache,
    'hit',
    'filter order does not matter'
  );
  const stats = await (await fetch(`${svc.url}/api/v1/cache/stats`)).json();
  assert.equal(stats.hits, 3);
  assert.equal(stats.misses, 4);
  assert.equal(stats.hitRate, 3 / 7);
  assert.equal(stats.nearHits, 1, 'the third ask of one normalized query is answered from the near cache');
  assert.equal(stats.nearEntries, 2);
  assert.ok(stats.entries > 0 && stats.memoryBytes > 0);
});

test('"to: now-5m" asked again seconds later is a hit, read in whole minutes and saying so (sent as milliseconds, each refresh was a range of its own)', async () => {
  const svc = await start();
  await startOfMinute();
  const askRelative = async () => {
    const r = await postJson(`${svc.url}/api/v1/query`, {
      range: { from: 'now-24h', to: 'now-5m' },
      queries: [{ refId: 'A', kind: 'stats', ruleCategory: 'auth' }],
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body.results.A.frames[0].schema.meta;
  };
  const first = await askRelative();
  assert.equal(first.custom.cache, 'miss');
  assert.equal(first.custom.coveredRange.to % 60_000, 0, 'whole minutes');
  assert.match(
    first.notices.map((n: { text: string }) => n.text).join(' '),
    /given relative to now, is read in whole minutes/
  );
  await new Promise((r) => setTimeout(r, 1500));
  const again = await askRelative();
  assert.equal(again.custom.cache, 'hit');
  assert.deepEqual(again.custom.coveredRange, first.custom.coveredRange);
});

test('warming ahead: the answers the next minute will ask for are cached before it begins', async () => {
  const svc = await start({ CACHE_PREFIX: uniqueName('ahead').replace(/_/g, '-') });
  const span = DAY;
  const askAt = async (to: number) => {
    const r = await postJson(`${svc.url}/api/v1/query`, {
      range: { from: to - span, to },
      queries: [{ refId: 'A', kind: 'stats', metricType: 'ENRICHMENT' }],
    });
    assert.equal(r.status, 200);
    return r.body.results.A.frames[0].schema.meta.custom;
  };
  await askAt(Date.now()); // a now-relative question, recorded as recent
  const next = Math.floor(Date.now() / 60_000) * 60_000 + 60_000;
  const result = await svc.warmAhead(next);
  assert.ok(result.warmed >= 1, JSON.stringify(result));
  // As a panel will ask once the minute has turned (the service reads it as a range ending now).
  const meta = await askAt(next + 7_000);
  assert.equal(meta.cache, 'hit', 'computed ahead');
  assert.deepEqual(meta.coveredRange, { from: next + 60_000 - span, to: next + 60_000 });
});

test('warming ahead replays the recent queries that were answered, not those refused busy', async () => {
  // One database slot and no queue: of queries sent at once, those that find the slot taken are
  // refused (503). Each a distinct now-relative question (its span), uncached.
  const svc = await start({
    CACHE_PREFIX: uniqueName('refused').replace(/_/g, '-'),
    DB_POOL_MAX: '1',
    DB_QUEUE_MAX: '0',
  });
  const now = Date.now();
  const statuses = await Promise.all(
    Array.from({ length: 8 }, async (_, i) => {
      const r = await postJson(`${svc.url}/api/v1/query`, {
        range: { from: now - (i + 2) * HOUR, to: now },
        queries: [{ refId: 'A', kind: 'timeseries', metrics: ['p95ExecutionTimeMs'], groupBy: 'ruleId' }],
      });
      return r.status;
    })
  );
  const answered = statuses.filter((s) => s === 200).length;
  assert.ok(answered >= 1 && answered < 8, `some answered, some refused busy: ${statuses.join(' ')}`);
  assert.deepEqual([...new Set(statuses)].sort(), [200, 503]);
  // The minute after next: the pass stops at the turn of the minute it warms, however late in this one.
  const next = Math.floor(Date.now() / 60_000) * 60_000 + 120_000;
  const result = await svc.warmAhead(next);
  assert.equal(result.warmed + result.failed, answered, `replayed ${JSON.stringify(result)} of ${answered} answered`);
});

test('warming fills the dashboard\'s keys, for "All" and for each category, before the first request', async () => {
  const svc = await start({ WARM_ON_START: 'false' });
  const panels = dashboardWarmItems(join(__dirname, '..', '..', 'provisioning', 'dashboards'));
  const categories: string[] = (await (await fetch(`${svc.url}/api/v1/variables/categories`)).json()).values.map(
    (v: { value: string }) => v.value
  );
  assert.ok(categories.length > 1);
  const before = await dbQueries(svc);
  const lookups = async () => {
    const counts = async (metric: 'cacheRequests' | 'warmingLookups') =>
      Object.fromEntries((await svc.metrics[metric].get()).values.map((v) => [v.labels.result, v.value]));
    return { users: await counts('cacheRequests'), warming: await counts('warmingLookups') };
  };
  const usersBefore = (await lookups()).users;
  // Warming covers the minute it starts in; the requests below must ask within that minute.
  await startOfMinute();
  await svc.warmAll();
  assert.ok((await dbQueries(svc)) > before, 'warming queried the rollups');
  const afterWarming = await lookups();
  assert.deepEqual(afterWarming.users, usersBefore, "warming's lookups are not users' (the hit rate is theirs)");
  assert.ok(afterWarming.warming.miss > 0, 'they are counted apart');
  const warmed = await dbQueries(svc);
  for (const filters of [{}, { ruleCategory: categories[0] }, { ruleCategory: categories[categories.length - 1] }]) {
    for (const request of dashboardRequests(panels, Date.now(), filters)) {
      const r = await postJson(`${svc.url}/api/v1/query`, request);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(
        r.body.results[request.queries[0].refId!].frames[0]?.schema.meta.custom.cache,
        'hit',
        `${request.queries[0].kind} ${JSON.stringify(filters)}`
      );
    }
  }
  assert.equal(await dbQueries(svc), warmed, 'the dashboard was answered from the cache alone');
  const afterUsers = (await lookups()).users;
  assert.ok(afterUsers.hit > (usersBefore.hit ?? 0), "the dashboard's hits are counted as users'");
});

test('200 concurrent identical misses over two instances make exactly one database query', async () => {
  const prefix = uniqueName('coalesce').replace(/_/g, '-');
  const [a, b] = [await start({ CACHE_PREFIX: prefix }), await start({ CACHE_PREFIX: prefix })];
  const before = await dbQueries(a, b);
  const results = await Promise.all(
    Array.from({ length: 200 }, (_, i) => ask(i % 2 ? a : b, { kind: 'errorBreakdown', groupBy: 'parserId', limit: 7 }))
  );
  assert.equal((await dbQueries(a, b)) - before, 1, 'one database query in all');
  assert.equal(new Set(results.map((r) => JSON.stringify(r.frame.data))).size, 1, 'everyone got the same answer');
  const coalesced =
    (await a.metrics.coalesced.get()).values[0].value + (await b.metrics.coalesced.get()).values[0].value;
  const hits = results.filter((r) => r.cache === 'hit').length;
  assert.ok(coalesced + hits >= 199, `coalesced ${coalesced}, hits ${hits}: all but one waited for the first answer`);
});

test('invalidation by rule, through the API and through UPDATE rules: the next answer on every instance is fresh, without KEYS', async () => {
  const keysCalls = async () => Number(/cmdstat_keys:calls=(\d+)/.exec(await redis.info('commandstats'))?.[1] ?? 0);
  const keysBefore = await keysCalls();
  const prefix = uniqueName('inval').replace(/_/g, '-');
  const [a, b] = [await start({ CACHE_PREFIX: prefix }), await start({ CACHE_PREFIX: prefix })];
  const name = async (svc: RunningService, ruleId: string) => {
    const r = await ask(svc, { kind: 'topRules', ruleId });
    return { cache: r.cache, name: r.frame.data.values[1][0] as string };
  };
  for (const s of [a, b]) {
    for (const id of ['rule-0001', 'rule-0002']) {
      await name(s, id);
    }
  }
  assert.equal((await name(b, 'rule-0001')).cache, 'hit');

  // A change the cache cannot see (the NOTIFY trigger disabled), then the API invalidation.
  await db.pool.query('ALTER TABLE rules DISABLE TRIGGER ruleperf_rules_notify');
  await db.pool.query(`UPDATE rules SET rule_name = 'Renamed via API' WHERE rule_id = 'rule-0001'`);
  await db.pool.query('ALTER TABLE rules ENABLE TRIGGER ruleperf_rules_notify');
  assert.notEqual((await name(a, 'rule-0001')).name, 'Renamed via API', 'still cached');
  const inv = await postJson(`${a.url}/api/v1/invalidate`, { ruleId: 'rule-0001' });
  assert.equal(inv.status, 200);
  assert.deepEqual(
    await name(b, 'rule-0001'),
    { cache: 'miss', name: 'Renamed via API' },
    'the other instance recomputes'
  );
  // Shared, not recomputed: a hit, or (when b's answer is still on its way into Redis) a wait on b's lock.
  const queriedByA = await dbQueries(a);
  const shared = await name(a, 'rule-0001');
  assert.equal(shared.name, 'Renamed via API', 'and shares the fresh answer');
  assert.equal(await dbQueries(a), queriedByA, 'without querying the database');
  assert.equal((await name(b, 'rule-0002')).cache, 'hit', 'other rules stay cached');
  assert.equal((await ask(a, {})).cache, 'miss', 'unfiltered answers include the rule, so they are invalidated too');

  // Through the database: UPDATE rules → the change log (NOTIFY, polled) → every instance.
  await db.pool.query(`UPDATE rules SET rule_name = 'Renamed in SQL' WHERE rule_id = 'rule-0002'`);
  const deadline = Date.now() + 3000;
  let seen: Array<{ name: string }> = [];
  while (Date.now() < deadline) {
    seen = [await name(a, 'rule-0002'), await name(b, 'rule-0002')];
    if (seen.every((s) => s.name === 'Renamed in SQL')) {
      break;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.deepEqual(
    seen.map((s) => s.name),
    ['Renamed in SQL', 'Renamed in SQL']
  );
  assert.equal(await keysCalls(), keysBefore, 'no KEYS command was sent');
});

test('near cache: a confirmed hit is answered without a Redis lookup; an invalidation on another instance (even one without a near cache) returns only once no instance serves the old answer', async () => {
  const prefix = uniqueName('near').replace(/_/g, '-');
  const lease = 1500;
  const [a, b] = [
    await start({ CACHE_PREFIX: prefix, CACHE_NEAR_LEASE_MS: String(lease) }),
    await start({ CACHE_PREFIX: prefix, CACHE_NEAR_LEASE_MS: '0' }),
  ];
  const nearHits = async (svc: RunningService) => (await svc.metrics.nearHits.get()).values[0].value;
  assert.equal((await ask(a, { ruleId: 'rule-0003' })).cache, 'miss');
  assert.equal((await ask(a, { ruleId: 'rule-0003' })).cache, 'hit', 'confirmed by Redis, now held near');
  const before = await nearHits(a);
  for (let i = 0; i < 10; i++) {
    assert.equal((await ask(a, { ruleId: 'rule-0003' })).cache, 'hit');
  }
  assert.equal((await nearHits(a)) - before, 10, 'answered from the near cache');

  // b holds no near copies itself, but waits out the longest lease any instance recorded.
  const started = performance.now();
  assert.equal((await postJson(`${b.url}/api/v1/invalidate`, { ruleId: 'rule-0003' })).status, 200);
  assert.ok(performance.now() - started >= lease, 'the invalidation waited out the leases');
  assert.equal((await ask(a, { ruleId: 'rule-0003' })).cache, 'miss', 'the instance holding a near copy recomputes');
  assert.equal((await ask(a, { ruleId: 'rule-0003' })).cache, 'hit');
});

test('near cache: a renamed rule reaches its near copies at once, long before the lease ends', async () => {
  const c = await start({ CACHE_PREFIX: uniqueName('near-notify').replace(/_/g, '-'), CACHE_NEAR_LEASE_MS: '20000' });
  const top = { kind: 'topRules', ruleId: 'rule-0004' };
  await ask(c, top);
  assert.equal((await ask(c, top)).cache, 'hit');
  const held = (await c.metrics.nearHits.get()).values[0].value;
  assert.equal((await ask(c, top)).cache, 'hit');
  assert.equal(
    (await c.metrics.nearHits.get()).values[0].value,
    held + 1,
    'held near (a renewal would only start after 10 s)'
  );
  await db.pool.query(`UPDATE rules SET rule_name = rule_name || ' (near)' WHERE rule_id = 'rule-0004'`);
  const deadline = Date.now() + 2000;
  let cache = 'hit';
  while (cache === 'hit' && Date.now() < deadline) {
    cache = (await ask(c, top)).cache;
  }
  assert.equal(cache, 'miss', "the change log reached the answer showing the rule's name");
});

test('a generation that expired restarts from the clock, so an old value never comes back', async () => {
  const prefix = uniqueName('gen').replace(/_/g, '-');
  const svc = await start({ CACHE_PREFIX: prefix });
  const generation = async () => {
    // A full SCAN: one call of COUNT n may stop early on a Redis shared with other suites.
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await redis.scan(cursor, 'MATCH', `{${prefix}}:*:gen:rule:*`, 'COUNT', 1000);
      cursor = next;
      keys.push(...batch);
    } while (cursor !== '0');
    assert.equal(keys.length, 1, keys.join(', '));
    return { key: keys[0], value: BigInt((await redis.get(keys[0]))!) };
  };
  assert.equal((await postJson(`${svc.url}/api/v1/invalidate`, { ruleId: 'rule-0005' })).status, 200);
  const first = await generation();
  await redis.del(first.key); // as if it had expired
  assert.equal((await postJson(`${svc.url}/api/v1/invalidate`, { ruleId: 'rule-0005' })).status, 200);
  const second = await generation();
  assert.ok(second.value > first.value, `${second.value} after ${first.value}`);
});

test('every key is under the prefix and expires; invalidation keys too', async () => {
  const prefix = uniqueName('ttl').replace(/_/g, '-');
  const svc = await start({ CACHE_PREFIX: prefix });
  await ask(svc, {});
  await postJson(`${svc.url}/api/v1/invalidate`, { ruleId: 'whatever' });
  await postJson(`${svc.url}/api/v1/invalidate`, { all: true });
  let cursor = '0';
  const keys: string[] = [];
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `{${prefix}}:*`, 'COUNT', 1000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  assert.ok(keys.length >= 3, keys.join(', '));
  for (const k of keys) {
    assert.ok((await redis.pttl(k)) > 0, `${k} has a TTL`);
  }
});

test('oversized values are not stored, and are counted', async () => {
  const svc = await start({ CACHE_MAX_VALUE_BYTES: '256' });
  const skipped = async () =>
    (await svc.metrics.cacheSkipped.get()).values.find((v) => v.labels.reason === 'too_large')?.value ?? 0;
  assert.equal((await ask(svc, { kind: 'timeseries' })).cache, 'miss');
  // Stored after the answer is sent: once the attempt is over, nothing was kept.
  for (let i = 0; i < 100 && (await skipped()) < 1; i++) {
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.equal((await ask(svc, { kind: 'timeseries' })).cache, 'miss', 'not stored');
  for (let i = 0; i < 100 && (await skipped()) < 2; i++) {
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.equal(await skipped(), 2);
});

test('an answer of many values (its frames, JSON and cache value built a slice per loop turn) is the same answer on a hit from another instance', async () => {
  const [a, b] = [await start(), await start()];
  const askSeries = async (svc: RunningService) => {
    const r = await postJson(`${svc.url}/api/v1/query`, {
      range: { from: midHour - 2 * DAY, to: midHour },
      intervalMs: 10 * 60_000,
      maxDataPoints: 1000,
      queries: [{ refId: 'A', kind: 'timeseries', groupBy: 'ruleId', limit: 100, metrics: [...SERIES_METRICS] }],
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return { cache: r.body.results.A.frames[0].schema.meta.custom.cache as string, body: r.body };
  };
  const miss = await askSeries(a);
  assert.equal(miss.cache, 'miss');
  const frames = miss.body.results.A.frames as Array<{ data: { values: unknown[][] } }>;
  const values = frames.reduce((n, f) => n + f.data.values.reduce((k, c) => k + c.length, 0), 0);
  assert.ok(values > MANY_VALUES && frames.length > 2, `${values} values in ${frames.length} frames: too few to slice`);
  // Stored after the answer is sent: the other instance (no near copy) reads it from Redis.
  let hit = await askSeries(b);
  for (let i = 0; i < 100 && hit.cache !== 'hit'; i++) {
    await new Promise((r) => setTimeout(r, 20));
    hit = await askSeries(b);
  }
  assert.equal(hit.cache, 'hit');
  const data = (body: typeof miss.body) =>
    body.results.A.frames.map((f: { schema: { name: string; fields: unknown }; data: unknown }) => [
      f.schema.name,
      f.schema.fields,
      f.data,
    ]);
  assert.deepEqual(data(hit.body), data(miss.body));
  const sql = (body: typeof miss.body) => body.results.A.frames[0].schema.meta.executedQueryString;
  assert.equal(sql(hit.body), sql(miss.body));
});

test('stale-while-revalidate: past freshness the entry is served at once and refreshed; with the database down it is still served, marked stale', async () => {
  const pgProxy = new TcpProxy(PG_HOST, PG_PORT);
  const port = await pgProxy.start();
  const svc = await startTestService({
    DATABASE_URL: db.url.replace(`:${PG_PORT}/`, `:${port}/`),
    CACHE_TTL_SECONDS: '1',
    CACHE_JITTER_SECONDS: '0',
  });
  services.push(svc);
  try {
    const now = Date.now(); // touches the live edge: the short TTL applies
    assert.equal((await ask(svc, {}, now)).cache, 'miss');
    await new Promise((r) => setTimeout(r, 1100));
    const stale = await ask(svc, {}, now);
    assert.equal(stale.cache, 'stale');
    await new Promise((r) => setTimeout(r, 100));
    assert.equal((await ask(svc, {}, now)).cache, 'hit', 'revalidated in the background');
    await new Promise((r) => setTimeout(r, 1100));
    await pgProxy.stop();
    const served = await ask(svc, {}, now);
    assert.equal(served.cache, 'stale');
    assert.match(JSON.stringify(served.frame.schema.meta.notices), /freshness/);
    const uncached = await postJson(`${svc.url}/api/v1/query`, {
      range: { from: now - 2 * DAY, to: now },
      queries: [{ refId: 'A', kind: 'errorBreakdown' }],
    });
    assert.equal(uncached.status, 503);
  } finally {
    await pgProxy.stop();
  }
});

test('database too busy when a minute begins (every slot taken, no queue): the answer cached for the minute before is served, marked busy', async () => {
  const svc = await startTestService({
    DATABASE_URL: db.url,
    DB_POOL_MAX: '1',
    DB_QUEUE_MAX: '0',
    DB_STATEMENT_TIMEOUT_MS: '4000',
  });
  services.push(svc);
  const now = Date.now();
  const first = await ask(svc, {}, now);
  const locker = new Client({ connectionString: db.url });
  await locker.connect();
  try {
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE metrics IN ACCESS EXCLUSIVE MODE');
    // Another question takes the only slot and waits on the lock.
    const holding = postJson(`${svc.url}/api/v1/query`, {
      range: { from: now - DAY, to: now },
      queries: [{ refId: 'A', kind: 'errorBreakdown' }],
    });
    await new Promise((r) => setTimeout(r, 300));
    const later = await postJson(`${svc.url}/api/v1/query`, {
      range: { from: now + 60_000 - DAY, to: now + 60_000 },
      queries: [{ refId: 'A', kind: 'stats' }],
    });
    assert.equal(later.status, 200, JSON.stringify(later.body).slice(0, 300));
    const frame = later.body.results.A.frames[0];
    assert.equal(frame.schema.meta.custom.cache, 'stale');
    assert.deepEqual(frame.schema.meta.custom.coveredRange, first.frame.schema.meta.custom.coveredRange);
    assert.deepEqual(frame.data, first.frame.data);
    assert.match(
      JSON.stringify(frame.schema.meta.notices),
      /The database is too busy to answer now: this is the last cached answer, for .* not the range asked/
    );
    const never = await postJson(`${svc.url}/api/v1/query`, {
      range: { from: now + 60_000 - DAY, to: now + 60_000 },
      queries: [{ refId: 'A', kind: 'topRules' }],
    });
    assert.equal(never.status, 503, 'a question never answered is busy, as before');
    await locker.query('ROLLBACK');
    await holding;
  } finally {
    await locker.end();
  }
});

test('database down when a minute begins: the answer cached for the minute before is served, marked with the range it covers; other questions, ranges far behind and invalidated answers still fail with 503', async () => {
  const pgProxy = new TcpProxy(PG_HOST, PG_PORT);
  const port = await pgProxy.start();
  const svc = await startTestService({ DATABASE_URL: db.url.replace(`:${PG_PORT}/`, `:${port}/`) });
  services.push(svc);
  const minute = 60_000;
  const asked = (at: number) => ({ from: at - DAY, to: at });
  try {
    const now = Date.now(); // a moving range: covered to the end of its minute
    const first = await ask(svc, {}, now);
    assert.equal(first.cache, 'miss');
    const covered = first.frame.schema.meta.custom.coveredRange;
    await ask(svc, { ruleId: 'rule-0003' }, midHour); // a settled range, answered as asked
    await pgProxy.stop();

    // The same panel a minute later: a question nobody has answered, and no database.
    const later = await postJson(`${svc.url}/api/v1/query`, {
      range: asked(now + minute),
      queries: [{ refId: 'A', kind: 'stats' }],
    });
    assert.equal(later.status, 200, JSON.stringify(later.body));
    const frame = later.body.results.A.frames[0];
    assert.equal(frame.schema.meta.custom.cache, 'stale');
    assert.deepEqual(frame.schema.meta.custom.coveredRange, covered, 'says which range it covers: the earlier one');
    assert.deepEqual(frame.data, first.frame.data, "the earlier range's numbers, unchanged");
    const notices = JSON.stringify(frame.schema.meta.notices);
    assert.match(notices, /cannot be reached: this is the last cached answer, for .* not the range asked/);
    assert.doesNotMatch(notices, /whole minutes/, 'no notice that would explain the difference wrongly');

    const other = await postJson(`${svc.url}/api/v1/query`, {
      range: asked(now + minute),
      queries: [{ refId: 'A', kind: 'errorBreakdown' }],
    });
    assert.equal(other.status, 503, 'a question never answered has nothing to fall back on');
    const farLater = await postJson(`${svc.url}/api/v1/query`, {
      range: asked(now + 20 * minute),
      queries: [{ refId: 'A', kind: 'stats' }],
    });
    assert.equal(farLater.status, 503, 'an answer more than 15 minutes behind is not served in place of another');
    const otherSpan = await postJson(`${svc.url}/api/v1/query`, {
      range: { from: now + minute - 2 * DAY, to: now + minute },
      queries: [{ refId: 'A', kind: 'stats' }],
    });
    assert.equal(otherSpan.status, 503, 'nor one of another span');
    const settledLater = await postJson(`${svc.url}/api/v1/query`, {
      range: asked(midHour + minute),
      queries: [{ refId: 'A', kind: 'stats', ruleId: 'rule-0003' }],
    });
    assert.equal(
      settledLater.status,
      503,
      'nor in place of an absolute range: that is answered as asked, or not at all'
    );

    // Invalidated (the unfiltered answer includes every rule): no longer served, on any path.
    assert.equal((await postJson(`${svc.url}/api/v1/invalidate`, { ruleId: 'rule-0002' })).status, 200);
    const afterInvalidation = await postJson(`${svc.url}/api/v1/query`, {
      range: asked(now + minute),
      queries: [{ refId: 'A', kind: 'stats' }],
    });
    assert.equal(afterInvalidation.status, 503, JSON.stringify(afterInvalidation.body).slice(0, 300));
  } finally {
    await pgProxy.stop();
  }
});

test('Redis down or slow: no request fails, the circuit opens, and closes within 5 s of Redis being healthy', async () => {
  const proxy = new TcpProxy('127.0.0.1', redisPort);
  const port = await proxy.start();
  const svc = await start({ REDIS_URL: `redis://127.0.0.1:${port}` });
  const circuit = async () => (await svc.metrics.circuitOpen.get()).values[0].value;
  assert.equal((await ask(svc, { status: 'ERROR' })).cache, 'miss');

  // Down: requests keep succeeding, answered from the rollups.
  await proxy.stop();
  const statuses = new Set<string>();
  for (let i = 0; i < 30; i++) {
    statuses.add((await ask(svc, { status: 'ERROR' })).cache);
  }
  assert.ok(statuses.has('bypass'));
  assert.equal(await circuit(), 1);
  // The hit rate counts the bypassed answers as the alert does (it stayed 0.999 through an outage).
  const stats = await (await fetch(`${svc.url}/api/v1/cache/stats`)).json();
  assert.ok(stats.bypassed > 0);
  assert.equal(stats.hitRate, (stats.hits + stats.stale) / (stats.hits + stats.misses + stats.stale + stats.bypassed));
  assert.equal((await (await fetch(`${svc.url}/readyz`)).json()).cache.state, 'degraded');
  const invalidation = await fetch(`${svc.url}/api/v1/invalidate`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ all: true }),
  });
  assert.equal(invalidation.status, 503, 'an invalidation that cannot be applied says so');
  assert.equal(invalidation.headers.get('retry-after'), '5', 'and when to try again');
  assert.match((await invalidation.json()).error, /may not have been applied; retry in 5 s/);

  // Back: closes by itself within 5 s.
  await proxy.start();
  const back = Date.now();
  while ((await ask(svc, { status: 'ERROR' })).cache === 'bypass' && Date.now() - back < 5000) {
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.ok(Date.now() - back < 5000, `closed after ${Date.now() - back} ms`);
  assert.equal(await circuit(), 0);

  // Slow (150 ms a hop): bypassed, and requests stay fast. Each asks a key of its own, as a
  // key just confirmed would be answered from the near cache without Redis.
  proxy.delayMs = 150;
  const times: number[] = [];
  for (let i = 0; i < 20; i++) {
    const t = performance.now();
    await ask(svc, { status: 'ERROR', ruleId: `rule-${String(i + 1).padStart(4, '0')}` });
    times.push(performance.now() - t);
  }
  assert.equal(await circuit(), 1, 'slow Redis opened the circuit');
  assert.ok(
    times.slice(5).every((t) => t < 150),
    `later requests skip Redis: ${times.map((t) => t.toFixed(0)).join(', ')}`
  );
  proxy.delayMs = 0;
  await proxy.stop();
});

test('a Redis connection gone silent (no FIN, no RST) is replaced: the cache is back within seconds, not hours', async () => {
  const proxy = new TcpProxy('127.0.0.1', redisPort);
  const port = await proxy.start();
  const svc = await start({ REDIS_URL: `redis://127.0.0.1:${port}` });
  try {
    assert.equal((await ask(svc, { status: 'SUCCESS' })).cache, 'miss');
    proxy.silenceOpen();
    const statuses = new Set<string>();
    for (let i = 0; i < 5; i++) {
      statuses.add((await ask(svc, { status: 'SUCCESS', ruleId: `rule-${i}` })).cache);
    }
    assert.ok(statuses.has('bypass'), 'commands on the silent connection time out');
    // The new connection passes: the cache is used again.
    const silent = Date.now();
    let cache = 'bypass';
    while (cache === 'bypass' && Date.now() - silent < 15_000) {
      await new Promise((r) => setTimeout(r, 100));
      cache = (await ask(svc, { status: 'SUCCESS', ruleId: 'rule-0001', metricType: 'ENRICHMENT' })).cache;
    }
    assert.notEqual(cache, 'bypass', `still bypassing ${Date.now() - silent} ms after the connection went silent`);
  } finally {
    await proxy.stop();
  }
});

test('filter values the service does not know create no cache generation each: a request of 50 queries naming 16 made-up ids each adds no such keys to Redis', async () => {
  const prefix = uniqueName('gens').replace(/_/g, '-');
  const svc = await start({ CACHE_PREFIX: prefix });
  const generations = async () => (await redis.keys(`{${prefix}}:*:gen:*`)).length;
  // The fixed generations (all, any rule, any parser) and rule-0001's.
  await postJson(`${svc.url}/api/v1/query`, {
    range: { from: midHour - DAY, to: midHour },
    queries: [
      { refId: 'A', kind: 'stats', ruleId: 'rule-0001' },
      { refId: 'B', kind: 'stats' },
    ],
  });
  const before = await generations();
  const made = (field: string, n: number, i: number) =>
    Array.from({ length: n }, (_, j) => `${field}-made-up-${i}-${j}`);
  const r = await postJson(`${svc.url}/api/v1/query`, {
    range: { from: midHour - DAY, to: midHour },
    queries: Array.from({ length: 50 }, (_, i) => ({
      refId: `Q${i}`,
      kind: 'stats',
      ruleId: made('rule', 8, i),
      parserId: made('parser', 8, i),
    })),
  });
  assert.equal(r.status, 200, JSON.stringify(r.body).slice(0, 300));
  assert.equal(await generations(), before, 'no generation per made-up id (800 before)');
  // A known rule keeps its own: invalidating another rule leaves its answer cached.
  const one = {
    range: { from: midHour - DAY, to: midHour },
    queries: [{ refId: 'A', kind: 'stats', ruleId: 'rule-0001' }],
  };
  assert.equal((await postJson(`${svc.url}/api/v1/invalidate`, { ruleId: 'rule-0002' })).status, 200);
  assert.equal(
    (await postJson(`${svc.url}/api/v1/query`, one)).body.results.A.frames[0].schema.meta.custom.cache,
    'hit'
  );
  await redis.del(...(await redis.keys(`{${prefix}}:*`)));
});
