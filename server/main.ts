/**
 * `npm start`: the query service. Without DATABASE_URL it runs the embedded WASM
 * TimescaleDB (data under DATA_DIR), migrates it, loads a week of demo data on first
 * start and refreshes on schedule; with DATABASE_URL it serves that database.
 */
import http from 'node:http';
import { join } from 'node:path';
import pino from 'pino';
import { Pool } from 'pg';
import { loadConfig, ConfigError, type Config } from './config';
import { startEmbeddedDatabase, type EmbeddedDatabase } from './db/embedded';
import { createPools } from './db/pools';
import { latestVersion, migrate, MigrationRefused, schemaInfo, type Flavour } from './db/migrate';
import { refreshRollups } from './db/refresh';
import { generateHistory, hasMetrics, plannedRows } from './generator/history';
import { rowsProgress } from './cli/progress';
import { createMetrics } from './observability/metrics';
import { createLogger } from './observability/logger';
import { WatermarkSource } from './query/watermarks';
import { QueryExecutor } from './query/executor';
import { QueryService } from './query/service';
import { loadRollupCatalog } from './query/catalog';
import { KINDS } from './query/kinds';
import { Admission } from './db/admission';
import { ChangeFeed } from './db/change-feed';
import { databaseIdentity } from './db/identity';
import { CacheAuditor } from './cache/audit';
import { createRedis } from './cache/redis';
import { QueryCache, NoCache, entryLifetimeMs } from './cache/store';
import { listenForInvalidations } from './cache/notify';
import { dashboardWarmItems, RecentQueries, warm, WARM_VARIABLE_MAX_VALUES } from './cache/warmer';
import { RefreshScheduler } from './maintenance/scheduler';
import { createApp } from './http/app';
import { exampleCurl, securitySettings } from './http/security';
import { VARIABLE_NAMES, type ReadyResponse, type VariableName } from './contract';
import { variableValues } from './http/variables';

async function loadDemoData(pools: ReturnType<typeof createPools>, config: Config, flavour: Flavour, log: pino.Logger) {
  if (config.DEMO_DAYS === 0 || (await hasMetrics(pools.write))) return;
  const options = { days: config.DEMO_DAYS, rowsPerHour: config.DEMO_ROWS_PER_HOUR, rules: 500, parsers: 30, seed: config.DEMO_SEED, method: 'insert' as const };
  log.info(`first start: generating ${config.DEMO_DAYS} days of demo data`);
  const progress = rowsProgress('demo data', plannedRows(options));
  await generateHistory(pools.write, options, (n) => progress.add(n));
  const done = progress.stop();
  log.info({ rows: done.rows, seconds: Math.round(done.seconds) }, 'demo data loaded; building rollups');
  await refreshRollups(pools.write, flavour);
}

export interface RunningService {
  url: string;
  port: number;
  flavour: Flavour;
  metrics: ReturnType<typeof createMetrics>;
  cache: QueryCache | null;
  pools: ReturnType<typeof createPools>;
  scheduler: RefreshScheduler;
  warmAll(): Promise<void>;
  /** The consistency auditor (null without a cache; runs every AUDIT_INTERVAL_SECONDS, never when 0). */
  auditor: CacheAuditor | null;
  changes: ChangeFeed;
  /** Stops accepting, lets in-flight requests finish, closes everything. */
  stop(): Promise<void>;
}

export class StartupError extends Error {}

export async function startService(config: Config, log: pino.Logger): Promise<RunningService> {
  let embedded: EmbeddedDatabase | null = null;
  let databaseUrl = config.DATABASE_URL;
  if (!databaseUrl) {
    log.info(`no DATABASE_URL: starting the embedded TimescaleDB (WASM) with data in ${config.DATA_DIR}/pglite`);
    embedded = await startEmbeddedDatabase(join(config.DATA_DIR, 'pglite'));
    databaseUrl = embedded.url;
  }
  const pools = createPools(config, databaseUrl, { singleConnection: embedded !== null });

  let flavour: Flavour;
  try {
    if (config.MIGRATE_ON_START) {
      const result = await migrate(pools.write, { log: (line) => log.info(line) });
      flavour = result.flavour;
    } else {
      const info = await schemaInfo(pools.write);
      if (!info) throw new MigrationRefused('the database has no ruleperf schema; run `npm run migrate` or set MIGRATE_ON_START=true');
      flavour = info.flavour;
    }
  } catch (err) {
    await pools.end();
    await embedded?.stop();
    throw new StartupError((err as Error).message);
  }
  if (embedded) await loadDemoData(pools, config, flavour, log);

  const metrics = createMetrics();
  const rollups = await loadRollupCatalog(pools.write);
  const database = await databaseIdentity(pools.read);

  const watermarks = new WatermarkSource(pools.read, config.WATERMARK_CACHE_MS);
  const admission = new Admission({ concurrency: pools.read.options.max ?? config.DB_POOL_MAX, maxQueue: config.DB_QUEUE_MAX, maxWaitMs: config.DB_QUEUE_WAIT_MS });
  const executor = new QueryExecutor(pools.read, watermarks, () => rollups, admission, { dbQuery: (tier) => metrics.dbQueries.inc({ tier }) });

  const redis = config.CACHE_ENABLED ? createRedis(config) : null;
  redis?.on('error', () => undefined); // reported through the circuit breaker, not as crashes
  if (redis && redis.status !== 'ready') {
    // Give Redis a moment at start; if it is not there, the circuit opens and we serve without it.
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 2000);
      redis.once('ready', () => {
        clearTimeout(timer);
        resolve();
      });
    });
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
  };
  const changes = new ChangeFeed(pools.read, {
    pollMs: config.CHANGES_POLL_MS,
    keepMs: 2 * entryLifetimeMs(cacheSettings) + 60_000,
    listenUrl: pools.singleConnection ? null : (config.DATABASE_READ_URL ?? databaseUrl),
    logger: log,
  });
  await changes.start();
  let auditor: CacheAuditor | null = null;
  const cache = redis
    ? new QueryCache(redis, cacheSettings, metrics, {
        database,
        dataVersion: (q) => changes.version({ range: q.range, names: KINDS[q.kind].names(q), filters: q.filters }),
        onSettledHit: (q, key) => auditor?.record(q, key),
        onError: (err) => log.debug({ err: { message: err.message } }, 'cache call failed'),
      })
    : null;
  if (cache) {
    auditor = new CacheAuditor(
      {
        lookup: async (q) => {
          const found = await cache.lookup(cache.baseKey(q), q);
          return found?.entry ? { key: found.key, answer: found.entry.a } : null;
        },
        recompute: (q) => executor.run(q, 'background'),
        drop: (key) => cache.drop(key),
      },
      metrics,
      log,
      { sampleSize: config.AUDIT_SAMPLE_SIZE, confirmAfterMs: 2 * config.CHANGES_POLL_MS + 100 }
    );
  }
  const cacheInfo = async () => (cache ? cache.redisInfo() : null);
  const recent = new RecentQueries();
  const service = new QueryService(
    () => rollups,
    executor,
    cache ?? new NoCache(metrics),
    { observe: (kind, c, tier, seconds) => metrics.queryDuration.observe({ kind, cache: c, tier }, seconds) },
    (request, query) => recent.record(request, query)
  );

  // Readiness has a connection of its own: a pool busy with queries must not read as a database down.
  const healthPool = pools.singleConnection
    ? pools.write
    : new Pool({ connectionString: config.DATABASE_READ_URL ?? databaseUrl, max: 1, connectionTimeoutMillis: Math.max(config.DB_CONNECT_TIMEOUT_MS, 2000), statement_timeout: 5000, application_name: 'ruleperf-health' });
  healthPool.on('error', () => undefined);
  const ready = async (): Promise<ReadyResponse> => {
    const cacheState = cache ? cache.state() : 'disabled';
    try {
      const info = await schemaInfo(healthPool);
      const current = !!info && info.version === latestVersion(info.flavour);
      return {
        status: current ? 'ready' : 'not_ready',
        database: { ok: current, flavour: info?.flavour, schemaVersion: info?.version, ...(current ? {} : { error: 'schema is not at the version this service needs; run npm run migrate' }) },
        cache: { state: cacheState },
      };
    } catch (err) {
      return { status: 'not_ready', database: { ok: false, error: 'database unreachable' }, cache: { state: cacheState } };
    }
  };

  const app = createApp({
    service,
    readPool: pools.read,
    metrics,
    logger: log,
    security: securitySettings(config),
    ready,
    cache: {
      state: () => (cache ? cache.state() : 'disabled'),
      async invalidate(target) {
        if (!cache) return;
        await cache.invalidate(target);
      },
      async stats() {
        const count = async (result: string) => (await metrics.cacheRequests.get()).values.find((v) => v.labels.result === result)?.value ?? 0;
        const [hits, misses, stale, bypass] = await Promise.all(['hit', 'miss', 'stale', 'bypass'].map(count));
        const info = await cacheInfo();
        const lookups = hits + misses + stale;
        return {
          state: cache ? cache.state() : 'disabled',
          hits,
          misses,
          stale,
          bypassed: bypass,
          hitRate: lookups > 0 ? (hits + stale) / lookups : null,
          nearHits: (await metrics.nearHits.get()).values[0]?.value ?? 0,
          nearEntries: cache ? cache.near.size : 0,
          entries: info?.entries ?? null,
          memoryBytes: info?.usedMemory ?? null,
          maxMemoryBytes: info?.maxMemory || null,
          evictedKeys: info?.evictedKeys ?? null,
        };
      },
    },
  });

  const scheduler = new RefreshScheduler({
    pool: pools.write,
    flavour,
    metrics,
    logger: log,
    refresh: config.REFRESH_SCHEDULER === 'on',
    onRefreshed: () => {
      watermarks.reset();
      void changes.poll();
    },
  });
  scheduler.start();

  const listener = cache && !pools.singleConnection ? listenForInvalidations(databaseUrl, (t) => cache.invalidate(t, true), log) : null;

  const memoryTimer = setInterval(async () => {
    const info = await cacheInfo();
    if (info) metrics.redisUsedMemory.set(info.usedMemory);
  }, 15_000);
  memoryTimer.unref();

  const auditTimer = auditor && config.AUDIT_INTERVAL_SECONDS > 0
    ? setInterval(async () => {
        const result = await auditor!.runOnce().catch((err) => ({ error: (err as Error).message }));
        log.debug(result, 'cache audit');
      }, config.AUDIT_INTERVAL_SECONDS * 1000)
    : null;
  auditTimer?.unref();

  const dashboardsDir = join(__dirname, '..', 'provisioning', 'dashboards');
  const warmAll = async (): Promise<void> => {
    // One value past the warming limit is enough to tell a long list (e.g. 500 rules) is not warmed value by value.
    const lists = await Promise.all(
      VARIABLE_NAMES.map((name) => variableValues(pools.read, name, WARM_VARIABLE_MAX_VALUES + 1).then((v) => v.map((x) => x.value), () => []))
    );
    const values = Object.fromEntries(VARIABLE_NAMES.map((name, i) => [name, lists[i]])) as Record<VariableName, string[]>;
    const items = [...dashboardWarmItems(dashboardsDir, values), ...recent.top(50)];
    const result = await warm(items, (request, query) => service.answerOne(request, query));
    log.info(result, 'cache warmed');
  };
  if (config.WARM_ON_START) void warmAll();
  const warmTimer = config.WARM_INTERVAL_SECONDS > 0 ? setInterval(() => void warmAll(), config.WARM_INTERVAL_SECONDS * 1000) : null;
  warmTimer?.unref();

  // Timeouts are checked every second (Node's default interval is 30 s), so slow clients cannot hold sockets.
  const server = http.createServer({ connectionsCheckingInterval: 1000, headersTimeout: config.HTTP_HEADERS_TIMEOUT_MS, requestTimeout: config.HTTP_REQUEST_TIMEOUT_MS }, app);
  server.listen(config.PORT, config.HOST);
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  server.keepAliveTimeout = 5_000;
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.PORT;
  const url = `http://${config.HOST === '0.0.0.0' ? '127.0.0.1' : config.HOST}:${port}`;
  log.info({ url, flavour, embedded: embedded !== null }, 'ruleperf is listening');

  let stopped: Promise<void> | null = null;
  const stop = () =>
    (stopped ??= (async () => {
      // Stop accepting; close idle keep-alive sockets; in-flight requests complete.
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      clearInterval(memoryTimer);
      if (auditTimer) clearInterval(auditTimer);
      await changes.stop();
      if (warmTimer) clearInterval(warmTimer);
      await scheduler.stop();
      await listener?.stop();
      redis?.disconnect();
      if (healthPool !== pools.write) await healthPool.end();
      await pools.end();
      await embedded?.stop();
    })());

  return { url, port, flavour, metrics, cache, pools, scheduler, warmAll, stop, auditor, changes };
}

export async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`error: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const log = createLogger({ level: config.LOG_LEVEL });
  let running: RunningService;
  try {
    running = await startService(config, log);
  } catch (err) {
    if (err instanceof StartupError) {
      log.fatal(err.message);
      process.exit(1);
    }
    throw err;
  }
  process.stdout.write(`\nruleperf is ready at ${running.url}\n\nTry (stats for the last 24 hours):\n${exampleCurl(running.url, config)}\n\n`);
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down: finishing in-flight requests');
    const force = setTimeout(() => process.exit(1), config.SHUTDOWN_GRACE_MS);
    force.unref();
    await running.stop();
    log.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

if (require.main === module) {
  main().catch((err) => {
    process.stderr.write(`fatal: ${(err as Error).message}\n`);
    process.exit(1);
  });
}
