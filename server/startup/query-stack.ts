/**
 * Start-up, second step: everything that answers a query — the rollup catalog, admission
 * control and executors, the change feed, the cache and its auditor, the query services —
 * and the background jobs that belong to them (Redis memory readings, audits).
 */
import type pino from 'pino';
import type { Pool } from 'pg';
import type { Config } from '../config';
import { CacheAuditor } from '../cache/audit';
import { cacheCallErrorReporter, createRedis, redisInfo, reportRedisErrors } from '../cache/redis';
import { MemoryPressure } from '../cache/pressure';
import { entryLifetimeMs, NoCache, QueryCache } from '../cache/store';
import { Admission } from '../db/admission';
import { ChangeFeed, type VersionScope } from '../db/change-feed';
import { databaseIdentity } from '../db/identity';
import type { Pools } from '../db/pools';
import type { EmbeddedDatabase } from '../db/embedded';
import type { Demo } from '../demo/demo';
import { DemoNoticeExecutor } from '../demo/notices';
import type { Metrics } from '../observability/metrics';
import { loadRollupCatalog, type RollupInfo } from '../query/catalog';
import type { NormalizedQuery } from '../query/normalize';
import { QueryExecutor, type Executor } from '../query/executor';
import { KnownValues, UnknownValueExecutor, valuesInData } from '../query/unknown-values';
import { VARIABLES_MAX_AGE_MS, VariableLists, variableValues } from '../http/variables';
import { readDensities, WorkEstimator } from '../query/work';
import { KINDS } from '../query/kinds';
import { QueryService } from '../query/service';
import { loopTurns } from '../query/turns';
import { nativeFunctions } from '../db/native';
import { WatermarkSource } from '../query/watermarks';
import { RecentQueries } from '../warming/warmer';

export interface QueryStack {
  /** The rollup registry as last read. */
  rollups(): readonly RollupInfo[];
  /** After a refresh: newer watermarks, a re-read registry (a rollup a migration added), changes now. */
  refreshed(): void;
  /** Answers dashboard queries (records them for warming). */
  service: QueryService;
  /** Answers warming's queries, after dashboard queries. */
  warmingService: QueryService;
  /** The dashboard variables' lists (the endpoint's; read in turn with the answers). */
  variables: VariableLists;
  recent: RecentQueries;
  cache: QueryCache | null;
  auditor: CacheAuditor | null;
  changes: ChangeFeed;
  stop(): Promise<void>;
}

/** Give Redis a moment at start; if it is not there, the circuit opens and we serve without it. */
/** What a query's data version depends on besides its range (change-feed.ts). */
/** `report`, at most once in ten minutes (the calls between are dropped). */
function onceInTenMinutes<T>(report: (value: T) => void): (value: T) => void {
  let last = -Infinity;
  return (value) => {
    if (Date.now() - last >= 600_000) {
      last = Date.now();
      report(value);
    }
  };
}

/** Why uncached answers queue on the embedded database, in its busy answers. */
const EMBEDDED_BUSY_HINT =
  'the embedded database serves one statement at a time (set DATABASE_URL to a PostgreSQL or TimescaleDB server for parallel queries)';

const versionScope = (q: NormalizedQuery): VersionScope => ({
  range: q.range,
  names: KINDS[q.kind].names(q),
  filters: q.filters,
});

function waitForRedis(redis: ReturnType<typeof createRedis>): Promise<void> {
  if (redis.status === 'ready') {
    return Promise.resolve();
  }
  return new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 2000);
    redis.once('ready', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

export async function buildQueryStack(
  config: Config,
  log: pino.Logger,
  metrics: Metrics,
  db: { pools: Pools; url: string; demo: Demo | null; embedded: Pick<EmbeddedDatabase, 'onChange'> | null }
): Promise<QueryStack> {
  const { pools, demo } = db;
  let rollups = await loadRollupCatalog(pools.write);
  const database = await databaseIdentity(pools.read);
  const watermarks = new WatermarkSource(pools.read, config.WATERMARK_CACHE_MS);
  // Where the raw rows begin, known before the first answer is normalized (read again with every state).
  await watermarks.current().catch(() => undefined);
  const executorMetrics = { dbQuery: (tier: string) => metrics.dbQueries.inc({ tier }) };
  // Uncached work waits its turn in a bounded queue per pool (busy, not unavailable, when full).
  // On the embedded database every answer waits for its one session anyway, behind a refresh of
  // several seconds during the demo's back-fill: as long as a statement may wait for it (a new
  // user's dashboard got 503 on 4 panels of 6 after 2 s).
  const admissionFor = (concurrency: number) =>
    new Admission({
      concurrency,
      maxQueue: config.DB_QUEUE_MAX,
      maxWaitMs: pools.embedded
        ? Math.max(config.DB_QUEUE_WAIT_MS, config.DB_STATEMENT_TIMEOUT_MS)
        : config.DB_QUEUE_WAIT_MS,
      busyHint: pools.embedded ? EMBEDDED_BUSY_HINT : undefined,
    });
  const readAdmission = admissionFor(config.DB_POOL_MAX);
  // Each rollup's measured density: answers that would merge too many histogram values are
  // refused before they run, and the planner reads the smaller of two rollups that both hold
  // the answer's dimensions (work.ts, plan.ts). Limit 0 refuses nothing.
  const work = new WorkEstimator(
    async () => {
      const state = await watermarks.current();
      const marks = new Map(state.status.map((s) => [s.rollup, s.watermark?.getTime() ?? null]));
      return readDensities(pools.background, rollups, marks);
    },
    { limit: config.DB_MAX_HISTOGRAM_VALUES, timeoutMs: config.DB_STATEMENT_TIMEOUT_MS }
  );
  await work.refresh();
  // Percentiles merged in C where the ruleperf_native extension serves the sketch functions.
  const native = await nativeFunctions(pools.read);
  log.info({ native }, native.sketches ? 'percentiles merged in C (ruleperf_native)' : 'percentiles merged in SQL');
  // Filter values checked against the variables' lists, then the rollups, when an answer matched nothing.
  // The variables' lists, read in turn with the answers (busy, not unavailable, under a flood).
  const variables = new VariableLists((name) =>
    name === 'statuses'
      ? variableValues(pools.read, name, rollups) // a fixed list: no statement
      : readAdmission.run(() => variableValues(pools.read, name, rollups))
  );
  // As fresh as the endpoint's lists (10 s): a rule just added was still "unknown" for a minute.
  const known = new KnownValues(
    (name) => variables.get(name),
    valuesInData(
      pools.read,
      () => rollups,
      db.embedded === null,
      onceInTenMinutes((err) =>
        log.warn({ err: { message: err.message } }, 'looking for an unknown filter value in the data failed')
      )
    ),
    VARIABLES_MAX_AGE_MS
  );
  const executorOn = (pool: Pool, admission: Admission): Executor => {
    const executor = new QueryExecutor(
      pool,
      watermarks,
      () => rollups,
      admission,
      executorMetrics,
      work,
      native,
      !pools.embedded
    );
    const checked = new UnknownValueExecutor(executor, known);
    return demo ? new DemoNoticeExecutor(checked, demo) : checked;
  };
  const executor = executorOn(pools.read, readAdmission);
  const admissions: Record<string, Admission> = { read: readAdmission };
  let backgroundExecutor = executor;
  if (pools.background !== pools.read) {
    admissions.background = admissionFor(pools.background.options.max ?? 1);
    backgroundExecutor = executorOn(pools.background, admissions.background);
  }
  metrics.watchQueues(admissions, loopTurns);

  const redis = config.CACHE_ENABLED ? createRedis(config) : null;
  if (redis) {
    reportRedisErrors(redis, log);
  }
  if (redis) {
    await waitForRedis(redis);
  }
  const cacheSettings = {
    prefix: config.CACHE_PREFIX,
    ttlSeconds: config.CACHE_TTL_SECONDS,
    jitterSeconds: config.CACHE_JITTER_SECONDS,
    settledTtlSeconds: config.CACHE_SETTLED_TTL_SECONDS,
    maxValueBytes: config.CACHE_MAX_VALUE_BYTES,
    lockMs: config.CACHE_LOCK_MS,
    nearLeaseMs: config.CACHE_NEAR_LEASE_MS,
    nearEntries: config.CACHE_NEAR_ENTRIES,
    localMaxBytes: config.CACHE_LOCAL_MAX_BYTES,
    slowMs: config.CACHE_SLOW_MS,
  };
  // Rewritten rows and renamed rules reach every cached answer they touch through the change log.
  const changes = new ChangeFeed(pools.read, {
    pollMs: config.CHANGES_POLL_MS,
    keepMs: 2 * entryLifetimeMs(cacheSettings) + 60_000,
    // On the primary, where the changes are made: a standby (DATABASE_READ_URL) cannot LISTEN.
    listenUrl: pools.embedded ? null : db.url,
    logger: log,
  });
  await changes.start();
  // The embedded database cannot be listened to; its worker says when a statement announced a change.
  db.embedded?.onChange(() => changes.announce());
  let auditor: CacheAuditor | null = null;
  // The rule and parser ids the service knows (the same lists `known` holds, taken again every
  // 30 s): only they get cache generations of their own (keys.ts generationKeys). Until read, none.
  let knownIds: Record<'ruleId' | 'parserId', ReadonlySet<string>> | null = null;
  // One after the other: together they took two read slots, and one still held its slot after the
  // other's refusal ended the start (with DB_QUEUE_MAX=0, the first answer was then refused).
  const readKnownIds = async () => {
    const rules = await known.values('rules');
    const parsers = await known.values('parsers');
    if (rules && parsers) {
      knownIds = { ruleId: rules, parserId: parsers };
    }
  };
  if (redis) {
    await readKnownIds();
  }
  const knownIdsTimer = redis ? setInterval(() => void readKnownIds(), 30_000) : null;
  knownIdsTimer?.unref();
  const cache = redis
    ? new QueryCache(redis, cacheSettings, metrics, {
        database,
        namedGenerations: (field, id) => knownIds?.[field].has(id) ?? false,
        pressure: new MemoryPressure(() => redisInfo(redis).catch(() => null)),
        dataVersion: (q) => changes.versionOf(q, versionScope),
        catchingUp: () => changes.announcedRead(),
        onSettledHit: (q, key) => auditor?.record(q, key),
        onError: cacheCallErrorReporter(log),
      })
    : null;
  if (cache) {
    auditor = new CacheAuditor(
      {
        lookup: async (q) => {
          const found = await cache.lookup(cache.baseKey(q), q);
          return found?.entry ? { key: found.key, answer: found.entry.a } : null;
        },
        recompute: (q) => backgroundExecutor.run(q, 'background'),
        drop: (key) => cache.drop(key),
      },
      metrics,
      log,
      { sampleSize: config.AUDIT_SAMPLE_SIZE, confirmAfterMs: 2 * config.CHANGES_POLL_MS + 100 }
    );
  }
  const cacheLayer = cache ?? new NoCache(metrics);
  const recent = new RecentQueries();
  const observer = {
    observe: (kind: string, c: string, tier: string, s: number) =>
      metrics.queryDuration.observe({ kind, cache: c, tier }, s),
  };
  const service = new QueryService(
    () => rollups,
    executor,
    cacheLayer,
    observer,
    (request, query) => recent.record(request, query),
    () => watermarks.retentionEdge
  );
  const warmingService = new QueryService(
    () => rollups,
    backgroundExecutor,
    cacheLayer,
    observer,
    undefined,
    () => watermarks.retentionEdge
  );

  // A Redis that does not evict fills up: each distinct past range a client asks is kept
  // 2 × CACHE_SETTLED_TTL_SECONDS (a probe wrote 0.7 GB an hour from one client), and a full
  // noeviction Redis refuses writes (the cache circuit opens). Said once, when first seen.
  let warnedUnbounded = false;
  const readMemory = async () => {
    const info = cache ? await cache.redisInfo() : null;
    if (info) {
      metrics.redisUsedMemory.set(info.usedMemory);
      if (!info.evicts && !warnedUnbounded) {
        warnedUnbounded = true;
        log.warn(
          { maxMemory: info.maxMemory },
          'the cache Redis does not evict (no maxmemory, or maxmemory-policy noeviction): answers of distinct past ranges are each kept for hours, so a client asking many can fill its memory; run it with maxmemory and allkeys-lru (as docker-compose.yml does)'
        );
      }
    }
  };
  void readMemory();
  const memoryTimer = setInterval(readMemory, 15_000);
  memoryTimer.unref();
  const auditTimer =
    auditor && config.AUDIT_INTERVAL_SECONDS > 0
      ? setInterval(async () => {
          const result = await auditor!.runOnce().catch((err) => ({ error: (err as Error).message }));
          log.debug(result, 'cache audit');
        }, config.AUDIT_INTERVAL_SECONDS * 1000)
      : null;
  auditTimer?.unref();

  return {
    rollups: () => rollups,
    refreshed() {
      watermarks.reset();
      loadRollupCatalog(pools.read).then(
        (fresh) => (rollups = fresh),
        () => undefined
      );
      // A refresh that rewrote settled buckets logged it: apply it now rather than at the next poll.
      void changes.poll();
    },
    service,
    warmingService,
    variables,
    recent,
    cache,
    auditor,
    changes,
    async stop() {
      clearInterval(memoryTimer);
      if (knownIdsTimer) {
        clearInterval(knownIdsTimer);
      }
      if (auditTimer) {
        clearInterval(auditTimer);
      }
      await changes.stop();
      redis?.disconnect();
    },
  };
}
