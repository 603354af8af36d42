/**
 * The Redis client: a single node (REDIS_URL), Sentinel (REDIS_SENTINELS=host:port,…
 * with REDIS_SENTINEL_NAME) or Cluster (REDIS_CLUSTER_NODES=host:port,…), all through
 * ioredis. Commands fail fast when disconnected or slow, so the circuit can open instead
 * of requests waiting on the cache.
 */
import Redis, { Cluster, type RedisOptions } from 'ioredis';
import type { Config } from '../config';

export type RedisClient = Redis | Cluster;

function hostPorts(list: string): Array<{ host: string; port: number }> {
  return list.split(',').map((entry) => {
    const [host, port] = entry.trim().split(':');
    return { host, port: Number(port || 6379) };
  });
}

export function createRedis(config: Config): RedisClient {
  const common: RedisOptions = {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: config.CACHE_SLOW_MS,
    connectTimeout: 1000,
    // Reconnect quickly so the circuit can close within seconds of Redis returning.
    retryStrategy: (times) => Math.min(100 * times, 500),
    lazyConnect: false,
  };
  if (config.REDIS_CLUSTER_NODES) {
    return new Cluster(hostPorts(config.REDIS_CLUSTER_NODES), { enableOfflineQueue: false, redisOptions: common });
  }
  if (config.REDIS_SENTINELS) {
    return new Redis({ ...common, sentinels: hostPorts(config.REDIS_SENTINELS), name: config.REDIS_SENTINEL_NAME });
  }
  return new Redis(config.REDIS_URL, common);
}
