/**
 * Connection pools: one for writes and maintenance (migrate, refresh, LISTEN), one for
 * dashboard reads (DATABASE_READ_URL when a replica is given). Statement timeouts cut
 * runaway queries; a short connect timeout makes "database down" fail fast. The embedded
 * database has pools of its own kind (see createPools).
 */
import { SESSION_BUSY_CODE } from './wire';
import { Pool } from 'pg';
import type { Config } from '../config';
import { installParsers } from './parsers';
import { readAChunkPerTurn } from './read-slices';

installParsers();

export interface Pools {
  write: Pool;
  read: Pool;
  /** Warming and other work that must not hold up dashboard queries (the write pool on the embedded database). */
  background: Pool;
  /** The embedded database: one session shared statement by statement, which no connection can LISTEN on. */
  embedded: boolean;
  end(): Promise<void>;
}

export interface PoolOptions {
  /**
   * The embedded WASM database: its wire server lends its one session to one statement at a
   * time, dashboard connections first, and answers a statement that waited longer than
   * DB_STATEMENT_TIMEOUT_MS with an error. Pools then wait as long for a connection.
   */
  embedded?: { backgroundApplicationName: string };
}

/** How long after the statement timeout a read gives up on a database that does not answer. */
export const READ_DEADLINE_MARGIN_MS = 2_000;

/** Read-pool connections beyond the DB_POOL_MAX that queries may use. */
const READ_POOL_HEADROOM = 2;

export function createPools(config: Config, url: string, options: PoolOptions = {}): Pools {
  const embedded = options.embedded ?? null;
  const make = (
    connectionString: string,
    max: number,
    applicationName: string,
    reads?: { parallelWorkers: number; randomPageCost: number }
  ) => {
    const background = embedded?.backgroundApplicationName === applicationName;
    const pool = new Pool({
      connectionString,
      max,
      // On the embedded database a connection is free to open; what can take a while is the
      // session's turn, which the wire server bounds for queries. Background work (refreshes,
      // demo loading, warming: three connections for all of it) waits its turn for a connection
      // as for the session: a refresh tick that gave up after the timeout logged a failure and
      // retried while the first start back-filled.
      connectionTimeoutMillis: background
        ? 0
        : embedded
          ? config.DB_STATEMENT_TIMEOUT_MS + config.DB_CONNECT_TIMEOUT_MS
          : config.DB_CONNECT_TIMEOUT_MS,
      idleTimeoutMillis: 30_000,
      statement_timeout: config.DB_STATEMENT_TIMEOUT_MS,
      // The statement timeout is the server's: a database that stops answering (a network
      // partition, a stopped host) answers nothing, and a read waited for ever with its
      // connection. Reads also have a deadline of their own, a little later, after which the
      // connection is dropped; TCP keepalives find dead peers of idle connections.
      ...(embedded
        ? {}
        : {
            keepAlive: true,
            keepAliveInitialDelayMillis: 10_000,
            ...(reads ? { query_timeout: config.DB_STATEMENT_TIMEOUT_MS + READ_DEADLINE_MARGIN_MS } : {}),
          }),
      application_name: applicationName,
      // Dashboard queries are short and repeated: JIT compilation costs more than it saves, and
      // merging sketches sorts in memory with a little more work_mem than the default 4 MB.
      // Reads start parallel workers only where DB_PARALLEL_WORKERS allows, and price a page
      // read out of order at DB_RANDOM_PAGE_COST (config.ts).
      ...(embedded
        ? {}
        : {
            options:
              '-c jit=off -c work_mem=64MB' +
              (reads
                ? ` -c max_parallel_workers_per_gather=${reads.parallelWorkers} -c random_page_cost=${reads.randomPageCost}` +
                  // A read kept waiting for a lock (a migration's, maintenance's) is cancelled
                  // after 2 s (or before its statement timeout), so its error can say so instead of
                  // "took too long: narrow the range", which a query of 12 ms was told while a lock
                  // held it, and it gives its connection back: two such waits of 9 s took the whole
                  // pool of a 2-core machine. In `options`, as the rest: no start-up parameter a
                  // pooler may refuse.
                  ` -c lock_timeout=${config.DB_LOCK_TIMEOUT_MS ?? Math.max(1, Math.min(2000, Math.round(0.9 * config.DB_STATEMENT_TIMEOUT_MS)))}`
                : ''),
          }),
    });
    // A client losing its connection must not crash the process: idle (the pool's 'error'),
    // and checked out too — pg-pool drops its own listener while a client is lent, and pg
    // emits 'error' on an unexpected end even during a query (a refresh whose backend was
    // terminated took the whole service down). The query itself still fails with the error.
    pool.on('error', () => undefined);
    pool.on('connect', (client) => client.on('error', () => undefined));
    if (reads) {
      readAChunkPerTurn(pool);
    }
    return pool;
  };
  if (embedded) {
    const write = make(url, 3, embedded.backgroundApplicationName);
    const read = make(url, config.DB_POOL_MAX, 'ruleperf-read');
    return {
      write,
      read,
      background: write,
      embedded: true,
      async end() {
        await Promise.all([write.end(), read.end()]);
      },
    };
  }
  const write = make(url, Math.max(2, Math.ceil(config.DB_POOL_MAX / 4)), 'ruleperf');
  // Queries take at most DB_POOL_MAX connections (admission control queues the rest); the two
  // more are for the change feed and variable lists, so they never wait behind a busy pool.
  const readMax = config.DB_POOL_MAX + READ_POOL_HEADROOM;
  const read = make(config.DATABASE_READ_URL ?? url, readMax, 'ruleperf-read', {
    parallelWorkers: config.DB_PARALLEL_WORKERS,
    randomPageCost: config.DB_RANDOM_PAGE_COST,
  });
  return {
    write,
    read,
    background: read,
    embedded: false,
    async end() {
      await write.end();
      await read.end();
    },
  };
}

const UNAVAILABLE_CODES = new Set([
  '57P01',
  '57P02',
  '57P03',
  '53300',
  '08000',
  '08001',
  '08003',
  '08004',
  '08006',
  '08007',
]);
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH']);

/** True when an error means the database cannot be reached now (answer 503, not 500). */
export function isUnavailable(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  if (e?.code && (UNAVAILABLE_CODES.has(e.code) || NETWORK_CODES.has(e.code))) {
    return true;
  }
  const msg = e?.message ?? '';
  return /timeout exceeded when trying to connect|Connection terminated|connection timeout|Client has encountered a connection error|the database system is (starting up|shutting down)/i.test(
    msg
  );
}

/**
 * True when a read gave up on a database that did not answer in time (READ_DEADLINE_MARGIN_MS
 * past the statement timeout: a network partition, a stopped host, or results read slower
 * than they came); its connection is dropped.
 */
export function isReadDeadline(err: unknown): boolean {
  return /^Query read timeout$/.test((err as Error)?.message ?? '');
}

/** True when the query waited longer than the lock timeout for a lock (55P03, lock_not_available). */
export function isLockTimeout(err: unknown): boolean {
  return (err as { code?: string })?.code === '55P03';
}

/** True when the statement timeout cancelled the query. */
export function isStatementTimeout(err: unknown): boolean {
  return (err as { code?: string })?.code === '57014';
}

/** True when the embedded database refused a statement that waited too long for its one session (wire.ts). */
export function isSessionBusy(err: unknown): boolean {
  return (err as { code?: string })?.code === SESSION_BUSY_CODE;
}

/** True when PostgreSQL rejected a value the client sent (class 22, data exception): a 400, not a 500. */
export function isDataException(err: unknown): boolean {
  return /^22/.test((err as { code?: string })?.code ?? '');
}
