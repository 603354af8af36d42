/** Service settings from the environment, validated once at start (bad values stop it with a clear message). */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { z } from 'zod/v4';

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no', 'on', 'off'], {
    error: 'must be true or false (or 1/0, yes/no, on/off)',
  })
  .transform((v) => ['true', '1', 'yes', 'on'].includes(v));
/** A whole number within bounds; every mistake ("abc", 1.5, out of range) is told the same way, naming them. */
const int = (min: number, max: number) => {
  const error = `must be a whole number from ${min} to ${max}`;
  return z.coerce.number({ error }).int({ error }).min(min, { error }).max(max, { error });
};
/** A number (fractions allowed) within bounds, told like int's. */
const decimal = (min: number, max: number) => {
  const error = `must be a number from ${min} to ${max}`;
  return z.coerce.number({ error }).min(min, { error }).max(max, { error });
};
/** A whole number of either sign, no bounds but a safe integer's (a seed), told like int's. */
const wholeNumber = () => {
  const error = 'must be a whole number';
  return z.coerce.number({ error }).int({ error });
};

/** A token: no client sends one with spaces around it (a shell's trailing space made every request 401). */
const token = () =>
  z
    .string()
    .min(1)
    .refine(
      (t) => t === t.trim(),
      'must not begin or end with spaces or line breaks (no client sends them: every request would be refused)'
    )
    .optional();

const POSTGRES_URL_FORM = 'must be a URL such as postgres://user:password@host:5432/database';
/** The forms pg reads: a postgres:// URL that parses, or its socket: form. */
const isPostgresUrl = (v: string) =>
  /^\s*socket:/i.test(v) || (/^\s*postgres(ql)?:\/\//i.test(v) && URL.canParse(v.trim()));
/**
 * What is wrong with a database URL's form (null: none), as the service says it of
 * DATABASE_URL; for the command-line tools, which read DATABASE_URL alone. The message never
 * repeats the value (it may hold a password).
 */
export function postgresUrlProblem(value: string): string | null {
  return isPostgresUrl(value) ? null : POSTGRES_URL_FORM;
}
const postgresUrl = z.string().refine(isPostgresUrl, POSTGRES_URL_FORM);
const schema = z.object({
  PORT: int(0, 65535).default(8080),
  HOST: z.string().default('127.0.0.1'),
  // A host:port/db without the scheme is a URL too (of scheme "localhost:"), which pg misreads.
  DATABASE_URL: postgresUrl.optional(),
  DATABASE_READ_URL: postgresUrl.optional(),
  DATA_DIR: z.string().default('.data'),
  // Uncached queries that run at once: one per core by default. More only queue up on the
  // database's CPUs, and on a machine shared with it they starve cached answers of CPU.
  DB_POOL_MAX: int(1, 200).default(Math.min(16, Math.max(2, availableParallelism()))),
  DB_STATEMENT_TIMEOUT_MS: int(100, 600_000).default(10_000),
  // How long a dashboard read waits for a lock before it is cancelled, saying so (db/pools.ts).
  // Default: 2 s, or 90 % of the statement timeout when that is shorter. 0: no limit of its own.
  DB_LOCK_TIMEOUT_MS: int(0, 600_000).optional(),
  DB_CONNECT_TIMEOUT_MS: int(50, 60_000).default(800),
  // Parallel workers per dashboard query (PostgreSQL's max_parallel_workers_per_gather). Off by
  // default: starting workers takes 5-10 ms, more than most uncached answers take whole, and
  // concurrent panels already keep the cores busy.
  DB_PARALLEL_WORKERS: int(0, 64).default(0),
  // The planner's cost of a page read out of order, for dashboard queries (PostgreSQL's
  // random_page_cost, 4 by default, priced for disks that seek). The rollups a dashboard reads
  // are small and hot, in memory: at 4 the planner scanned the whole daily rollup by rule for
  // six of its thirty days (8.3 ms) where its bucket index reads them in 2.2.
  DB_RANDOM_PAGE_COST: decimal(0.1, 100).default(1.1),
  MIGRATE_ON_START: bool.default(true),
  // on/off, like every switch: true/false (and 1/0, yes/no) too.
  REFRESH_SCHEDULER: bool.default(true),
  WATERMARK_CACHE_MS: int(0, 60_000).default(2000),
  // Percentile answers merging more latency-histogram values than this are refused (400) before
  // they run; less for grouped answers, the more series they name (query/work.ts). At the
  // default the heaviest accepted answers took 3-8 s of one core on a 2-core machine, inside
  // the statement timeout. 0: no limit.
  DB_MAX_HISTOGRAM_VALUES: int(0, 1_000_000_000).default(5_000_000),
  DB_QUEUE_MAX: int(0, 100_000).default(200),
  DB_QUEUE_WAIT_MS: int(1, 120_000).default(2000),
  CHANGES_POLL_MS: int(50, 60_000).default(500),
  AUDIT_INTERVAL_SECONDS: int(0, 86_400).default(300),
  AUDIT_SAMPLE_SIZE: int(1, 1000).default(5),
  API_TOKEN: token(),
  API_ADMIN_TOKEN: token(),
  ALLOW_UNAUTHENTICATED: bool.default(false),
  INVALIDATE_ALL_INTERVAL_SECONDS: int(0, 3600).default(10),
  REDIS_URL: z
    .string()
    // What ioredis reads: a URL, host:port, a socket path. Anything else ("garbage") was taken
    // for a host name: the cache stayed off for good, with nothing logged.
    .regex(
      /^(rediss?:\/\/|\/|[\w.-]+:\d+$)/i,
      'must be a redis:// or rediss:// URL (or host:port, or the path of a Unix socket)'
    )
    .default('redis://127.0.0.1:6379'),
  REDIS_SENTINELS: z.string().optional(),
  REDIS_SENTINEL_NAME: z.string().default('mymaster'),
  REDIS_CLUSTER_NODES: z.string().optional(),
  REDIS_TLS_CA_FILE: z
    .string()
    .refine((path) => existsSync(path), 'no such file (a PEM bundle of the CA that signed the Redis certificate)')
    .optional(),
  CACHE_ENABLED: bool.default(true),
  CACHE_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9:_-]{1,32}$/, 'must be 1 to 32 letters, digits, ":", "_" or "-" (it begins every Redis key)')
    .default('ruleperf'),
  CACHE_TTL_SECONDS: int(1, 86_400).default(60),
  CACHE_JITTER_SECONDS: int(0, 3600).default(10),
  CACHE_SETTLED_TTL_SECONDS: int(1, 7 * 86_400).default(3600),
  CACHE_MAX_VALUE_BYTES: int(256, 64 * 1024 * 1024).default(512 * 1024),
  CACHE_SLOW_MS: int(1, 10_000).default(100),
  CACHE_LOCK_MS: int(100, 60_000).default(5000),
  CACHE_NEAR_LEASE_MS: int(0, 60_000).default(2000),
  CACHE_NEAR_ENTRIES: int(0, 100_000).default(500),
  CACHE_LOCAL_MAX_BYTES: int(1024 * 1024, 16 * 1024 * 1024 * 1024).default(64 * 1024 * 1024),
  WARM_ON_START: bool.default(true),
  WARM_INTERVAL_SECONDS: int(0, 86_400).default(300),
  /** How long /readyz may say "not ready" while the first warming pass runs (0: ready at once). */
  READY_WAITS_FOR_WARMING_SECONDS: int(0, 600).default(60),
  WARM_AHEAD_SECONDS: int(0, 59).default(10),
  DEMO_DAYS: int(0, 90).default(7),
  DEMO_ROWS_PER_HOUR: int(1, 1_000_000).default(6000),
  DEMO_SEED: wholeNumber().default(42),
  DEMO_LIVE: bool.default(true),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  SHUTDOWN_GRACE_MS: int(0, 120_000).default(10_000),
  /**
   * After a stop signal, requests keep being accepted and answered this long (each with
   * `Connection: close`) before the listener closes: a request already sent on a kept-alive
   * connection, or a connection not accepted yet, is answered rather than reset.
   */
  SHUTDOWN_DRAIN_MS: int(0, 60_000).default(1000),
  HTTP_HEADERS_TIMEOUT_MS: int(100, 120_000).default(10_000),
  // Connections held at once; past it Node closes new ones at once. Default: the file
  // descriptors the process may open, less 512, at most 10,000 (http-server.ts).
  HTTP_MAX_CONNECTIONS: int(1, 1_000_000).optional(),
  HTTP_REQUEST_TIMEOUT_MS: int(100, 600_000).default(30_000),
  /** /healthz and /readyz on a port of their own, answered by a worker thread (startup/probe-port.ts); unset: none. */
  PROBE_PORT: int(0, 65_535).optional(),
  /** How long an answer may wait for its client to read it before the connection is closed (http/unsent.ts). */
  HTTP_SEND_TIMEOUT_MS: int(100, 600_000).default(30_000),
  /** Bytes of answers waiting for their clients to read them, across connections, past which the connections holding the most are closed (server/http/unsent.ts). */
  HTTP_UNSENT_MAX_BYTES: int(64 * 1024, 64 * 1024 ** 3).default(256 * 1024 * 1024),
});

export type Config = z.infer<typeof schema>;

/** Whether HOST only accepts connections from this machine. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h) || /^::ffff:127(\.\d{1,3}){3}$/.test(h);
}

/** Settings that are each valid but unsafe together (checked after the fields themselves). */
function unsafeCombinations(c: Config): string[] {
  const problems: string[] = [];
  if (!c.API_TOKEN && !isLoopbackHost(c.HOST) && !c.ALLOW_UNAUTHENTICATED) {
    problems.push(
      `HOST: ${c.HOST} accepts connections from other machines, but API_TOKEN is not set, so anyone who reaches the port could ` +
        'query it' +
        (c.API_ADMIN_TOKEN ? '' : ' and flush its cache') +
        '. Set API_TOKEN (read) and API_ADMIN_TOKEN (invalidate), ' +
        'or ALLOW_UNAUTHENTICATED=true to serve without a token on purpose'
    );
  }
  if (c.REDIS_TLS_CA_FILE && (!/^rediss:/i.test(c.REDIS_URL) || c.REDIS_SENTINELS || c.REDIS_CLUSTER_NODES)) {
    problems.push(
      'REDIS_TLS_CA_FILE: applies to a rediss:// REDIS_URL only (TLS is not used without one; Sentinel and Cluster have no TLS settings yet)'
    );
  }
  if (c.HTTP_HEADERS_TIMEOUT_MS > c.HTTP_REQUEST_TIMEOUT_MS) {
    problems.push(
      `HTTP_HEADERS_TIMEOUT_MS: ${c.HTTP_HEADERS_TIMEOUT_MS} is more than HTTP_REQUEST_TIMEOUT_MS (${c.HTTP_REQUEST_TIMEOUT_MS}): the headers are part of the request, so it must not be longer`
    );
  }
  if (c.API_TOKEN && c.API_TOKEN === c.API_ADMIN_TOKEN) {
    problems.push('API_ADMIN_TOKEN: must differ from API_TOKEN (the read token is the one stored in Grafana)');
  }
  return problems;
}

export class ConfigError extends Error {}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = schema.safeParse(Object.fromEntries(Object.entries(env).filter(([, v]) => v !== '')));
  if (!parsed.success) {
    throw new ConfigError(
      'invalid configuration: ' + parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')
    );
  }
  const problems = unsafeCombinations(parsed.data);
  if (problems.length) {
    throw new ConfigError('invalid configuration: ' + problems.join('; '));
  }
  return parsed.data;
}

/** Every variable the service reads, for docs and for the compose-file test. */
export const CONFIG_KEYS = Object.keys(schema.shape) as Array<keyof Config>;
