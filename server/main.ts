/**
 * `npm start`: the query service. This file only wires the parts together (server/startup/
 * builds them). Without DATABASE_URL it runs the embedded WASM TimescaleDB (data under
 * DATA_DIR) with a demo that loads on first start and keeps growing (server/demo); with
 * DATABASE_URL it serves that database.
 */
import type { RequestListener } from 'node:http';
import { join } from 'node:path';
import type pino from 'pino';
import { Pool } from 'pg';
import { loadConfig, ConfigError, type Config } from './config';
import type { Flavour } from './db/migrate';
import type { Pools } from './db/pools';
import type { Demo } from './demo/demo';
import { createLogger } from './observability/logger';
import { createMetrics } from './observability/metrics';
import type { CacheAuditor } from './cache/audit';
import { cacheStats } from './cache/stats';
import type { QueryCache } from './cache/store';
import type { ChangeFeed } from './db/change-feed';
import { startWarming } from './warming/loop';
import { RefreshScheduler } from './maintenance/scheduler';
import { createApp, readyBody } from './http/app';
import { readiness } from './http/readiness';
import { securitySettings } from './http/security';
import { readyBanner } from './startup/banner';
import { embeddedHint, openDatabase, seconds, StartupError, type StartHooks } from './startup/database';
import { listen, startingHandler } from './startup/http-server';
import { buildQueryStack } from './startup/query-stack';
import { publishReadiness, startProbePort, type ProbePort } from './startup/probe-port';

export { StartupError, type StartHooks } from './startup/database';

export interface RunningService {
  url: string;
  port: number;
  /** Where PROBE_PORT's /healthz and /readyz answer (null without it). */
  probeUrl: string | null;
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
  /** Computes, for the queries asked recently, the answers the requests of `minute` will ask for (see WARM_AHEAD_SECONDS). */
  warmAhead(minute: number): Promise<{ warmed: number; failed: number }>;
  /** The consistency auditor (null without a cache; runs every AUDIT_INTERVAL_SECONDS, never when 0). */
  auditor: CacheAuditor | null;
  /** The database's change log as this instance follows it. */
  changes: ChangeFeed;
  /** Stops accepting, lets in-flight requests finish, closes everything. */
  stop(): Promise<void>;
}

/**
 * Readiness has a connection of its own: a pool busy with queries must not read as a database
 * down. On the embedded database too, where it was the background pool's: readiness waited
 * behind a back-fill's three connections, and since background work waits for a connection as
 * long as it takes, every check queued one more waiter until the back-fill gave them back.
 */
export function healthPool(config: Config, url: string): Pool {
  const pool = new Pool({
    connectionString: config.DATABASE_READ_URL ?? url,
    max: 1,
    connectionTimeoutMillis: Math.max(config.DB_CONNECT_TIMEOUT_MS, 2000),
    statement_timeout: 5000,
    application_name: 'ruleperf-health',
  });
  pool.on('error', () => undefined);
  return pool;
}

export async function startService(config: Config, log: pino.Logger, hooks: StartHooks = {}): Promise<RunningService> {
  const started = performance.now();
  const timings: Record<string, number> = {};
  // The port first: answered "starting" until the service is ready (a port in use fails at once).
  let serve: RequestListener = startingHandler(started);
  const server = await listen((req, res) => serve(req, res), config);
  let probes: ProbePort | null = null;
  try {
    probes = config.PROBE_PORT === undefined ? null : await startProbePort(config.HOST, config.PROBE_PORT, log);
  } catch (err) {
    await server.close();
    throw new StartupError((err as Error).message);
  }
  const metrics = createMetrics();
  let db: Awaited<ReturnType<typeof openDatabase>>;
  let stack: Awaited<ReturnType<typeof buildQueryStack>>;
  try {
    db = await openDatabase(config, log, log.isLevelEnabled('info'), timings, hooks);
    stack = await buildQueryStack(config, log, metrics, db);
  } catch (err) {
    await probes?.stop();
    await server.close();
    throw err;
  }
  const { pools, flavour, demo, embedded } = db;
  const { cache } = stack;
  const cacheState = () => (cache ? cache.state() : 'disabled');
  const health = healthPool(config, db.url);

  const warming = startWarming(
    {
      answer: (request, query) => stack.warmingService.answerOne(request, query, 'background'),
      pool: pools.background,
      rollups: stack.rollups,
      dashboardsDir: join(__dirname, '..', 'provisioning', 'dashboards'),
      recent: stack.recent,
      intervalSeconds: config.WARM_INTERVAL_SECONDS,
      aheadSeconds: config.WARM_AHEAD_SECONDS,
      logger: log,
    },
    config.WARM_ON_START
  );
  const ready = readiness({
    pool: health,
    cacheState,
    unreachableHint: embedded ? embeddedHint(config) : undefined,
    warmed: warming.warmedOnce,
    warmingGraceMs: config.READY_WAITS_FOR_WARMING_SECONDS * 1000,
  });
  const security = securitySettings(config);
  const app = createApp({
    service: stack.service,
    variables: (name) => stack.variables.list(name),
    metrics,
    logger: log,
    security,
    sending: {
      maxUnsentBytes: config.HTTP_UNSENT_MAX_BYTES,
      timeoutMs: config.HTTP_SEND_TIMEOUT_MS,
      onShed: everyTenSeconds((closed, bytes) =>
        log.warn(
          { closed, megabytes: Math.round(bytes / 1e6) },
          'closed the connections holding the most unread answers: answers waiting for their clients were over HTTP_UNSENT_MAX_BYTES'
        )
      ),
    },
    ready,
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
    refresh: config.REFRESH_SCHEDULER,
    onRefreshed: () => stack.refreshed(),
  });
  scheduler.start();
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
      stack.refreshed();
      await warming.warmAll();
    },
  });

  serve = app;
  // The probe port answers the readiness computed here each second (as a caller without the token reads it).
  const open = !security.tokens.read && !security.tokens.admin;
  const publishing = probes ? publishReadiness(probes, ready, (r) => readyBody(security, r, open)) : null;
  timings.total = seconds(started);
  log.info({ url: server.url, flavour, embedded: embedded !== null, startup: timings }, 'ruleperf is listening');

  let stopped: Promise<void> | null = null;
  const stop = () =>
    (stopped ??= (async () => {
      publishing?.stop();
      try {
        // In-flight requests complete first.
        await server.close();
        await Promise.all([warming.stop(), demo?.stop(), scheduler.stop(), stack.stop()]);
        await health.end();
        db.stopCheckpoints();
        await pools.end();
        await embedded?.stop();
      } finally {
        await probes?.stop();
      }
    })());

  return {
    url: server.url,
    port: server.port,
    probeUrl: probes ? `http://${config.HOST === '0.0.0.0' ? '127.0.0.1' : config.HOST}:${probes.port}` : null,
    flavour,
    metrics,
    cache,
    pools,
    scheduler,
    demo,
    timings,
    warmAll: warming.warmAll,
    warmAhead: warming.warmAhead,
    auditor: stack.auditor,
    changes: stack.changes,
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
      // In the log, and as a plain line like a configuration error's, for whoever reads the terminal.
      log.fatal(err.message);
      process.stderr.write(`error: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  if (stopping) {
    return;
  }
  const cache = running.cache;
  const cacheState = !cache
    ? 'disabled'
    : cache.state() === 'up' && (await cache.answersWithin(BANNER_PING_MS))
      ? 'up'
      : 'degraded';
  if (cacheState === 'degraded') {
    log.warn('the Redis of REDIS_URL is not answering: every answer comes from the database until it does');
  }
  process.stdout.write(readyBanner({ url: running.url, startedInSeconds: running.timings.total, cacheState }, config));
}

/** `report` with the sums of what happened, at most once every ten seconds (a flood is one line, not one a sweep); none lost. */
function everyTenSeconds(report: (count: number, bytes: number) => void): (count: number, bytes: number) => void {
  let last = 0;
  let count = 0;
  let bytes = 0;
  let later: NodeJS.Timeout | null = null;
  const flush = () => {
    if (later) {
      clearTimeout(later);
      later = null;
    }
    report(count, bytes);
    [last, count, bytes] = [Date.now(), 0, 0];
  };
  return (n, b) => {
    count += n;
    bytes += b;
    const since = Date.now() - last;
    if (since >= 10_000) {
      flush();
    } else if (!later) {
      later = setTimeout(flush, 10_000 - since);
      later.unref();
    }
  };
}

/** How long the start-up banner waits for Redis to answer before saying it is not answering. */
const BANNER_PING_MS = 1000;

if (require.main === module) {
  main().catch((err) => {
    process.stderr.write(`fatal: ${(err as Error).message}\n`);
    process.exit(1);
  });
}
