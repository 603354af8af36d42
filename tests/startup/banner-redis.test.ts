/**
 * The start-up banner says where the cache is only if it answers: the circuit says "up" until
 * a call has failed, and an unreachable Redis was announced as the cache.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { freshDatabase, REDIS_URL } from '../support/services';
import { startServiceProcess } from '../../testkit/service-process';

test('an unreachable Redis is announced as not answering, with a warning; a reachable one as the cache', async () => {
  const db = await freshDatabase({ migrate: true });
  try {
    for (const [redisUrl, expected] of [
      ['redis://127.0.0.1:1', /Cache: the Redis at 127\.0\.0\.1:1 is not answering/],
      [REDIS_URL, /Cache: the Redis at [^\n]+, keys under "banner-redis"/],
    ] as const) {
      const svc = await startServiceProcess({
        DATABASE_URL: db.url,
        REDIS_URL: redisUrl,
        CACHE_PREFIX: 'banner-redis',
        WARM_ON_START: 'false',
        REFRESH_SCHEDULER: 'off',
      });
      try {
        assert.match(svc.output(), expected);
        if (redisUrl !== REDIS_URL) {
          // The log is written in batches: the warning may follow the banner.
          const warning = /"level":40[^\n]*the Redis of REDIS_URL is not answering/;
          for (const deadline = Date.now() + 3000; !warning.test(svc.output()) && Date.now() < deadline;) {
            await new Promise((r) => setTimeout(r, 50));
          }
          assert.match(svc.output(), warning);
        }
      } finally {
        await svc.stop();
      }
    }
  } finally {
    await db.drop();
  }
});
