/**
 * The Redis tier in front of the database (docs/architecture.md, "Cached answers never outlive the data under them"):
 * - one round trip per lookup (LOOKUP reads the generations and the entry together);
 * - stale-while-revalidate: entries outlive their freshness by one TTL; a stale hit is
 *   answered at once and refreshed in the background (or kept while the database is down);
 * - stampede control: identical misses share one computation in-process, and a short Redis
 *   lock makes other instances wait for the holder's answer instead of querying;
 * - every Redis call through the guard (circuit breaker, error counter): never fatal;
 * - a near cache: hot entries answered from this process under a short lease.
 * The key scheme is keys.ts; invalidation is invalidation.ts.
 */
import type { CacheStatus, InvalidateRequest } from '../contract';
import { frameValues, MANY_VALUES, valueCount, type Answer } from '../query/executor';
import type { NormalizedQuery } from '../query/normalize';
import type { CacheLayer, FetchOptions } from '../query/service';
import type { Metrics } from '../observability/metrics';
import { encode, encodeJson } from './codec';
import { RecentlyDecoded } from './decoded';
import { answerBytes } from './weight';
import { answeredWithin, RedisGuard } from './guard';
import { Invalidator } from './invalidation';
import { fingerprint, generationKeys, keyspace, type Keyspace, type NamedGenerations } from './keys';
import { NearCache } from './near';
import { ASKED_MS, type MemoryPressure } from './pressure';
import { redisInfo, type RedisClient, type RedisInfo } from './redis';
import { INVALIDATE, LOOKUP } from './scripts';
import { SingleFlight } from './single-flight';
import { loopTurns, mapInTurns } from '../query/turns';

/** What Redis holds per key. */
export interface Entry {
  /** Fresh until (epoch ms). */
  f: number;
  a: Answer;
}

/**
 * The JSON of an entry with many values (the same object once parsed), its frames a slice per
 * loop turn: in one piece, a few MB of it holds the loop for tens of ms.
 */
async function entryJsonInTurns({ f, a }: Entry): Promise<string> {
  const { frames, ...rest } = a;
  const texts = await mapInTurns(frames, (frame) => JSON.stringify(frame), frameValues);
  // rest always has fields (tiers, sql, …): its text after `{` goes on after the frames.
  return `{"f":${JSON.stringify(f)},"a":{"frames":[${texts.join(',')}],${JSON.stringify(rest).slice(1)}}`;
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
  /** Bytes of answers kept in this process, by the near cache and by the recently decoded values each (weight.ts; CACHE_LOCAL_MAX_BYTES; no limit when absent). */
  localMaxBytes?: number;
  /** A Redis answer later than this counts as a failure toward opening the circuit (CACHE_SLOW_MS; 100 when absent). */
  slowMs?: number;
}

export interface CacheContext {
  /** Identifies the database answers come from (keys.ts). */
  database: string;
  /** The data version an answer depends on (the change log's newest relevant change). */
  dataVersion?: (q: NormalizedQuery) => string;
  /** While a change just announced is read (db/change-feed.ts announcedRead, bounded in time): the versions do not hold it yet. */
  catchingUp?: () => Promise<void> | null;
  /** Told of every hit of a settled answer (the consistency auditor samples them). */
  onSettledHit?: (q: NormalizedQuery, key: string) => void;
  /** Which rule and parser ids have generations of their own (keys.ts generationKeys); every id when absent. */
  namedGenerations?: NamedGenerations;
  /** Whether Redis is nearly full (pressure.ts): settled answers are then stored on their second ask. */
  pressure?: MemoryPressure;
  onError?: (err: Error) => void;
}

/** How long the lease record outlives the last lookup: longer than any lease (≤ 60 s). */
const LEASE_RECORD_MS = 120_000;

type ScriptedRedis = RedisClient & {
  ruleperfLookupBuffer(n: number, ...args: string[]): Promise<[Buffer, Buffer | null]>;
  ruleperfInvalidate(n: number, ...args: string[]): Promise<number>;
};

/** How long an entry lives at most: freshness plus one more TTL for stale serving. */
export function entryLifetimeMs(s: CacheSettings): number {
  return 2 * 1000 * Math.max(s.settledTtlSeconds, s.ttlSeconds + s.jitterSeconds);
}

export class QueryCache implements CacheLayer {
  readonly ks: Keyspace;
  readonly guard: RedisGuard;
  readonly near: NearCache<Answer>;
  private readonly redis: ScriptedRedis;
  private readonly flights = new SingleFlight<Answer>();
  private readonly decoded: RecentlyDecoded<Entry>;
  /** Answers computed on a miss and sent, while they are being stored (key → answer). */
  private readonly storing = new Map<string, { answer: Answer; freshUntil: number }>();
  private readonly renewing = new Set<string>();
  private readonly baseKeys = new WeakMap<NormalizedQuery, { version: string; base: string }>();
  private readonly invalidator: Invalidator;
  /** Generations idle this long expire: longer than any entry stored under them lives. */
  private readonly generationTtlMs: number;

  constructor(
    redis: RedisClient,
    private readonly settings: CacheSettings,
    private readonly metrics: Metrics,
    private readonly context: CacheContext
  ) {
    this.ks = keyspace(settings.prefix, context.database);
    redis.defineCommand('ruleperfLookup', { lua: LOOKUP });
    redis.defineCommand('ruleperfInvalidate', { lua: INVALIDATE });
    this.redis = redis as ScriptedRedis;
    this.guard = new RedisGuard(metrics, {
      onError: context.onError,
      reconnect: () => redis.disconnect(true),
      ping: () => redis.ping(),
      slowMs: settings.slowMs,
    });
    const maxBytes = settings.localMaxBytes ?? Infinity;
    this.near = new NearCache(settings.nearLeaseMs ?? 0, settings.nearEntries ?? 500, maxBytes, answerBytes);
    this.decoded = new RecentlyDecoded<Entry>(500, maxBytes, (entry) => answerBytes(entry.a));
    metrics.watchLocalCaches({ near: this.near, decoded: this.decoded });
    this.generationTtlMs = 2 * entryLifetimeMs(settings);
    this.invalidator = new Invalidator(this.redis, this.ks, this.guard, this.near, this.generationTtlMs);
  }

  state(): 'up' | 'degraded' {
    return this.guard.state();
  }

  /**
   * Whether Redis answers a PING within `ms`: the start-up banner asks it, since the circuit
   * says "up" until a call has failed (an unreachable Redis was announced as the cache).
   */
  answersWithin(ms: number): Promise<boolean> {
    return answeredWithin(this.redis.ping(), ms).then(
      () => true,
      () => false
    );
  }

  private ttlMs(answer: Answer): number {
    if (!answer.touchesLiveEdge && !answer.shortLived) {
      return this.settings.settledTtlSeconds * 1000;
    }
    return (this.settings.ttlSeconds + Math.random() * this.settings.jitterSeconds) * 1000;
  }

  /** The entry key before generations: fingerprint and data version. */
  baseKey(q: NormalizedQuery): string {
    const version = this.context.dataVersion?.(q) ?? '0';
    // The same string object for the same key: its hash is computed once for the near cache's Map.
    const known = this.baseKeys.get(q);
    if (known?.version === version) {
      return known.base;
    }
    const base = this.ks.query(fingerprint(q), version);
    if (Object.isFrozen(q)) {
      this.baseKeys.set(q, { version, base });
    }
    return base;
  }

  /**
   * The entry under `base` with the current generations: its key and its decoded value
   * (null when absent); undefined when Redis is bypassed.
   */
  async lookup(base: string, q: NormalizedQuery): Promise<{ key: string; entry: Entry | null } | undefined> {
    const gens = generationKeys(this.ks, q, this.context.namedGenerations);
    const lease = String(this.near.enabled ? this.near.leaseMs : 0);
    const found = await this.guard.run('lookup', () =>
      this.redis.ruleperfLookupBuffer(
        gens.length + 1,
        this.ks.nearLease,
        ...gens,
        base,
        lease,
        String(LEASE_RECORD_MS),
        String(this.generationTtlMs)
      )
    );
    if (!found) {
      return undefined;
    }
    const key = found[0].toString();
    return { key, entry: found[1] ? this.decoded.decode(key, found[1]) : null };
  }

  /** The answer Redis holds for `q`, fresh or stale (under the current generations, as any lookup), without computing. */
  async held(q: NormalizedQuery): Promise<Answer | undefined> {
    const found = await this.lookup(this.baseKey(q), q);
    // Or still on its way into Redis (computeOnce), under the same generations.
    return found && (found.entry?.a ?? this.storing.get(found.key)?.answer);
  }

  /** The answer this instance holds for `q` under a lease (a hit, counted), or undefined: then `fetch`. */
  nearHit(q: NormalizedQuery): Answer | undefined {
    if (this.context.catchingUp?.()) {
      return undefined; // `fetch` waits for the change's read first
    }
    return this.nearHitAt(this.baseKey(q), q);
  }

  private nearHitAt(base: string, q: NormalizedQuery, background = false): Answer | undefined {
    const near = this.near.get(base);
    if (!near) {
      return undefined;
    }
    if (near.renew) {
      this.renewLease(base, q);
    }
    this.metrics.hot.lookupResult(background).hit.inc();
    if (!background) {
      this.metrics.hot.nearHit.inc();
    }
    return near.entry.value;
  }

  async fetch(
    q: NormalizedQuery,
    compute: (abandoned?: AbortSignal) => Promise<Answer>,
    options: FetchOptions = {}
  ): Promise<{ answer: Answer; status: CacheStatus }> {
    const { refusal, background = false, asker } = options;
    const counts = this.metrics.hot.lookupResult(background);
    const announced = this.context.catchingUp?.();
    if (announced) {
      await announced; // at most ANNOUNCED_READ_WAIT_MS after the announcement
    }
    const base = this.baseKey(q);
    const near = this.nearHitAt(base, q, background);
    if (near) {
      return { answer: near, status: 'hit' };
    }
    const token = this.near.begin();
    const found = await this.lookup(base, q);
    if (!found) {
      // Bypassed: still coalesce identical concurrent queries in this process.
      const { promise, joined } = this.flights.run(
        `bypass:${base}`,
        (abandoned) => loopTurns.next('miss').then(() => compute(abandoned)),
        asker
      );
      if (joined && !background) {
        this.metrics.coalesced.inc();
      }
      counts.bypass.inc();
      return { answer: await promise, status: 'bypass' };
    }
    const { key, entry } = found;
    if (entry && entry.f > Date.now()) {
      this.near.put(base, token, entry.a, entry.f);
      counts.hit.inc();
      if (!entry.a.touchesLiveEdge) {
        this.context.onSettledHit?.(q, key);
      }
      return { answer: entry.a, status: 'hit' };
    }
    if (entry) {
      // Stale: answer now, refresh in the background (errors keep the stale entry). The refresh
      // starts after this answer is written, so building its query does not delay it.
      counts.stale.inc();
      setImmediate(() =>
        this.flights.run(key, () => this.computeAndStore(key, compute)).promise.catch(() => undefined)
      );
      return { answer: entry.a, status: 'stale' };
    }
    // Computed here moments ago and on its way into Redis (computeOnce): the cached answer,
    // held near as a Redis hit would be (this lookup confirmed the generations it is keyed by).
    const storing = this.storing.get(key);
    if (storing) {
      this.near.put(base, token, storing.answer, storing.freshUntil);
      counts.hit.inc();
      if (!storing.answer.touchesLiveEdge) {
        this.context.onSettledHit?.(q, key);
      }
      return { answer: storing.answer, status: 'hit' };
    }
    counts.miss.inc();
    // The flight is joined at once (identical misses share it), its work waits for a turn.
    const { promise, joined } = this.flights.run(
      key,
      (abandoned) =>
        loopTurns.next('miss').then(() => this.computeOnce(key, () => compute(abandoned), refusal, background)),
      asker
    );
    if (joined && !background) {
      this.metrics.coalesced.inc();
    }
    return { answer: await promise, status: 'miss' };
  }

  /**
   * Re-confirms a near entry with Redis after the current answer is written; a changed key
   * (invalidated elsewhere) or a missing or stale entry drops it instead.
   */
  private renewLease(base: string, q: NormalizedQuery): void {
    if (this.renewing.has(base)) {
      return;
    }
    this.renewing.add(base);
    setImmediate(async () => {
      try {
        const token = this.near.begin();
        const entry = (await this.lookup(base, q))?.entry;
        if (entry && entry.f > Date.now()) {
          this.near.put(base, token, entry.a, entry.f);
        } else {
          this.near.drop(base);
        }
      } catch (err) {
        this.context.onError?.(err as Error);
      } finally {
        this.renewing.delete(base);
      }
    });
  }

  /** Across instances: the lock holder computes; others wait for its answer. */
  private async computeOnce(
    key: string,
    compute: () => Promise<Answer>,
    refusal?: () => Error | null,
    background = false
  ): Promise<Answer> {
    // Refused anyway (a burst the database cannot take): no lock to take and give back.
    const refused = refusal?.();
    if (refused) {
      throw refused;
    }
    const lockKey = this.ks.lock(key);
    const got = await this.guard.run('lock', () => this.redis.set(lockKey, '1', 'PX', this.settings.lockMs, 'NX'));
    if (got === null) {
      // Someone else holds the lock: poll for their answer until it appears or the lock goes.
      const deadline = Date.now() + this.settings.lockMs;
      for (let wait = 5; Date.now() < deadline; wait = Math.min(wait * 2, 50)) {
        await new Promise((r) => setTimeout(r, wait));
        const [value, locked] = (await this.guard.run('lock-wait', () =>
          Promise.all([this.redis.getBuffer(key), this.redis.exists(lockKey)])
        )) ?? [null, 0];
        const entry = value ? this.decoded.decode(key, value) : null;
        if (entry) {
          if (!background) {
            this.metrics.coalesced.inc(); // answered by the other's query, not one of its own
          }
          return entry.a;
        }
        if (!locked) {
          break;
        }
      }
    }
    const unlock = async () => {
      if (got === 'OK') {
        await this.guard.run('unlock', () => this.redis.del(lockKey));
      }
    };
    let answer: Answer;
    try {
      answer = await compute();
    } catch (err) {
      await unlock();
      throw err;
    }
    // The client is answered now; encoding, storing and giving the lock back (about a
    // millisecond, three round trips' worth) follow its answer instead of delaying it. Until
    // stored, this instance's lookups find the answer here, and other instances wait on the lock.
    const ttl = this.ttlMs(answer);
    const held = { answer, freshUntil: Date.now() + ttl };
    this.storing.set(key, held);
    setImmediate(() => {
      void this.worthStoring(key, background)
        .then((worth) => {
          if (worth) {
            return this.store(key, answer, ttl);
          }
          this.metrics.cacheSkipped.inc({ reason: 'first_ask_nearly_full' });
        })
        .catch(() => undefined)
        .then(unlock)
        .then(() => {
          // Only now: a lookup answered before the SET landed still finds it here, and cannot
          // take the lock back before then and compute it again.
          if (this.storing.get(key) === held) {
            this.storing.delete(key);
          }
        });
    });
    return answer;
  }

  /**
   * Whether an answer computed on a miss is stored: always, but while Redis is nearly full only
   * when asked before, by any instance (a marker in Redis, about 100 bytes for ASKED_MS:
   * pressure.ts), or by warming (the recently asked questions, ahead of their next minute).
   * Ranges ending now too: a stream of distinct spans ending now pushed a dashboard's settled
   * entries out. Decided after the client is answered.
   */
  private async worthStoring(key: string, background: boolean): Promise<boolean> {
    if (background || !this.context.pressure?.nearlyFull()) {
      return true;
    }
    const first = await this.guard.run('asked', () => this.redis.set(this.ks.asked(key), '1', 'PX', ASKED_MS, 'NX'));
    // null: the marker was there. Redis failing (undefined): nothing stored anyway.
    return first === null;
  }

  private async computeAndStore(key: string, compute: () => Promise<Answer>): Promise<Answer> {
    const answer = await compute();
    await this.store(key, answer);
    return answer;
  }

  /** Stores an answer under `key` (kept one more TTL past freshness, to serve stale while revalidating). */
  async store(key: string, answer: Answer, ttl = this.ttlMs(answer)): Promise<void> {
    const values = valueCount(answer);
    if (values > 1.25 * this.settings.maxValueBytes) {
      // Will not fit: a timeseries value deflates to 0.5-1.1 bytes (90 days of 3-hour points for
      // 100 rules and "(other)", 9 metrics: 727,000 values, 4.3 MB of JSON, 0.8 MB deflated; 45
      // series of 6 columns, 583,000 values: 291 KB). Skipped before encoding, which cost 25 ms
      // of the event loop and a 4 MB string each (peak RSS under 50 such requests at once
      // 312-372 MB with, 227-257 MB without).
      this.metrics.cacheSkipped.inc({ reason: 'too_large' });
      return;
    }
    const entry: Entry = { f: Date.now() + ttl, a: answer };
    const value = values > MANY_VALUES ? await encodeJson(await entryJsonInTurns(entry)) : await encode(entry);
    if (value.length > this.settings.maxValueBytes) {
      this.metrics.cacheSkipped.inc({ reason: 'too_large' });
      return;
    }
    this.metrics.cacheValueBytes.observe(value.length);
    await this.guard.run('store', () => this.redis.set(key, value, 'PX', Math.round(ttl * 2)));
  }

  /** Removes one entry (the auditor drops entries that disagree with the database). */
  async drop(key: string): Promise<void> {
    this.near.clear();
    await this.guard.run('drop', () => this.redis.del(key));
  }

  invalidate(target: InvalidateRequest): Promise<void> {
    return this.invalidator.invalidate(target);
  }

  /** Memory, keys and evictions (summed over every master on a Cluster); null when Redis is unreachable. */
  async redisInfo(): Promise<RedisInfo | null> {
    return (await this.guard.run('info', () => redisInfo(this.redis))) ?? null;
  }
}

export { CacheUnavailable } from './invalidation';

/** The layer used when CACHE_ENABLED=false: every query goes to the database, coalesced in-process. */
export class NoCache implements CacheLayer {
  private readonly flights = new SingleFlight<Answer>();
  constructor(private readonly metrics: Metrics) {}
  async fetch(
    q: NormalizedQuery,
    compute: (abandoned?: AbortSignal) => Promise<Answer>,
    options: FetchOptions = {}
  ): Promise<{ answer: Answer; status: CacheStatus }> {
    const { promise, joined } = this.flights.run(
      fingerprint(q),
      (abandoned) => loopTurns.next('miss').then(() => compute(abandoned)),
      options.asker
    );
    if (joined && !options.background) {
      this.metrics.coalesced.inc();
    }
    this.metrics.hot.lookupResult(options.background ?? false).bypass.inc();
    return { answer: await promise, status: 'bypass' };
  }
}
