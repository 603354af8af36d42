/**
 * `npm start`: the query service. This file only wires the parts together. Without
 * DATABASE_URL it runs the embedded WASM TimescaleDB (data under DATA_DIR) with a demo
 * that loads on first start and keeps growing (server/demo); with DATABASE_URL it serves
 * that database.
 */
import http from 'node:http';
import { join } from 'node:path';
import pino from 'pino';
import { Pool } from 'pg';
import { loadConfig, ConfigError, type Config } from './config';
import { BACKGROUND_APPLICATION_NAME, startEmbeddedDatabase, type EmbeddedDatabase } from './db/embedded';
import { DataFolderLocked } from './db/data-lock';
import { createPools, type Pools } from './db/pools';
import { createLogger } from './observability/logger';
import { Admission } from './db/admission';
import { ChangeFeed } from './db/change-feed';
import { databaseIdentity } from './db/identity';
import { migrate, MigrationRefused, schemaInfo, type Flavour } from './db/migrate';
import { phaseProgress } from './cli/progress';
import { Demo } from './demo/demo';
import { DemoNoticeExecutor } from './demo/notices';
import { createMetrics } from './observability/metrics';
import { WatermarkSource } from './query/watermarks';
import { QueryExecutor, type Executor } from './query/executor';
import { QueryService } from './query/service';
import { loadRollupCatalog } from './query/catalog';
import { KINDS } from './query/kinds';
import { createRedis } from './cache/redis';
import { QueryCache, NoCache, entryLifetimeMs } from './cache/store';
import { CacheAuditor } from './cache/audit';
import { cacheStats } from './cache/stats';
import { RecentQueries } from './warming/warmer';
import { startWarming } from './warming/loop';
import { RefreshScheduler } from './maintenance/scheduler';
import { createApp } from './http/app';
import { readiness } from './http/readiness';
import { exampleCurl, securitySettings } from './http/security';

export interface RunningService {
  url: string;
  port: number;
  flavour: Flavour;
  metrics: ReturnType<typeof createMetrics>;
  cache: QueryCache | null;
  pools: Pools;
  scheduler: RefreshScheduler;
  /** The embedded demo (null with DATABASE_URL or DEMO_DAYS=0). */
  demo: Demo | null;
  /** Seconds each start-up phase took. */
  timings: Record<string, number>;
  warmAll(): Promise<void>;
  /** The consistency auditor (null without a cache; runs every AUDIT_INTERVAL_SECONDS, never when 0). */
  auditor: CacheAuditor | null;
  /** The database's change log as this instance follows it. */
  changes: ChangeFeed;
  /** Stops accepting, lets in-flight requests finish, closes everything. */
  stop(): Promise<void>;
}

export interface StartHooks {
  /** The embedded database failed while running (the service cannot answer any more). */
  onFatal?(err: Error): void;
  /** Aborts a start-up in progress between statements (a signal during a long first start). */
  signal?: AbortSignal;
}

export class StartupError extends Error {}

const seconds = (since: number) => Number(((performance.now() - since) / 1000).toFixed(1));

/** How to say "the embedded database" in an error, with the settings that matter. */
function embeddedHint(config: Config): string {
  return `the embedded database (PGlite, data in DATA_DIR=${config.DATA_DIR}) serves one statement at a time; see the log above, raise DB_STATEMENT_TIMEOUT_MS if statements wait too long, or set DATABASE_URL to a PostgreSQL or TimescaleDB server`;
}

/** The database: the embedded one (locked, booted, migrated, demo prepared) or DATABASE_URL's. */
async function openDatabase(
  config: Config,
  log: pino.Logger,
  show: boolean,
  timings: Record<string, number>,
  hooks: StartHooks
) {
  let embedded: EmbeddedDatabase | null = null;
  let url = config.DATABASE_URL;
  if (!url) {
    const dir = join(config.DATA_DIR, 'pglite');
    log.info(`no DATABASE_URL: starting the embedded TimescaleDB (WASM) with data in ${dir}`);
    const t = performance.now();
    const phase = show ? phaseProgress('starting the embedded database') : null;
    try {
      embedded = await startEmbeddedDatabase(dir, {
        maxWaitMs: config.DB_STATEMENT_TIMEOUT_MS,
        onFailure: (err) => hooks.onFatal?.(err),
      });
    } catch (err) {
      phase?.stop('failed');
      if (err instanceof DataFolderLocked) {
        throw new StartupError(err.message);
      }
      throw new StartupError(`the embedded database did not start: ${(err as Error).message}`);
    }
    phase?.stop();
    timings.database = seconds(t);
    url = embedded.url;
    log.info({ url }, 'the embedded database listens on loopback while the service runs (psql works)');
  }
  const pools = createPools(
    config,
    url,
    embedded ? { embedded: { backgroundApplicationName: BACKGROUND_APPLICATION_NAME } } : {}
  );
  const fail = async (err: unknown): Promise<never> => {
    await pools.end().catch(() => undefined);
    await embedded?.stop();
    const message = (err as Error).message;
    throw new StartupError(
      embedded && !(err instanceof MigrationRefused) ? `${message} (${embeddedHint(config)})` : message
    );
  };

  let flavour: Flavour;
  const t = performance.now();
  try {
    if (config.MIGRATE_ON_START) {
      // Each migration file is a transaction: all of it on one connection.
      const client = await pools.write.connect();
      try {
        flavour = (await migrate(client, { log: (line) => log.info(line) })).flavour;
      } finally {
        client.release();
      }
    } else {
      const info = await schemaInfo(pools.write);
      if (!info) {
        throw new MigrationRefused(
          'the database has no ruleperf schema; run `npm run migrate` or set MIGRATE_ON_START=true'
        );
      }
      flavour = info.flavour;
    }
  } catch (err) {
    return fail(err);
  }
  timings.migrate = seconds(t);

  let demo: Demo | null = null;
  if (embedded) {
    const t2 = performance.now();
    try {
      const settings = {
        days: config.DEMO_DAYS,
        rowsPerHour: config.DEMO_ROWS_PER_HOUR,
        seed: config.DEMO_SEED,
        live: config.DEMO_LIVE,
      };
      demo = await Demo.prepare(pools.write, flavour, settings, log, show, hooks.signal);
    } catch (err) {
      return fail(err);
    }
    timings.demo = seconds(t2);
  }
  return { embedded, url, pools, flavour, demo };
}

function waitForRedis(redis: ReturnType<typeof createRedis>): Promise<void> {
  // Give Redis a moment at start; if it is not there, the circuit opens and we serve without it.
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

export async function startService(config: Config, log: pino.Logger, hooks: StartHooks = {}): Promise<RunningService> {
  const started = performance.now();
  const timings: Record<string, number> = {};
  const show = log.isLevelEnabled('info');
  const { embedded, url: databaseUrl, pools, flavour, demo } = await openDatabase(config, log, show, timings, hooks);

  const metrics = createMetrics();
  // The registry as last read: read again after every refresh, so a rollup added by a migration is used without a restart.
  let rollups = await loadRollupCatalog(pools.write);
  const database = await databaseIdentity(pools.read);
  const watermarks = new WatermarkSource(pools.read, config.WATERMARK_CACHE_MS);
  const executorMetrics = { dbQuery: (tier: string) => metrics.dbQueries.inc({ tier }) };
  // Uncached work waits its turn in a bounded queue per pool (busy, not unavailable, when full).
  const admissionFor = (concurrency: number) =>
    new Admission({ concurrency, maxQueue: config.DB_QUEUE_MAX, maxWaitMs: config.DB_QUEUE_WAIT_MS });
  const readAdmission = admissionFor(config.DB_POOL_MAX);
  const executorOn = (pool: Pool): Executor => {
    const executor = new QueryExecutor(
      pool,
      watermarks,
      () => rollups,
      pool === pools.read ? readAdmission : admissionFor(pool.options.max ?? 1),
      executorMetrics
    );
    return demo ? new DemoNoticeExecutor(executor, demo) : executor;
  };
  const executor = executorOn(pools.read);
  const backgroundExecutor = pools.background === pools.read ? executor : executorOn(pools.background);

  const redis = config.CACHE_ENABLED ? createRedis(config) : null;
  redis?.on('error', () => undefined); // reported through the circuit breaker, not as crashes
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
  };
  // Rewritten rows and renamed rules reach every cached answer they touch through the change log.
  const changes = new ChangeFeed(pools.read, {
    pollMs: config.CHANGES_POLL_MS,
    keepMs: 2 * entryLifetimeMs(cacheSettings) + 60_000,
    listenUrl: pools.embedded ? null : (config.DATABASE_READ_URL ?? databaseUrl),
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
    (request, query) => recent.record(request, query)
  );
  // Warming answers through the same cache, after dashboard queries (on the embedded database, on its background pool).
  const warmingService = new QueryService(() => rollups, backgroundExecutor, cacheLayer, observer);
  const cacheState = () => (cache ? cache.state() : 'disabled');
  // Readiness has a connection of its own: a pool busy with queries must not read as a database down.
  const healthPool = pools.embedded
    ? pools.write
    : new Pool({
        connectionString: config.DATABASE_READ_URL ?? databaseUrl,
        max: 1,
        connectionTimeoutMillis: Math.max(config.DB_CONNECT_TIMEOUT_MS, 2000),
        statement_timeout: 5000,
        application_name: 'ruleperf-health',
      });
  healthPool.on('error', () => undefined);

  const app = createApp({
    service,
    readPool: pools.read,
    rollups: () => rollups,
    metrics,
    logger: log,
    security: securitySettings(config),
    ready: readiness({ pool: healthPool, cacheState, unreachableHint: embedded ? embeddedHint(config) : undefined }),
    cache: {
      state: cacheState,
      async invalidate(target) {
        await cache?.invalidate(target);
      },
      stats: () => cacheStats(cache, metrics),
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
      loadRollupCatalog(pools.read).then(
        (fresh) => (rollups = fresh),
        () => undefined
      );
      // A refresh that rewrote settled buckets logged it: apply it now rather than at the next poll.
      void changes.poll();
    },
  });
  scheduler.start();
  const memoryTimer = setInterval(async () => {
    const info = cache ? await cache.redisInfo() : null;
    if (info) {
      metrics.redisUsedMemory.set(info.usedMemory);
    }
  }, 15_000);
  memoryTimer.unref();
  const auditTimer =
    auditor && config.AUDIT_INTERVAL_SECONDS > 0
      ? setInterval(async () => {
          const result = await auditor!.runOnce().catch((err) => ({ error: (err as Error).message }));
          log.debug(result, 'cache audit');
        }, config.AUDIT_INTERVAL_SECONDS * 1000)
      : null;
  auditTimer?.unref();

  const warming = startWarming(
    {
      answer: (request, query) => warmingService.answerOne(request, query, 'background'),
      pool: pools.background,
      rollups: () => rollups,
      dashboardsDir: join(__dirname, '..', 'provisioning', 'dashboards'),
      recent,
      intervalSeconds: config.WARM_INTERVAL_SECONDS,
      logger: log,
    },
    config.WARM_ON_START
  );
  demo?.start({
    // Answers cached while the history was loading are incomplete: drop them (once Redis
    // takes the invalidation: until then the circuit keeps them from being served), warm again.
    async onLoaded() {
      for (let attempt = 1; cache; attempt++) {
        try {
          await cache.invalidate({ all: true });
          break;
        } catch (err) {
          if (attempt === 60) {
            throw err;
          }
          await new Promise((resolve) => setTimeout(resolve, 5000).unref());
        }
      }
      watermarks.reset();
      await warming.warmAll();
    },
  });

  // Timeouts are checked every second (Node's default interval is 30 s), so slow clients cannot hold sockets.
  const server = http.createServer(
    {
      connectionsCheckingInterval: 1000,
      headersTimeout: config.HTTP_HEADERS_TIMEOUT_MS,
      requestTimeout: config.HTTP_REQUEST_TIMEOUT_MS,
    },
    app
  );
  server.listen(config.PORT, config.HOST);
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  server.keepAliveTimeout = 5_000;
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.PORT;
  const url = `http://${config.HOST === '0.0.0.0' ? '127.0.0.1' : config.HOST}:${port}`;
  timings.total = seconds(started);
  log.info({ url, flavour, embedded: embedded !== null, startup: timings }, 'ruleperf is listening');

  let stopped: Promise<void> | null = null;
  const stop = () =>
    (stopped ??= (async () => {
      // Stop accepting; close idle keep-alive sockets; in-flight requests complete.
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      clearInterval(memoryTimer);
      if (auditTimer) {
        clearInterval(auditTimer);
      }
      await Promise.all([warming.stop(), demo?.stop(), scheduler.stop(), changes.stop()]);
      redis?.disconnect();
      if (healthPool !== pools.write) {
        await healthPool.end();
      }
      await pools.end();
      await embedded?.stop();
    })());

  return {
    url,
    port,
    flavour,
    metrics,
    cache,
    pools,
    scheduler,
    demo,
    timings,
    warmAll: warming.warmAll,
    auditor,
    changes,
    stop,
  };
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
  let stopping = false;
  let startup: Promise<RunningService> | null = null;
  const aborting = new AbortController();
  const shutdown = async (reason: string, code = 0) => {
    if (stopping) {
      return;
    }
    stopping = true;
    log.info({ reason }, 'shutting down: finishing in-flight requests');
    aborting.abort();
    const force = setTimeout(() => {
      log.error('shutdown took longer than SHUTDOWN_GRACE_MS; exiting');
      process.exit(1);
    }, config.SHUTDOWN_GRACE_MS);
    force.unref();
    // A signal during start-up waits for it (within the grace period), then stops what started.
    await startup?.then(
      (running) => running.stop(),
      () => undefined
    );
    log.info('stopped');
    process.exit(code);
  };
  // Registered before start-up, so a signal during a long first start also stops cleanly.
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
  let running: RunningService;
  try {
    startup = startService(config, log, {
      onFatal: (err) => {
        log.fatal(err.message);
        void shutdown('the embedded database failed', 1);
      },
      signal: aborting.signal,
    });
    running = await startup;
  } catch (err) {
    if (stopping) {
      return;
    } // a signal cut the start-up short: shutdown() reports and exits
    if (err instanceof StartupError) {
      log.fatal(err.message);
      process.exit(1);
    }
    throw err;
  }
  if (stopping) {
    return;
  }
  process.stdout.write(
    `\nruleperf is ready at ${running.url} (started in ${running.timings.total.toFixed(1)} s)\n\nTry (stats for the last 24 hours):\n${exampleCurl(running.url, config)}\n\n`
  );
}

if (require.main === module) {
  main().catch((err) => {
    process.stderr.write(`fatal: ${(err as Error).message}\n`);
    process.exit(1);
  });
}
