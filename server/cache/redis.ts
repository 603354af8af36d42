/**
 * The Redis client: a single node (REDIS_URL), Sentinel (REDIS_SENTINELS=host:port,…
 * with REDIS_SENTINEL_NAME) or Cluster (REDIS_CLUSTER_NODES=host:port,…), all through
 * ioredis. Commands fail fast when disconnected or slow, so the circuit can open instead
 * of requests waiting on the cache.
 */
import type { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import type pino from 'pino';
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
    // A backstop only: the cache judges Redis slow at CACHE_SLOW_MS itself (guard.ts answeredWithin),
    // once the loop has read what arrived; this limit bounds what waits on a connection gone silent.
    commandTimeout: Math.max(1000, 10 * config.CACHE_SLOW_MS),
    connectTimeout: 1000,
    // Reconnect quickly so the circuit can close within seconds of Redis returning.
    retryStrategy: (times) => Math.min(100 * times, 500),
    lazyConnect: false,
    // Lookups issued in the same tick (a dashboard's panels arrive together) share one write.
    enableAutoPipelining: true,
  };
  if (config.REDIS_CLUSTER_NODES) {
    return new Cluster(hostPorts(config.REDIS_CLUSTER_NODES), {
      enableOfflineQueue: false,
      enableAutoPipelining: true,
      redisOptions: common,
    });
  }
  if (config.REDIS_SENTINELS) {
    return new Redis({ ...common, sentinels: hostPorts(config.REDIS_SENTINELS), name: config.REDIS_SENTINEL_NAME });
  }
  return new Redis(config.REDIS_URL, { ...common, ...tlsOptions(config) });
}

/**
 * TLS for a `rediss://` REDIS_URL (credentials go in the URL: rediss://user:password@host:port).
 * The server certificate is verified against the system's CAs, or REDIS_TLS_CA_FILE's for a
 * private CA; the host name must match the certificate.
 */
function tlsOptions(config: Pick<Config, 'REDIS_URL' | 'REDIS_TLS_CA_FILE'>): RedisOptions {
  if (!/^rediss:/i.test(config.REDIS_URL)) {
    return {};
  }
  if (!config.REDIS_TLS_CA_FILE) {
    return { tls: {} };
  }
  try {
    return { tls: { ca: readFileSync(config.REDIS_TLS_CA_FILE) } };
  } catch (err) {
    throw new Error(
      `REDIS_TLS_CA_FILE: cannot read ${config.REDIS_TLS_CA_FILE} (${(err as NodeJS.ErrnoException).code ?? 'error'})`
    );
  }
}

export interface RedisInfo {
  usedMemory: number;
  maxMemory: number;
  entries: number;
  evictedKeys: number;
  /** Whether a full Redis makes room by evicting (every master: maxmemory set, a policy other than noeviction). */
  evicts: boolean;
}

/**
 * Memory, keys and evictions of the cache's Redis. On a Cluster a keyless INFO goes to one
 * random master, so every master is asked and the numbers are summed (maxmemory is 0,
 * unlimited, when any master is unlimited).
 */
export async function redisInfo(client: RedisClient): Promise<RedisInfo> {
  const nodes = client instanceof Cluster ? client.nodes('master') : [client];
  if (nodes.length === 0) {
    throw new Error('no Redis master is known yet');
  }
  const each = await Promise.all(
    nodes.map(async (node) => {
      const [memory, stats, keyspaceInfo] = await Promise.all([
        node.info('memory'),
        node.info('stats'),
        node.info('keyspace'),
      ]);
      const field = (text: string, name: string) => Number(new RegExp(`^${name}:(\\d+)`, 'm').exec(text)?.[1] ?? 0);
      const entries = [...keyspaceInfo.matchAll(/keys=(\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
      return {
        usedMemory: field(memory, 'used_memory'),
        maxMemory: field(memory, 'maxmemory'),
        entries,
        evictedKeys: field(stats, 'evicted_keys'),
        policy: /^maxmemory_policy:(\S+)/m.exec(memory)?.[1] ?? 'noeviction',
      };
    })
  );
  return {
    usedMemory: each.reduce((n, i) => n + i.usedMemory, 0),
    maxMemory: each.some((i) => i.maxMemory === 0) ? 0 : each.reduce((n, i) => n + i.maxMemory, 0),
    entries: each.reduce((n, i) => n + i.entries, 0),
    evictedKeys: each.reduce((n, i) => n + i.evictedKeys, 0),
    // Every entry has a TTL, so volatile-* policies evict them as allkeys-* do.
    evicts: each.every((i) => i.maxMemory > 0 && i.policy !== 'noeviction'),
  };
}

/**
 * Redis errors are answered by the circuit breaker (the cache bypassed), not thrown; each new
 * cause is logged once, until Redis is ready again, so a refusal is named (`WRONGPASS`, a
 * certificate) and not only seen as "not answering". ioredis's messages hold no password.
 */
export function reportRedisErrors(redis: Pick<EventEmitter, 'on'>, log: Pick<pino.Logger, 'warn'>): void {
  // Causes told apart without their numbers ("Retrying from scratch after 20 ms", 30, 40, …),
  // and at most a few of them an outage: alternating causes are not logged at each retry.
  const said = new Set<string>();
  redis.on('error', (err: Error) => {
    const cause = causeOf(err.message);
    if (!said.has(cause) && said.size < REDIS_CAUSES_LOGGED) {
      said.add(cause);
      log.warn({ err: { message: err.message } }, `the cache's Redis: ${err.message}`);
    }
  });
  redis.on('ready', () => said.clear());
}

/** An error's cause, told apart without its numbers ("Retrying from scratch after 20 ms", 30, 40, …). */
const causeOf = (message: string) => message.replace(/\d+/g, 'N');

/** Distinct Redis error causes logged between two times Redis was ready. */
const REDIS_CAUSES_LOGGED = 5;

/** A cause of failed cache calls is logged again at most this often. */
export const CALL_CAUSE_EVERY_MS = 10 * 60_000;

/**
 * Logs why cache calls fail when Redis itself refuses them (an error in its reply, the
 * connection fine: reportRedisErrors hears nothing): a full Redis that evicts nothing answers
 * every write "OOM", the lookup script writes, so the circuit opened and every answer went to
 * the database with no line in the log. Each cause (told apart without its numbers) at most
 * once every CALL_CAUSE_EVERY_MS; timeouts and lost connections are said elsewhere.
 */
export function cacheCallErrorReporter(
  log: Pick<pino.Logger, 'warn'>,
  now: () => number = Date.now
): (err: Error) => void {
  const saidAt = new Map<string, number>();
  return (err) => {
    if (/^Command timed out|Connection is closed|Stream isn't writeable|ECONNREFUSED|ECONNRESET/.test(err.message)) {
      return;
    }
    const cause = causeOf(err.message).slice(0, 200);
    const last = saidAt.get(cause);
    if (last !== undefined && now() - last < CALL_CAUSE_EVERY_MS) {
      return;
    }
    if (saidAt.size >= 100) {
      saidAt.clear();
    }
    saidAt.set(cause, now());
    const full = /^OOM\b/.test(err.message)
      ? ': Redis is full and evicts nothing (maxmemory reached, maxmemory-policy noeviction), so the cache is bypassed and every answer is read from the database; give it maxmemory-policy allkeys-lru (as docker-compose.yml does) or more maxmemory'
      : '';
    // Redis's own refusals are ReplyErrors; anything else failed on this side of the wire.
    const what = err.name === 'ReplyError' ? 'cache calls fail, Redis answers' : 'a cache call failed';
    log.warn({ err: { message: err.message } }, `${what}: ${err.message}${full}`);
  };
}
