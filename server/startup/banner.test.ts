/** The ready banner says where the cache is, never with its credentials. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from '../config';
import { readyBanner, redisWhere } from './banner';

const at = { url: 'http://127.0.0.1:8080', startedInSeconds: 2.04 };

test('a Redis used by default is named, host and port only', () => {
  const config = loadConfig({ REDIS_URL: 'redis://user:s3cret-pass@cache.internal:6380/2' });
  const text = readyBanner({ ...at, cacheState: 'up' }, config);
  assert.match(text, /ruleperf answers at http:\/\/127\.0\.0\.1:8080 \(started in 2\.0 s\)/);
  assert.match(
    text,
    /Cache: the Redis at cache\.internal:6380 \(database 2\), keys under "ruleperf" \(CACHE_ENABLED=false turns it off\)/
  );
  assert.match(text, /\/readyz says ready once the first warming pass has filled it \(at most 60 s\)/);
  assert.doesNotMatch(text, /s3cret|user/);
});

test('the embedded database without demo data: the banner says the example answers 0 and how to load rows', () => {
  const text = readyBanner({ ...at, cacheState: 'up' }, loadConfig({ DEMO_DAYS: '0', DATA_DIR: '/srv/rp' }));
  assert.match(text, /DEMO_DAYS=0: no demo data is generated; an embedded database without rows answers 0/);
  assert.match(text, /DATABASE_URL="\$\(cat '\/srv\/rp\/pglite\.url'\)" npm run generate -- --days 1 --method insert/);
  // A folder with spaces or quotes in its name is one word to the shell.
  const odd = readyBanner({ ...at, cacheState: 'up' }, loadConfig({ DEMO_DAYS: '0', DATA_DIR: "/srv/it's here" }));
  assert.ok(odd.includes(`$(cat '/srv/it'\\''s here/pglite.url')`), odd);
  for (const env of [{}, { DEMO_DAYS: '0', DATABASE_URL: 'postgres://p@db:5432/x' }]) {
    assert.doesNotMatch(readyBanner({ ...at, cacheState: 'up' }, loadConfig(env)), /DEMO_DAYS=0/, JSON.stringify(env));
  }
});

test('off, unreachable, Sentinel and Cluster are said as such', () => {
  assert.match(
    readyBanner({ ...at, cacheState: 'disabled' }, loadConfig({ CACHE_ENABLED: 'false' })),
    /Cache: off \(CACHE_ENABLED=false\)/
  );
  assert.match(
    readyBanner({ ...at, cacheState: 'degraded' }, loadConfig({})),
    /Cache: the Redis at 127\.0\.0\.1:6379 is not answering: answers come from the database until it does/
  );
  assert.equal(
    redisWhere(loadConfig({ REDIS_SENTINELS: 'a:26379,b:26379', REDIS_SENTINEL_NAME: 'main' })),
    'the Redis "main" found through the Sentinels at a:26379,b:26379'
  );
  assert.equal(
    redisWhere(loadConfig({ REDIS_CLUSTER_NODES: 'c1:7000,c2:7000' })),
    'the Redis Cluster at c1:7000,c2:7000'
  );
});
