/**
 * Test access to the machine's real PostgreSQL and Redis, fresh databases per suite,
 * and in-process service instances on free ports.
 */
import { randomBytes } from 'node:crypto';
import { Client, Pool } from 'pg';
import pino from 'pino';
import { loadConfig } from '../../server/config';
import { startService, type RunningService } from '../../server/main';
import { migrate, type Flavour } from '../../server/db/migrate';
import type { NativeChoice } from '../../server/db/native';

export const PG_HOST = process.env.TEST_PG_HOST ?? '127.0.0.1';
export const PG_PORT = Number(process.env.TEST_PG_PORT ?? 5432);
export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const ADMIN_URL = `postgres://postgres@${PG_HOST}:${PG_PORT}/postgres`;

export const uniqueName = (prefix: string) => `${prefix}_${process.pid}_${randomBytes(3).toString('hex')}`;

export interface TestDatabase {
  name: string;
  url: string;
  pool: Pool;
  drop(): Promise<void>;
}

/** A new empty database on the local PostgreSQL, dropped (forcibly) at the end. */
export async function freshDatabase(
  options: { migrate?: boolean; flavour?: Flavour; native?: NativeChoice } = {}
): Promise<TestDatabase> {
  const name = uniqueName('ruleperf_test');
  const admin = new Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = `postgres://postgres@${PG_HOST}:${PG_PORT}/${name}`;
  const pool = new Pool({ connectionString: url, max: 4 });
  pool.on('error', () => undefined);
  if (options.migrate ?? true) {
    await migrate(pool, { flavour: options.flavour ?? 'postgres', native: options.native });
  }
  return {
    name,
    url,
    pool,
    async drop() {
      await pool.end().catch(() => undefined);
      const c = new Client({ connectionString: ADMIN_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

/** Starts the real service in this process with test-friendly settings. */
/** The service in this process, silent unless given a `logger` (a test reading what it logs). */
export async function startTestService(env: Record<string, string>, logger?: pino.Logger): Promise<RunningService> {
  const config = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    REDIS_URL,
    CACHE_PREFIX: uniqueName('t').replace(/_/g, '-'),
    WARM_ON_START: 'false',
    WARM_INTERVAL_SECONDS: '0',
    // Not at second 50 of every minute behind the tests' backs (tests that warm ahead call warmAhead).
    WARM_AHEAD_SECONDS: '0',
    REFRESH_SCHEDULER: 'off',
    LOG_LEVEL: 'silent',
    DB_POOL_MAX: '8',
    // Stopped at once: the tests' clients keep idle connections open, which a drain would wait out.
    SHUTDOWN_DRAIN_MS: '0',
    ...env,
  });
  return startService(config, logger ?? pino({ level: config.LOG_LEVEL }));
}

export async function postJson(
  url: string,
  body: unknown,
  headers: Record<string, string> = {}
): Promise<{ status: number; body: any }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    /* not JSON: the test will say so */
  }
  return { status: res.status, body: parsed };
}

/** Whether the optional ruleperf_native extension (native/, C) is installed on the test PostgreSQL. */
export async function nativeExtensionInstalled(): Promise<boolean> {
  const c = new Client({ connectionString: ADMIN_URL });
  await c.connect();
  try {
    return (await c.query(`SELECT 1 FROM pg_available_extensions WHERE name = 'ruleperf_native'`)).rows.length > 0;
  } finally {
    await c.end();
  }
}
