/** Prometheus metrics (prom-client); the alert rules, the dashboards and the README name them. */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { HotHistogram } from './histogram';
import { Tallies, type Tally } from './tallies';

const CACHE_RESULTS = ['hit', 'miss', 'stale', 'bypass'] as const;
export type CacheResult = (typeof CACHE_RESULTS)[number];

export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'ruleperf_' });
  // What the hot path counts (answers, cache results, near hits) is tallied in plain numbers and added at collection (tallies.ts).
  const flushes: Array<() => void> = [];
  const collect = () => flushes.forEach((flush) => flush());
  // Queues read at collection time: the admission of each database pool, the loop's turns.
  const queues = new Map<string, { waiting: number; active: number }>();
  let turns: { depth: number } | null = null;
  // Answers kept in the process, read at collection time (cache/near.ts, cache/decoded.ts).
  const localCaches = new Map<string, { heldBytes: number }>();
  // Answers waiting for their clients to read them (http/unsent.ts), read at collection time.
  let unsent: () => number = () => 0;
  const m = {
    registry,
    /** Reports the bytes of answers waiting for their clients in /metrics from now on. */
    watchUnsent(held: () => number) {
      unsent = held;
    },
    /** Reports what these in-process caches hold in /metrics from now on. */
    watchLocalCaches(caches: Record<string, { heldBytes: number }>) {
      for (const [store, cache] of Object.entries(caches)) {
        localCaches.set(store, cache);
      }
    },
    /** Reports these queues' lengths in /metrics from now on. */
    watchQueues(admissions: Record<string, { waiting: number; active: number }>, loopTurns: { depth: number }) {
      for (const [pool, admission] of Object.entries(admissions)) {
        queues.set(pool, admission);
      }
      turns = loopTurns;
    },
    cacheRequests: new Counter({
      name: 'ruleperf_cache_requests_total',
      help: 'Query cache lookups by result',
      labelNames: ['result'] as const,
      registers: [registry],
      collect,
    }),
    queryDuration: new HotHistogram({
      name: 'ruleperf_query_duration_seconds',
      help: 'Time to answer one query (one panel target), by kind, cache status and primary tier',
      labelNames: ['kind', 'cache', 'tier'] as const,
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10],
      registers: [registry],
    }),
    cacheErrors: new Counter({
      name: 'ruleperf_cache_errors_total',
      help: 'Redis calls of the cache that failed or timed out, by operation',
      labelNames: ['op'] as const,
      registers: [registry],
    }),
    auditChecks: new Counter({
      name: 'ruleperf_cache_audit_checks_total',
      help: 'Cached answers re-computed from the database by the consistency auditor',
      registers: [registry],
    }),
    auditMismatches: new Counter({
      name: 'ruleperf_cache_audit_mismatches_total',
      help: 'Cached answers the auditor found different from the database (each dropped and logged)',
      registers: [registry],
    }),
    dbQueries: new Counter({
      name: 'ruleperf_db_queries_total',
      help: 'Queries sent to the database by finest tier read',
      labelNames: ['tier'] as const,
      registers: [registry],
    }),
    warmingLookups: new Counter({
      name: 'ruleperf_cache_warming_lookups_total',
      help: 'Cache lookups made by cache warming, by result (not in ruleperf_cache_requests_total, which counts what users asked)',
      labelNames: ['result'] as const,
      registers: [registry],
      collect,
    }),
    nearHits: new Counter({
      name: 'ruleperf_cache_near_hits_total',
      help: 'Cache hits answered from this instance\'s near cache (a subset of ruleperf_cache_requests_total{result="hit"})',
      registers: [registry],
      collect,
    }),
    coalesced: new Counter({
      name: 'ruleperf_coalesced_requests_total',
      help: 'Dashboard requests answered by an identical query in flight instead of one of their own (a subset of ruleperf_cache_requests_total misses and bypasses; cache warming is not counted)',
      registers: [registry],
    }),
    cacheSkipped: new Counter({
      name: 'ruleperf_cache_skipped_total',
      help: 'Answers not stored in the cache, by reason',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    cacheValueBytes: new Histogram({
      name: 'ruleperf_cache_value_bytes',
      help: 'Size of stored cache values',
      buckets: [256, 512, 1024, 2048, 4096, 16384, 65536, 262144, 1048576],
      registers: [registry],
    }),
    redisUsedMemory: new Gauge({
      name: 'ruleperf_redis_used_memory_bytes',
      help: 'Redis used_memory as last read',
      registers: [registry],
    }),
    circuitOpen: new Gauge({
      name: 'ruleperf_cache_circuit_open',
      help: '1 while the cache circuit is open (Redis bypassed)',
      registers: [registry],
    }),
    refreshLag: new Gauge({
      name: 'ruleperf_aggregate_refresh_lag_seconds',
      help: 'How late a rollup refresh is: seconds since its last successful refresh beyond its schedule (0 when on time)',
      labelNames: ['rollup'] as const,
      registers: [registry],
    }),
    refreshDuration: new Gauge({
      name: 'ruleperf_aggregate_refresh_duration_seconds',
      help: 'Duration of the last refresh of each rollup',
      labelNames: ['rollup'] as const,
      registers: [registry],
    }),
    watermarkAge: new Gauge({
      name: 'ruleperf_aggregate_watermark_age_seconds',
      help: 'Seconds between now and the rollup watermark (complete-up-to)',
      labelNames: ['rollup'] as const,
      registers: [registry],
    }),
    dbWaiting: new Gauge({
      name: 'ruleperf_db_admission_waiting',
      help: 'Uncached answers waiting for a database slot (beyond DB_QUEUE_MAX they are refused as busy)',
      labelNames: ['pool'] as const,
      registers: [registry],
      collect() {
        queues.forEach((q, pool) => this.set({ pool }, q.waiting));
      },
    }),
    dbActive: new Gauge({
      name: 'ruleperf_db_admission_active',
      help: 'Uncached answers holding a database slot (at most the pool size)',
      labelNames: ['pool'] as const,
      registers: [registry],
      collect() {
        queues.forEach((q, pool) => this.set({ pool }, q.active));
      },
    }),
    cacheLocalBytes: new Gauge({
      name: 'ruleperf_cache_local_bytes',
      help: 'Bytes of answers kept in this process (values, SQL, rendered bodies), by the near cache and by the recently decoded Redis values, as last weighed (at most CACHE_LOCAL_MAX_BYTES each)',
      labelNames: ['store'] as const,
      registers: [registry],
      collect() {
        localCaches.forEach((c, store) => this.set({ store }, c.heldBytes));
      },
    }),
    httpUnsentBytes: new Gauge({
      name: 'ruleperf_http_unsent_bytes',
      help: 'Bytes of answers ended but not yet taken by their clients (past HTTP_UNSENT_MAX_BYTES, API requests are answered busy)',
      registers: [registry],
      collect() {
        this.set(unsent());
      },
    }),
    loopTurnsWaiting: new Gauge({
      name: 'ruleperf_loop_turns_waiting',
      help: 'Uncached steps waiting for their event-loop turn (cached answers never wait here)',
      registers: [registry],
      collect() {
        this.set(turns?.depth ?? 0);
      },
    }),
    httpRequests: new Counter({
      name: 'ruleperf_http_requests_total',
      help: 'HTTP requests by route and status',
      labelNames: ['route', 'status'] as const,
      registers: [registry],
      collect,
    }),
  };
  const cacheTallies = new Tallies(m.cacheRequests);
  const warmingTallies = new Tallies(m.warmingLookups);
  const nearTallies = new Tallies(m.nearHits);
  const httpTallies = new Tallies(m.httpRequests);
  const httpByRoute = new Map<string, Map<number, Tally>>();
  flushes.push(
    () => cacheTallies.flush(),
    () => warmingTallies.flush(),
    () => nearTallies.flush(),
    () => httpTallies.flush()
  );
  const byResult = (tallies: Tallies<'result'>) =>
    Object.fromEntries(CACHE_RESULTS.map((r) => [r, tallies.of(r, { result: r })])) as Record<CacheResult, Tally>;
  const hot = {
    /** ruleperf_cache_requests_total by result. */
    cacheResult: byResult(cacheTallies),
    /** ruleperf_cache_warming_lookups_total by result. */
    warmingResult: byResult(warmingTallies),
    /** ruleperf_cache_near_hits_total. */
    nearHit: nearTallies.of('', {}),
    /** The result tallies a cache lookup counts in: users' or cache warming's. */
    lookupResult(background: boolean): Record<CacheResult, Tally> {
      return background ? this.warmingResult : this.cacheResult;
    },
    /** ruleperf_http_requests_total for a route and status. */
    httpRequest(route: string, status: number): Tally {
      let byStatus = httpByRoute.get(route);
      if (!byStatus) {
        httpByRoute.set(route, (byStatus = new Map()));
      }
      let tally = byStatus.get(status);
      if (!tally) {
        byStatus.set(status, (tally = httpTallies.of(`${status} ${route}`, { route, status: String(status) })));
      }
      return tally;
    },
  };
  m.circuitOpen.set(0);
  for (const result of CACHE_RESULTS) {
    m.cacheRequests.inc({ result }, 0);
    m.warmingLookups.inc({ result }, 0);
  }
  m.coalesced.inc(0);
  m.auditChecks.inc(0);
  m.auditMismatches.inc(0);
  for (const op of ['lookup', 'store']) {
    m.cacheErrors.inc({ op }, 0);
  }
  m.nearHits.inc(0);
  return { ...m, hot };
}

export type Metrics = ReturnType<typeof createMetrics>;
