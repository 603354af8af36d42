/**
 * What `GET /api/v1/cache/stats` reports: lookups by result (from the Prometheus
 * counters, so both always agree), the near cache, and Redis's own memory figures.
 */
import type { Metrics } from '../observability/metrics';
import type { QueryCache } from './store';

export type CacheStats = {
  state: 'up' | 'degraded' | 'disabled';
  hits: number;
  misses: number;
  stale: number;
  bypassed: number;
  /** (hits + stale) / answers asked of the cache, bypassed ones too (as the hit-rate alert counts them: a Redis down is a rate near 0, not the hits before it); null before the first, and with the cache turned off. */
  hitRate: number | null;
  nearHits: number;
  nearEntries: number;
  entries: number | null;
  memoryBytes: number | null;
  maxMemoryBytes: number | null;
  evictedKeys: number | null;
};

export async function cacheStats(cache: QueryCache | null, metrics: Metrics): Promise<CacheStats> {
  const counts = (await metrics.cacheRequests.get()).values;
  const count = (result: string) => counts.find((v) => v.labels.result === result)?.value ?? 0;
  const [hits, misses, stale, bypassed] = ['hit', 'miss', 'stale', 'bypass'].map(count);
  const info = cache ? await cache.redisInfo() : null;
  const lookups = hits + misses + stale + bypassed;
  return {
    state: cache ? cache.state() : 'disabled',
    hits,
    misses,
    stale,
    bypassed,
    // No cache to miss when it is turned off: no rate, rather than 0.
    hitRate: cache && lookups > 0 ? (hits + stale) / lookups : null,
    nearHits: (await metrics.nearHits.get()).values[0]?.value ?? 0,
    nearEntries: cache ? cache.near.size : 0,
    entries: info?.entries ?? null,
    memoryBytes: info?.usedMemory ?? null,
    maxMemoryBytes: info?.maxMemory || null,
    evictedKeys: info?.evictedKeys ?? null,
  };
}
