/**
 * The consistency auditor against real Redis and PostgreSQL: an entry corrupted directly in
 * Redis is caught, dropped, counted and logged; entries that agree with the database are left
 * alone.
 */
import assert from 'node:assert/strict';
import { test, before, after } from 'node:test';
import Redis from 'ioredis';
import { scanKeys } from '../support/redis-keys';
import { postJson, startTestService, uniqueName, REDIS_URL, type TestDatabase } from '../support/services';
import { historyDatabase, DAY, HOUR } from '../support/fixture';
import { decode, encode } from '../../server/cache/codec';
import type { Entry } from '../../server/cache/store';
import type { RunningService } from '../../server/main';

let db: TestDatabase;
let svc: RunningService;
let redis: Redis;
const prefix = uniqueName('audit').replace(/_/g, '-');
const range = {
  from: Math.floor((Date.now() - DAY) / HOUR) * HOUR - 3 * HOUR,
  to: Math.floor((Date.now() - DAY) / HOUR) * HOUR,
};

before(async () => {
  db = await historyDatabase({ days: 2, rowsPerHour: 200, refreshedHoursAgo: 1 });
  svc = await startTestService({
    DATABASE_URL: db.url,
    CACHE_PREFIX: prefix,
    CACHE_NEAR_LEASE_MS: '0',
    AUDIT_INTERVAL_SECONDS: '0',
  });
  redis = new Redis(REDIS_URL);
});
after(async () => {
  await svc?.stop();
  redis?.disconnect();
  await db?.drop();
});

const ask = async (q: Record<string, unknown>) => {
  const r = await postJson(`${svc.url}/api/v1/query`, { range, queries: [{ refId: 'A', ...q }] });
  assert.equal(r.status, 200);
  return r.body.results.A.frames[0];
};
const counter = async (name: 'auditChecks' | 'auditMismatches') =>
  (await svc.metrics[name].get()).values[0]?.value ?? 0;

test('answers that agree with the database pass the audit and stay cached', async () => {
  await ask({ kind: 'stats' });
  await ask({ kind: 'stats' });
  const result = await svc.auditor!.runOnce();
  assert.equal(result.checked, 1);
  assert.equal(result.mismatches, 0);
  assert.equal((await ask({ kind: 'stats' })).schema.meta.custom.cache, 'hit');
});

test('an entry corrupted in Redis is caught, dropped, counted, and the next answer is right again', async () => {
  const truth = await ask({ kind: 'stats', metricType: 'RULE_EXECUTION' });
  assert.equal((await ask({ kind: 'stats', metricType: 'RULE_EXECUTION' })).schema.meta.custom.cache, 'hit');
  const keys = (await scanKeys(redis, `{${prefix}}:*:q:*`)).filter((k) => !k.endsWith(':lock'));
  let corrupted = 0;
  for (const key of keys) {
    const entry = decode<Entry>((await redis.getBuffer(key))!)!;
    if (JSON.stringify(entry.a.frames[0].data.values) !== JSON.stringify(truth.data.values)) {
      continue;
    }
    entry.a.frames[0].data.values[0][0] = (entry.a.frames[0].data.values[0][0] as number) + 1;
    await redis.set(key, await encode(entry), 'KEEPTTL');
    corrupted++;
  }
  assert.equal(corrupted, 1);
  const served = await ask({ kind: 'stats', metricType: 'RULE_EXECUTION' });
  assert.equal(served.data.values[0][0], truth.data.values[0][0] + 1, 'the corrupted entry is served until audited');
  const checksBefore = await counter('auditChecks');
  const result = await svc.auditor!.runOnce();
  assert.equal(result.mismatches, 1);
  assert.equal(await counter('auditMismatches'), 1);
  assert.ok((await counter('auditChecks')) > checksBefore);
  const after = await ask({ kind: 'stats', metricType: 'RULE_EXECUTION' });
  assert.equal(after.schema.meta.custom.cache, 'miss', 'the entry was dropped');
  assert.deepEqual(after.data.values, truth.data.values);
});
