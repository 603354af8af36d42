/**
 * The Redis tier in front of the rollups:
 * - one round trip per lookup (a script reads the generations and the entry together);
 * - stale-while-revalidate: entries outlive their freshness by one TTL; a stale hit is
 *   answered at once and refreshed in the background (or kept when the database is down);
 * - stampede control: identical misses share one computation in-process, and a short
 *   Redis lock makes other instances wait for the holder's answer instead of querying;
 * - a circuit breaker: when Redis errs or is slow, the cache is bypassed, never fatal;
 * - invalidation by generation counters, never KEYS;
 * - a near cache (near.ts): hot entries answered from this process under a short lease,
 *   which an invalidation waits out before it returns.
 */
import type { Answer } from '../query/executor';
import type { NormalizedQuery } from '../query/normalize';
import type { CacheLayer } from '../query/service';
import type { CacheStatus } from '../contract';
import type { Metrics } from '../observability/metrics';
import { redisInfo, type RedisClient, type RedisInfo } from './redis';
import { CircuitBreaker } from './circuit';
import { decode, encode } from './codec';
import { fingerprint, generationKeys, keyspace, type Keyspace } from './keys';
import { NearCache } from './near';

interface Entry {
  /** Fresh until (epoch ms). */
  f: number;
  a: Answer;
}

export interface CacheSettings {
  prefix: string;
  ttlSeconds: number;
  jitterSeconds: number;
  settledTtlSeconds: number;
  maxValueBytes: number;
  lockMs: number;
  /** Near cache lease (0 turns it off) and size. */
  nearLeaseMs?: number;
  nearEntries?: number;
}

/**
 * The last values decoded, by key. Entries are compared byte for byte, so a repeated hit
 * reuses the decoded answer (and its rendered text) instead of inflating and parsing it
 * again, while a recomputed entry under the same key is decoded afresh.
 */
class RecentlyDecoded {
  private readonly values = new Map<string, { raw: Buffer; entry: Entry }>();
  constructor(private readonly capacity: number) {}

  decode(key: string, raw: Buffer): Entry | null {
    const known = this.values.get(key);
    if (known && known.raw.equals(raw)) {
      this.values.delete(key); // most recently used goes last
      this.values.set(key, known);
      return known.entry;
    }
    const entry = decode<Entry>(raw);
    if (entry) {
      this.values.set(key, { raw, entry });
      if (this.values.size > this.capacity) this.values.delete(this.values.keys().next().value!);
    }
    return entry;
  }
}

/**
 * KEYS: the near-lease key, then the generation keys. ARGV: the entry's base key, this
 * instance's near lease (ms, 0 when off) and how long the lease record lives. The lease
 * record holds the longest lease any instance has held recently, for invalidations to wait.
 */
const LOOKUP = `
local lease = tonumber(ARGV[2])
if lease > 0 then
  if tonumber(redis.call('GET', KEYS[1]) or '0') < lease then redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  else redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
end
local gens = redis.call('MGET', unpack(KEYS, 2))
local parts = {}
for i, v in ipairs(gens) do parts[i] = v or '0' end
local key = ARGV[1] .. ':' .. table.concat(parts, '.')
return {key, redis.call('GET', key)}`;

/**
 * KEYS: the near-lease key, then the generation keys to bump. A generation that expired
 * restarts from the server's clock in microseconds, never from 1, so an old value cannot
 * come back and match an entry stored under it. Returns the longest near lease recorded.
 */
const INVALIDATE = `
for i = 2, #KEYS do
  local k = KEYS[i]
  if redis.call('EXISTS', k) == 0 then
    local t = redis.call('TIME')
    redis.call('SET', k, t[1] .. string.format('%06d', tonumber(t[2])))
  end
  redis.call('INCR', k)
  redis.call('PEXPIRE', k, ARGV[1])
end
return tonumber(redis.call('GET', KEYS[1]) or '0')`;

/** How long the lease record outlives the last lookup: longer than any lease (≤ 60 s). */
const LEASE_RECORD_MS = 120_000;
/** Added to a lease an invalidation waits out, for timer and clock-rate slack. */
const LEASE_MARGIN_MS = 20;

/** In-process single flight: concurrent callers of one key share one computation. */
function singleFlight(inflight: Map<string, Promise<Answer>>, key: string, compute: () => Promise<Answer>): { promise: Promise<Answer>; joined: boolean } {
  const existing = inflight.get(key);
  if (existing) return { promise: existing, joined: true };
  const promise = compute().finally(() => inflight.delete(key));
  inflight.set(key, promise);
  return { promise, joined: false };
}

type ScriptedRedis = RedisClient & {
  ruleperfLookupBuffer(n: number, ...args: string[]): Promise<[Buffer, Buffer | null]>;
  ruleperfInvalidate(n: number, ...args: string[]): Promise<number>;
};

export class QueryCache implements CacheLayer {
  private readonly ks: Keyspace;
  private readonly redis: ScriptedRedis;
  private readonly inflight = new Map<string, Promise<Answer>>();
  readonly circuit: CircuitBreaker;
  private pendingInvalidations: string[][] = [];
  private readonly decoded = new RecentlyDecoded(500);
  readonly near: NearCache<Answer>;
  private readonly renewing = new Set<string>();

  constructor(
    redis: RedisClient,
    private readonly settings: CacheSettings,
    private readonly metrics: Metrics,
    private readonly onError: (err: Error) => void = () => undefined
  ) {
    this.ks = keyspace(settings.prefix);
    redis.defineCommand('ruleperfLookup', { lua: LOOKUP });
    redis.defineCommand('ruleperfInvalidate', { lua: INVALIDATE });
    this.redis = redis as ScriptedRedis;
    this.near = new NearCache(settings.nearLeaseMs ?? 0, settings.nearEntries ?? 500);
    this.circuit = new CircuitBreaker({
      failureThreshold: 2,
      probeIntervalMs: 500,
      onChange: (open) => metrics.circuitOpen.set(open ? 1 : 0),
    });
  }

  state(): 'up' | 'degraded' {
    return this.circuit.isOpen ? 'degraded' : 'up';
  }

  /** Runs a Redis call through the circuit; undefined when bypassed or failed. */
  private async guarded<T>(call: () => Promise<T>): Promise<T | undefined> {
    if (!this.circuit.allow()) return undefined;
    try {
      // Generations bumped while Redis was away are applied before anything is read from it again.
      if (this.pendingInvalidations.length) await this.flushPendingInvalidations();
      const result = await call();
      this.circuit.success();
      return result;
    } catch (err) {
      this.circuit.failure();
      this.onError(err as Error);
      return undefined;
    }
  }

  private ttlMs(answer: Answer): number {
    if (!answer.touchesLiveEdge) return this.settings.settledTtlSeconds * 1000;
    return (this.settings.ttlSeconds + Math.random() * this.settings.jitterSeconds) * 1000;
  }

  private single(key: string, compute: () => Promise<Answer>): { promise: Promise<Answer>; joined: boolean } {
    return singleFlight(this.inflight, key, compute);
  }

  /**
   * The entry under `base` with the current generations: its key and its decoded value
   * (null when absent); undefined when Redis is bypassed.
   */
  private async lookup(base: string, q: NormalizedQuery): Promise<{ key: string; entry: Entry | null } | undefined> {
    const gens = generationKeys(this.ks, q);
    const lease = String(this.near.enabled ? this.near.leaseMs : 0);
    const found = await this.guarded(() => this.redis.ruleperfLookupBuffer(gens.length + 1, this.ks.nearLease, ...gens, base, lease, String(LEASE_RECORD_MS)));
    if (!found) return undefined;
    const key = found[0].toString();
    return { key, entry: found[1] ? this.decoded.decode(key, found[1]) : null };
  }

  async fetch(q: NormalizedQuery, compute: () => Promise<Answer>): Promise<{ answer: Answer; status: CacheStatus }> {
    const base = this.ks.query(fingerprint(q));
    const near = this.near.get(base);
    if (near) {
      if (near.renew) this.renewLease(base, q);
      this.metrics.cacheRequests.inc({ result: 'hit' });
      this.metrics.nearHits.inc();
      return { answer: near.entry.value, status: 'hit' };
    }
    const token = this.near.begin();
    const found = await this.lookup(base, q);
    if (!found) {
      // Bypassed: still coalesce identical concurrent queries in this process.
      const { promise, joined } = this.single(`bypass:${base}`, compute);
      if (joined) this.metrics.coalesced.inc();
      this.metrics.cacheRequests.inc({ result: 'bypass' });
      return { answer: await promise, status: 'bypass' };
    }
    const { key, entry } = found;
    if (entry && entry.f > Date.now()) {
      this.near.put(base, token, entry.a, entry.f);
      this.metrics.cacheRequests.inc({ result: 'hit' });
      return { answer: entry.a, status: 'hit' };
    }
    if (entry) {
      // Stale: answer now, refresh in the background (errors keep the stale entry). The refresh
      // starts after this answer is written, so building its query does not delay it.
      this.metrics.cacheRequests.inc({ result: 'stale' });
      setImmediate(() => this.single(key, () => this.computeAndStore(key, compute)).promise.catch(() => undefined));
      return { answer: entry.a, status: 'stale' };
    }
    this.metrics.cacheRequests.inc({ result: 'miss' });
    const { promise, joined } = this.single(key, () => this.computeOnce(key, compute));
    if (joined) this.metrics.coalesced.inc();
    return { answer: await promise, status: 'miss' };
  }

  /**
   * Re-confirms a near entry with Redis after the current answer is written; a changed
   * key (invalidated elsewhere) or a missing or stale entry drops it instead.
   */
  private renewLease(base: string, q: NormalizedQuery): void {
    if (this.renewing.has(base)) return;
    this.renewing.add(base);
    setImmediate(async () => {
      try {
        const token = this.near.begin();
        const entry = (await this.lookup(base, q))?.entry;
        if (entry && entry.f > Date.now()) this.near.put(base, token, entry.a, entry.f);
        else this.near.drop(base);
      } catch (err) {
        this.onError(err as Error);
      } finally {
        this.renewing.delete(base);
      }
    });
  }

  /** Across instances: the lock holder computes; others wait for its answer. */
  private async computeOnce(key: string, compute: () => Promise<Answer>): Promise<Answer> {
    const lockKey = this.ks.lock(key);
    const got = await this.guarded(() => this.redis.set(lockKey, '1', 'PX', this.settings.lockMs, 'NX'));
    if (got === null) {
      // Someone else holds the lock: poll for their answer until it appears or the lock goes.
      this.metrics.coalesced.inc();
      const deadline = Date.now() + this.settings.lockMs;
      for (let wait = 5; Date.now() < deadline; wait = Math.min(wait * 2, 50)) {
        await new Promise((r) => setTimeout(r, wait));
        const [value, locked] =
          (await this.guarded(() => Promise.all([this.redis.getBuffer(key), this.redis.exists(lockKey)]))) ?? [null, 0];
        const entry = value ? decode<Entry>(value) : null;
        if (entry) return entry.a;
        if (!locked) break;
      }
    }
    try {
      return await this.computeAndStore(key, compute);
    } finally {
      if (got === 'OK') await this.guarded(() => this.redis.del(lockKey));
    }
  }

  private async computeAndStore(key: string, compute: () => Promise<Answer>): Promise<Answer> {
    const answer = await compute();
    const ttl = this.ttlMs(answer);
    const value = await encode({ f: Date.now() + ttl, a: answer } satisfies Entry);
    if (value.length > this.settings.maxValueBytes) {
      this.metrics.cacheSkipped.inc({ reason: 'too_large' });
      return answer;
    }
    this.metrics.cacheValueBytes.observe(value.length);
    // Kept for one more TTL past freshness, to serve stale while revalidating.
    await this.guarded(() => this.redis.set(key, value, 'PX', Math.round(ttl * 2)));
    return answer;
  }

  private invalidationKeys(target: { ruleId?: string; parserId?: string; all?: boolean }): string[] {
    if (target.ruleId) return [this.ks.genRule(target.ruleId), this.ks.genAnyRule];
    if (target.parserId) return [this.ks.genParser(target.parserId), this.ks.genAnyParser];
    return [this.ks.genAll];
  }

  /** Generations outlive every entry that could carry them, then expire (bounded keyspace). */
  private get generationTtlMs(): number {
    return 4 * 1000 * Math.max(this.settings.settledTtlSeconds, this.settings.ttlSeconds + this.settings.jitterSeconds);
  }

  /** Bumps the generations; resolves to the longest near lease any instance recorded. */
  private bumpGenerations(keys: string[]): Promise<number> {
    return this.redis.ruleperfInvalidate(keys.length + 1, this.ks.nearLease, ...keys, String(this.generationTtlMs));
  }

  /**
   * Invalidates now; throws when Redis cannot be reached, so the caller knows the old
   * answers may come back with Redis (the API answers 503). `queueOnFailure` (used for
   * database NOTIFY) instead keeps it and applies it before this instance trusts Redis again.
   */
  async invalidate(target: { ruleId?: string; parserId?: string; all?: boolean }, queueOnFailure = false): Promise<void> {
    const keys = this.invalidationKeys(target);
    // This instance stops serving its near copies at once (a NOTIFY does not wait out leases).
    this.near.clear();
    let fleetLeaseMs = 0;
    try {
      fleetLeaseMs = await this.bumpGenerations(keys);
    } catch (err) {
      if (!queueOnFailure) throw new CacheUnavailable('the cache could not be reached; the invalidation was not applied');
      this.pendingInvalidations.push(keys);
      this.circuit.failure();
      return;
    } finally {
      // Lookups sent before the bump may have installed copies meanwhile.
      this.near.clear();
    }
    if (!queueOnFailure) await this.outlastLeases(performance.now(), Math.max(fleetLeaseMs, this.near.leaseMs));
  }

  /**
   * Waits until every near lease granted before `since` has ended, on every instance: the
   * longest lease any of them recorded in Redis (or this one's), whatever this one's settings.
   */
  private async outlastLeases(since: number, leaseMs: number): Promise<void> {
    if (leaseMs <= 0) return;
    const until = since + leaseMs + LEASE_MARGIN_MS;
    // setTimeout may fire up to a millisecond early by performance.now(): loop until past.
    while (performance.now() < until) await new Promise((r) => setTimeout(r, Math.max(1, Math.ceil(until - performance.now()))));
  }

  private flushing: Promise<void> | null = null;

  /** Applies queued invalidations once, however many calls are waiting on it. */
  private flushPendingInvalidations(): Promise<void> {
    this.flushing ??= (async () => {
      this.near.clear();
      while (this.pendingInvalidations.length) {
        const keys = this.pendingInvalidations[0];
        await this.bumpGenerations(keys);
        this.pendingInvalidations.shift();
      }
    })().finally(() => (this.flushing = null));
    return this.flushing;
  }

  /** Memory, keys and evictions (summed over every master on a Cluster); null when Redis is unreachable. */
  async redisInfo(): Promise<RedisInfo | null> {
    return (await this.guarded(() => redisInfo(this.redis))) ?? null;
  }
}

export class CacheUnavailable extends Error {}

/** The layer used when CACHE_ENABLED=false: every query goes to the rollups, coalesced in-process. */
export class NoCache implements CacheLayer {
  private readonly inflight = new Map<string, Promise<Answer>>();
  constructor(private readonly metrics: Metrics) {}
  async fetch(q: NormalizedQuery, compute: () => Promise<Answer>): Promise<{ answer: Answer; status: CacheStatus }> {
    const { promise, joined } = singleFlight(this.inflight, fingerprint(q), compute);
    if (joined) this.metrics.coalesced.inc();
    this.metrics.cacheRequests.inc({ result: 'bypass' });
    return { answer: await promise, status: 'bypass' };
  }
}
