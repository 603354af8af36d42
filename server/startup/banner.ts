/**
 * What `npm start` prints once the service is ready: where it listens, an example request, and
 * where its cache is (a Redis already running on the default address is used without being
 * asked for: say so, without its credentials).
 */
import type { Config } from '../config';
import { exampleCurl } from '../http/security';

/** The Redis the cache uses, as host:port (no user or password), or how it is reached. */
export function redisWhere(
  config: Pick<Config, 'REDIS_URL' | 'REDIS_SENTINELS' | 'REDIS_SENTINEL_NAME' | 'REDIS_CLUSTER_NODES'>
): string {
  if (config.REDIS_CLUSTER_NODES) {
    return `the Redis Cluster at ${config.REDIS_CLUSTER_NODES}`;
  }
  if (config.REDIS_SENTINELS) {
    return `the Redis "${config.REDIS_SENTINEL_NAME}" found through the Sentinels at ${config.REDIS_SENTINELS}`;
  }
  try {
    const url = new URL(config.REDIS_URL);
    return `the Redis at ${url.host}${url.pathname.length > 1 ? ` (database ${url.pathname.slice(1)})` : ''}`;
  } catch {
    return 'the Redis of REDIS_URL';
  }
}

export function readyBanner(
  o: { url: string; startedInSeconds: number; cacheState: 'up' | 'degraded' | 'disabled' },
  config: Config
): string {
  const cache =
    o.cacheState === 'disabled'
      ? 'Cache: off (CACHE_ENABLED=false): every answer comes from the database.'
      : o.cacheState === 'up'
        ? `Cache: ${redisWhere(config)}, keys under "${config.CACHE_PREFIX}" (CACHE_ENABLED=false turns it off).${
            config.WARM_ON_START && config.READY_WAITS_FOR_WARMING_SECONDS > 0
              ? ` /readyz says ready once the first warming pass has filled it (at most ${config.READY_WAITS_FOR_WARMING_SECONDS} s).`
              : ''
          }`
        : `Cache: ${redisWhere(config)} is not answering: answers come from the database until it does.`;
  // The embedded database without demo data holds no rows: the example would answer 0 executions, unexplained.
  const empty =
    !config.DATABASE_URL && config.DEMO_DAYS === 0
      ? `\nDEMO_DAYS=0: no demo data is generated; an embedded database without rows answers 0 executions until some are loaded, e.g.\n` +
        `  DATABASE_URL="$(cat '${config.DATA_DIR.replaceAll("'", "'\\''")}/pglite.url')" npm run generate -- --days 1 --method insert\n`
      : '';
  return `\nruleperf answers at ${o.url} (started in ${o.startedInSeconds.toFixed(1)} s)\n${cache}\n\nTry (stats for the last 24 hours):\n${exampleCurl(o.url, config)}\n${empty}\n`;
}
