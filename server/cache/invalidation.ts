/**
 * Invalidation by generation counters (never KEYS): POST /api/v1/invalidate bumps the
 * generations an answer's key carries (keys.ts), so every entry stored under the old ones
 * becomes unreachable on every instance at once. (Changes in the database — rewritten rows,
 * renamed rules — reach cached answers through the change log instead: server/db/change-feed.ts.)
 *
 * The near cache (near.ts) holds confirmed entries in each instance for a short lease; an
 * invalidation clears this instance's copies and returns only after the longest lease any
 * instance recorded in Redis, so no instance serves the old answer after it returns. When
 * Redis cannot be reached, the invalidation fails (the caller answers 503).
 */
import type { InvalidateRequest } from '../contract';
import type { RedisClient } from './redis';
import { answeredWithin, type RedisGuard } from './guard';
import { invalidationKeys, type Keyspace } from './keys';
import type { NearCache } from './near';

export class CacheUnavailable extends Error {}

/** Added to a lease an invalidation waits out, for timer and clock-rate slack. */
const LEASE_MARGIN_MS = 20;

type InvalidatingRedis = RedisClient & { ruleperfInvalidate(n: number, ...args: string[]): Promise<number> };

export class Invalidator {
  constructor(
    private readonly redis: InvalidatingRedis,
    private readonly ks: Keyspace,
    private readonly guard: RedisGuard,
    private readonly near: Pick<NearCache<unknown>, 'clear' | 'leaseMs'>,
    private readonly generationTtlMs: number
  ) {}

  /** Bumps the generations; resolves to the longest near lease any instance recorded. */
  private bump(keys: string[]): Promise<number> {
    return answeredWithin(
      this.redis.ruleperfInvalidate(keys.length + 1, this.ks.nearLease, ...keys, String(this.generationTtlMs)),
      this.guard.slowMs
    );
  }

  /** Invalidates now; throws CacheUnavailable when Redis cannot be reached. */
  async invalidate(target: InvalidateRequest): Promise<void> {
    const keys = invalidationKeys(this.ks, target);
    // This instance stops serving its near copies at once.
    this.near.clear();
    let fleetLeaseMs = 0;
    try {
      fleetLeaseMs = await this.bump(keys);
    } catch (err) {
      this.guard.failed('invalidate', err as Error);
      throw new CacheUnavailable('the cache could not be reached in time; the invalidation may not have been applied');
    } finally {
      // Lookups sent before the bump may have installed copies meanwhile.
      this.near.clear();
    }
    await outlastLeases(performance.now(), Math.max(fleetLeaseMs, this.near.leaseMs));
  }
}

/**
 * Waits until every near lease granted before `since` has ended, on every instance: the
 * longest lease any of them recorded in Redis (or this one's), whatever this one's settings.
 */
async function outlastLeases(since: number, leaseMs: number): Promise<void> {
  if (leaseMs <= 0) {
    return;
  }
  const until = since + leaseMs + LEASE_MARGIN_MS;
  // setTimeout may fire up to a millisecond early by performance.now(): loop until past.
  while (performance.now() < until) {
    await new Promise((r) => setTimeout(r, Math.max(1, Math.ceil(until - performance.now()))));
  }
}
