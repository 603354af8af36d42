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

/** An entry held, with the bytes it was last weighed at. */
type Held<T> = NearEntry<T> & { bytes: number };

export class NearCache<T> {
  private readonly entries = new Map<string, Held<T>>();
  private epoch = 0;
  /** What the entries held weigh, as last weighed (on put and on every hit: a hit may render one more body). */
  private bytes = 0;

  constructor(
    readonly leaseMs: number,
    private readonly capacity: number,
    private readonly maxBytes = Infinity,
    private readonly weigh: (value: T) => number = () => 0
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
      this.remove(base, entry);
      return undefined;
    }
    this.reweigh(base, entry);
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
    if (current) {
      this.remove(base, current); // re-inserted last: the Map's order is least recently confirmed first
    }
    const held: Held<T> = { value, freshUntil, leasedAt: token.sentAt, bytes: 0 };
    this.entries.set(base, held);
    this.reweigh(base, held);
    while (this.entries.size > this.capacity) {
      this.dropOldest();
    }
  }

  drop(base: string): void {
    const entry = this.entries.get(base);
    if (entry) {
      this.remove(base, entry);
    }
  }

  /** Drops every copy (on invalidation); lookups already in flight will not re-install theirs. */
  clear(): void {
    this.epoch++;
    this.entries.clear();
    this.bytes = 0;
  }

  /** Bytes the entries held weigh, as last weighed. */
  get heldBytes(): number {
    return this.bytes;
  }

  /** Weighs an entry again: over the byte limit alone it goes, else the least recently confirmed go until within it. */
  private reweigh(base: string, entry: Held<T>): void {
    const bytes = this.weigh(entry.value);
    this.bytes += bytes - entry.bytes;
    entry.bytes = bytes;
    if (bytes > this.maxBytes) {
      // Over the limit alone: not kept, and nothing else dropped for it.
      this.remove(base, entry);
      return;
    }
    while (this.bytes > this.maxBytes && this.entries.size > 0) {
      this.dropOldest();
    }
  }

  private dropOldest(): void {
    const [base, entry] = this.entries.entries().next().value!;
    this.remove(base, entry);
  }

  private remove(base: string, entry: Held<T>): void {
    this.entries.delete(base);
    this.bytes -= entry.bytes;
  }

  get size(): number {
    return this.entries.size;
  }
}
