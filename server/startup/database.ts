/**
 * Start-up, first step: the database. The embedded one (its data folder locked, booted,
 * migrated, the demo prepared) or DATABASE_URL's (migrated, or checked when MIGRATE_ON_START
 * is off), with the pools the service uses.
 */
import { join } from 'node:path';
import type pino from 'pino';
import type { Pool } from 'pg';
import type { Config } from '../config';
import { phaseProgress } from '../cli/progress';
import { withConnectHint } from '../db/connect-hints';
import { DataFolderLocked } from '../db/data-lock';
import { BACKGROUND_APPLICATION_NAME, startEmbeddedDatabase, type EmbeddedDatabase } from '../db/embedded';
import { migrate, MigrationRefused, schemaInfo, type Flavour } from '../db/migrate';
import { createPools } from '../db/pools';
import { Demo } from '../demo/demo';

/** Seconds since `since` (performance.now()), to a tenth. */
export const seconds = (since: number) => Number(((performance.now() - since) / 1000).toFixed(1));

export interface StartHooks {
  /** The embedded database failed while running (the service cannot answer any more). */
  onFatal?(err: Error): void;
  /** Aborts a start-up in progress between statements (a signal during a long first start). */
  signal?: AbortSignal;
}

export class StartupError extends Error {}

/** How to say "the embedded database" in an error, with the settings that matter. */
export function embeddedHint(config: Config): string {
  return `the embedded database (PGlite, data in DATA_DIR=${config.DATA_DIR}) serves one statement at a time; see the log above, raise DB_STATEMENT_TIMEOUT_MS if statements wait too long, or set DATABASE_URL to a PostgreSQL or TimescaleDB server`;
}

/** The database: the embedded one (locked, booted, migrated, demo prepared) or DATABASE_URL's. */
export async function openDatabase(
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
    if (embedded.takenOverFrom !== null) {
      log.warn(
        { pid: embedded.takenOverFrom },
        `the data folder was locked by pid ${embedded.takenOverFrom}, which is no longer running (it was killed or crashed): taken over; the database recovers to its last commit, and the demo resumes from there`
      );
    }
    log.info(
      { url: embedded.publicUrl, urlFile: embedded.urlFile },
      `the embedded database listens on loopback while the service runs; its URL with the password this start made is in ${embedded.urlFile} (psql "$(cat ${embedded.urlFile})")`
    );
  }
  const pools = createPools(
    config,
    url,
    embedded ? { embedded: { backgroundApplicationName: BACKGROUND_APPLICATION_NAME } } : {}
  );
  const fail = async (err: unknown): Promise<never> => {
    await pools.end().catch(() => undefined);
    await embedded?.stop();
    if (!embedded) {
      // DATABASE_URL's server refused, unknown or without the database: what to do, as the CLI says it.
      throw new StartupError(withConnectHint(err, config.DATABASE_URL));
    }
    const message = (err as Error).message;
    throw new StartupError(err instanceof MigrationRefused ? message : `${message} (${embeddedHint(config)})`);
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
  // PGlite runs PostgreSQL in single-user mode, where max_wal_size starts no checkpoint: the
  // write-ahead log only grew (3.6 GB of it after a first start's back-fill, 5.5 GB in all for
  // a million demo rows). A checkpoint every minute lets its segments be recycled.
  const stopCheckpoints = embedded ? checkpointEvery(pools.background, EMBEDDED_CHECKPOINT_MS) : () => undefined;
  return { embedded, url, pools, flavour, demo, stopCheckpoints };
}

/** How often the embedded database checkpoints (see openDatabase). */
export const EMBEDDED_CHECKPOINT_MS = 60_000;

/** Runs CHECKPOINT on `db` every `ms` (a failure waits for the next one); returns the stop. */
export function checkpointEvery(db: Pick<Pool, 'query'>, ms: number): () => void {
  const timer = setInterval(() => void db.query('CHECKPOINT').catch(() => undefined), ms);
  timer.unref();
  return () => clearInterval(timer);
}
