/**
 * The near cache: this instance's copy of recently read Redis entries, each held under a
 * lease, so a hot key is answered without a Redis round trip. A Redis round trip is what
 * a cached answer waits on; after even a short idle gap it costs about a millisecond here
 * (both processes must be woken), which is most of a hit's latency under bursty
 * dashboard traffic.
 *
 * Why answers stay correct:
 * - a lease starts when the Redis lookup that confirmed the entry was *sent*, so it ends
 *   at most `leaseMs` after Redis last saw the entry's generations as current;
 * - an invalidation bumps the generations in Redis, clears this instance's copies, and
 *   returns only after the longest lease any instance recorded in Redis (see
 *   QueryCache.invalidate): by then every lease granted before the bump, on any
 *   instance, has ended, so no instance serves the old answer;
 * - a lookup in flight while this instance clears its copies cannot re-install an old
 *   one (the epoch check below);
 * - only fresh entries are held; past freshness, the Redis path (stale-while-revalidate)
 *   takes over.
 * A hit on a lease past half its length is answered at once and the lease renewed in the
 * background, so keys requested at least every half lease never wait for Redis.
 */
export interface NearEntry<T> {
  value: T;
  /** Fresh until (epoch ms), as stored in Redis. */
  freshUntil: number;
  /** When the confirming lookup was sent (performance.now()). */
  leasedAt: number;
}

export class NearCache<T> {
  private readonly entries = new Map<string, NearEntry<T>>();
  private epoch = 0;

  constructor(
    readonly leaseMs: number,
    private readonly capacity: number
  ) {}

  get enabled(): boolean {
    return this.leaseMs > 0 && this.capacity > 0;
  }

  /** The entry for `base` while its lease runs and it is fresh; `renew` when past half the lease. */
  get(
    base: string,
    now = performance.now(),
    wallNow = Date.now()
  ): { entry: NearEntry<T>; renew: boolean } | undefined {
    const entry = this.entries.get(base);
    if (!entry) {
      return undefined;
    }
    const age = now - entry.leasedAt;
    if (age >= this.leaseMs || entry.freshUntil <= wallNow) {
      this.entries.delete(base);
      return undefined;
    }
    return { entry, renew: age >= this.leaseMs / 2 };
  }

  /** A token for a lookup about to be sent: pass it back to `put`. */
  begin(now = performance.now()): { epoch: number; sentAt: number } {
    return { epoch: this.epoch, sentAt: now };
  }

  /** Holds an entry a lookup confirmed, unless the cache was cleared since the lookup was sent. */
  put(base: string, token: { epoch: number; sentAt: number }, value: T, freshUntil: number): void {
    if (!this.enabled || token.epoch !== this.epoch) {
      return;
    }
    const current = this.entries.get(base);
    if (current && current.leasedAt > token.sentAt) {
      return;
    } // a later lookup already renewed it
    this.entries.delete(base); // re-inserted last: the Map's order is least recently confirmed first
    this.entries.set(base, { value, freshUntil, leasedAt: token.sentAt });
    if (this.entries.size > this.capacity) {
      this.entries.delete(this.entries.keys().next().value!);
    }
  }

  drop(base: string): void {
    this.entries.delete(base);
  }

  /** Drops every copy (on invalidation); lookups already in flight will not re-install theirs. */
  clear(): void {
    this.epoch++;
    this.entries.clear();
  }

  get size(): number {
    return this.entries.size;
  }
}
