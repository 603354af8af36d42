/**
 * A real ruleperf stack for the provisioning tests, on this machine's PostgreSQL and
 * Redis: a fresh database loaded by the project's own CLIs, service processes started
 * as `node --import tsx server/main.ts` on free ports, a TCP proxy that slows the
 * database down, and a Debian `prometheus` scraping the services.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Client } from 'pg';
import Redis from 'ioredis';
import { ROOT } from './files';

const run = promisify(execFile);

export const PG_ADMIN_URL = process.env.TEST_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

export const suffix = () => `${process.pid}_${randomBytes(3).toString('hex')}`;

/** Why the stack cannot run here, or null when PostgreSQL and Redis answer. */
export async function unavailableReason(): Promise<string | null> {
  const pg = new Client({ connectionString: PG_ADMIN_URL, connectionTimeoutMillis: 2000 });
  try {
    await pg.connect();
    await pg.query('SELECT 1');
  } catch (err) {
    return `PostgreSQL not reachable at ${PG_ADMIN_URL}: ${(err as Error).message}`;
  } finally {
    await pg.end().catch(() => undefined);
  }
  const redis = new Redis(REDIS_URL, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    connectTimeout: 2000,
    retryStrategy: () => null,
  });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    await redis.ping();
  } catch (err) {
    return `Redis not reachable at ${REDIS_URL}: ${(err as Error).message}`;
  } finally {
    redis.disconnect();
  }
  return null;
}

export function prometheusBinary(): string | null {
  const found = spawnSync('sh', ['-c', 'command -v prometheus && command -v promtool'], { encoding: 'utf8' });
  return found.status === 0 ? found.stdout.split('\n')[0] : null;
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs: number,
  everyMs = 500
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined) {
        return value;
      }
    } catch (err) {
      last = err;
    }
    await sleep(everyMs);
  }
  throw new Error(
    `timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`
  );
}

export interface Database {
  name: string;
  url: string;
  query(sql: string): Promise<Array<Record<string, unknown>>>;
  drop(): Promise<void>;
}

/** A new database, migrated and loaded with generated history by the project's CLIs. */
export async function loadedDatabase(options: { days: number; rowsPerHour: number; seed: number }): Promise<Database> {
  const name = `ruleperf_prov_${suffix()}`;
  const admin = new Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = PG_ADMIN_URL.replace(/\/[^/]*$/, `/${name}`);
  const env = { ...process.env, DATABASE_URL: url };
  const tsx = ['--import', 'tsx'];
  await run(process.execPath, [...tsx, 'server/cli/migrate.ts'], { cwd: ROOT, env });
  await run(
    process.execPath,
    [
      ...tsx,
      'server/cli/generate.ts',
      '--days',
      String(options.days),
      '--rows-per-hour',
      String(options.rowsPerHour),
      '--seed',
      String(options.seed),
    ],
    { cwd: ROOT, env }
  );
  return {
    name,
    url,
    async query(sql) {
      const c = new Client({ connectionString: url });
      await c.connect();
      try {
        return (await c.query(sql)).rows;
      } finally {
        await c.end();
      }
    },
    async drop() {
      const c = new Client({ connectionString: PG_ADMIN_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

export interface Service {
  url: string;
  port: number;
  prefix: string;
  output(): string;
  post(path: string, body: unknown): Promise<{ status: number; body: any }>;
  stop(): Promise<void>;
}

/** Starts the service as its own process (as in production) and waits for /readyz. */
export async function startService(env: Record<string, string>, readyTimeoutMs = 60_000): Promise<Service> {
  const port = await freePort();
  const prefix = `prov-${suffix()}`.replace(/_/g, '-');
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'server/main.ts'], {
    cwd: ROOT,
    env: {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      REDIS_URL,
      CACHE_PREFIX: prefix,
      LOG_LEVEL: 'warn',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const service: Service = {
    url,
    port,
    prefix,
    output: () => output,
    async post(path, body) {
      const res = await fetch(url + path, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : null };
    },
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
      await deleteCacheKeys(prefix);
    },
  };
  try {
    await waitFor(
      `the service on port ${port} to be ready`,
      async () => {
        if (child.exitCode !== null) {
          throw new Error(`the service exited with ${child.exitCode}:\n${output}`);
        }
        const res = await fetch(`${url}/readyz`).catch(() => null);
        return res?.status === 200 ? true : undefined;
      },
      readyTimeoutMs,
      200
    );
  } catch (err) {
    await service.stop();
    throw new Error(`${(err as Error).message}\n--- service output ---\n${output}`);
  }
  return service;
}

/** Removes this test's cache entries only (never FLUSHALL: Redis is shared). */
async function deleteCacheKeys(prefix: string): Promise<void> {
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  redis.on('error', () => undefined);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `{${prefix}}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) {
        await redis.del(...keys);
      }
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

/**
 * A TCP proxy in front of PostgreSQL that holds every chunk the server sends back for
 * `delayMs` (in order), so each database round trip of a query gets that much slower.
 */
export async function delayingProxy(
  target: { host: string; port: number },
  delayMs: number
): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(target.port, target.host);
    sockets.add(client).add(upstream);
    client.pipe(upstream);
    let chain = Promise.resolve();
    upstream.on('data', (chunk) => {
      chain = chain
        .then(() => sleep(delayMs))
        .then(() => {
          if (!client.destroyed) {
            client.write(chunk);
          }
        });
    });
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    upstream.on('close', () => void chain.then(close));
    client.on('close', close);
    client.on('error', close);
    upstream.on('error', close);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    async close() {
      for (const s of sockets) {
        s.destroy();
      }
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

export interface Prometheus {
  url: string;
  /** Instant query; the result vector (throws on a PromQL error). */
  query(expr: string): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>>;
  stop(): Promise<void>;
}

/** Debian's prometheus scraping `targets` every second, with its data in a temp dir. */
export async function startPrometheus(binary: string, targets: string[]): Promise<Prometheus> {
  const dir = mkdtempSync(join(tmpdir(), 'ruleperf-prom-'));
  const port = await freePort();
  writeFileSync(
    join(dir, 'prometheus.yml'),
    JSON.stringify({
      global: { scrape_interval: '1s', evaluation_interval: '1s' },
      scrape_configs: [
        { job_name: 'ruleperf', scrape_interval: '1s', scrape_timeout: '900ms', static_configs: [{ targets }] },
      ],
    })
  );
  const child = spawn(
    binary,
    [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] }
  );
  let output = '';
  child.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const prometheus: Prometheus = {
    url,
    async query(expr) {
      const res = await fetch(`${url}/api/v1/query`, { method: 'POST', body: new URLSearchParams({ query: expr }) });
      const body = (await res.json()) as { status: string; error?: string; data?: { resultType: string; result: any } };
      if (body.status !== 'success') {
        throw new Error(`PromQL error for ${expr}: ${body.error}`);
      }
      if (body.data!.resultType === 'scalar') {
        return [{ metric: {}, value: body.data!.result }];
      }
      return body.data!.result;
    },
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await waitFor(
      'prometheus to be ready',
      async () => {
        if (child.exitCode !== null) {
          throw new Error(`prometheus exited:\n${output}`);
        }
        const res = await fetch(`${url}/-/ready`).catch(() => null);
        return res?.ok ? true : undefined;
      },
      30_000,
      200
    );
    // Every target scraped at least once.
    await waitFor(
      'prometheus to scrape every service',
      async () => {
        const up = await prometheus.query('up{job="ruleperf"} == 1');
        return up.length === targets.length ? true : undefined;
      },
      30_000,
      250
    );
  } catch (err) {
    await prometheus.stop();
    throw err;
  }
  return prometheus;
}

/** Runs a promtool subcommand; returns its exit status and output. */
export function promtool(args: string[], cwd: string): { status: number; output: string } {
  const r = spawnSync('promtool', args, { cwd, encoding: 'utf8' });
  return { status: r.status ?? -1, output: `${r.stdout}${r.stderr}` };
}

/**
 * A TCP proxy that can be cut: `cut()` drops every connection and refuses new ones (each
 * is closed as it arrives), as a Redis that went away; `heal()` lets connections through again.
 */
export async function cuttableProxy(target: {
  host: string;
  port: number;
}): Promise<{ port: number; cut(): void; heal(): void; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  let cutOff = false;
  const server: Server = createServer((client) => {
    if (cutOff) {
      client.destroy();
      return;
    }
    const upstream = connect(target.port, target.host);
    sockets.add(client).add(upstream);
    client.pipe(upstream);
    upstream.pipe(client);
    const close = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    for (const s of [client, upstream]) {
      s.on('close', close);
      s.on('error', close);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    cut() {
      cutOff = true;
      for (const s of sockets) {
        s.destroy();
      }
    },
    heal() {
      cutOff = false;
    },
    async close() {
      cutOff = true;
      for (const s of sockets) {
        s.destroy();
      }
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
