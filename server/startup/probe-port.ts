/**
 * PROBE_PORT: `/healthz` and `/readyz` on a port of their own, answered by a worker thread with
 * its own event loop. On the service's port a probe opening a new connection waits for the
 * event loop to accept it, and Node 20's libuv accepts one connection per turn of the loop: a
 * client holding a thousand connections busy made each turn long, and a health check on a new
 * connection waited up to 10 s (a probe with a 1 s timeout fails, and the orchestrator restarts
 * a healthy instance). Here the worker accepts at once and answers from what the service's
 * thread last told it:
 * - `/healthz`: 200 while the service's event loop turns (a heartbeat it writes every 250 ms to
 *   memory both threads share); 503 "stalled" once it has not for STALL_MS, so a loop that is
 *   really stuck still fails its liveness probe;
 * - `/readyz`: the status and body of the service's own `/readyz` as computed each second
 *   (security warnings withheld, as from a caller without the token); 503 "starting" until the
 *   first, "stalled" as above, or "stopping" once the service stops.
 * Expose the port to the orchestrator only: nothing on it needs a token.
 */
import { Worker } from 'node:worker_threads';
import type pino from 'pino';
import type { ReadyResponse } from '../contract';

/** A heartbeat older than this is a stalled event loop. */
export const STALL_MS = 10_000;
/** How often the service's thread writes its heartbeat. */
const HEARTBEAT_MS = 250;

export interface ProbePort {
  port: number;
  /** The readiness the port answers until the next one. */
  publish(status: number, body: string): void;
  stop(): Promise<void>;
}

/** The worker: plain JavaScript (no loader), node:http and the shared heartbeat only. */
const WORKER = `
const http = require('node:http');
const { parentPort, workerData } = require('node:worker_threads');
const beat = new BigInt64Array(workerData.heartbeat);
const started = Date.now();
let ready = null;
const send = (req, res, status, value) => {
  const body = typeof value === 'string' ? value : JSON.stringify(value);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    ...(status === 503 ? { 'retry-after': '5' } : {}),
    ...(status === 405 ? { allow: 'GET, HEAD' } : {}),
  });
  res.end(req.method === 'HEAD' ? undefined : body);
};
const server = http.createServer({ connectionsCheckingInterval: 1000 }, (req, res) => {
  // The absolute form (GET http://host/healthz) names the same path.
  const target = req.url || '';
  let path = target.split('?', 1)[0];
  if (!target.startsWith('/')) {
    try {
      path = new URL(target).pathname;
    } catch {
      path = '';
    }
  }
  if (path !== '/healthz' && path !== '/readyz') {
    return send(req, res, 404, { error: 'not found', routes: ['GET /healthz', 'GET /readyz'] });
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    return send(req, res, 405, { error: 'method ' + req.method + ' is not allowed on ' + path + '; use GET' });
  }
  const now = Date.now();
  const age = now - Number(Atomics.load(beat, 0));
  if (age > workerData.stallMs) {
    return send(req, res, 503, { status: 'stalled', reason: 'the service has not turned its event loop for ' + Math.round(age / 1000) + ' s' });
  }
  if (path === '/healthz') {
    return send(req, res, 200, { status: 'ok' });
  }
  if (!ready) {
    return send(req, res, 503, { status: 'starting', seconds: Math.round((now - started) / 1000) });
  }
  send(req, res, ready.status, ready.body);
});
server.headersTimeout = 2000;
server.requestTimeout = 2000;
server.keepAliveTimeout = 2000;
// Its connections are the process's file descriptors too: at most 64, and past that a new one
// closes the oldest (refusing the new one let 64 idle sockets keep every probe out until their
// headers timed out, 30 s: the orchestrator would restart a healthy instance).
const open = new Set();
server.on('connection', (socket) => {
  open.add(socket);
  socket.once('close', () => open.delete(socket));
  if (open.size > 64) {
    const oldest = open.values().next().value;
    open.delete(oldest);
    oldest.destroy();
  }
});
parentPort.on('message', (m) => {
  if (m.type === 'ready') {
    ready = m;
  } else if (m.type === 'stop') {
    server.close(() => parentPort.close());
    server.closeAllConnections();
  }
});
server.on('error', (err) => parentPort.postMessage({ type: 'error', message: err.message, code: err.code }));
server.listen(workerData.port, workerData.host, () => parentPort.postMessage({ type: 'listening', port: server.address().port }));
`;

export async function startProbePort(
  host: string,
  port: number,
  log: Pick<pino.Logger, 'error'>,
  stallMs = STALL_MS
): Promise<ProbePort> {
  const heartbeat = new SharedArrayBuffer(8);
  const beat = new BigInt64Array(heartbeat);
  const tick = () => Atomics.store(beat, 0, BigInt(Date.now()));
  tick();
  const ticking = setInterval(tick, HEARTBEAT_MS);
  ticking.unref();
  const worker = new Worker(WORKER, { eval: true, workerData: { heartbeat, host, port, stallMs } });
  try {
    const listening = await new Promise<number>((resolve, reject) => {
      worker.once('error', reject);
      worker.on('message', (m: { type: string; port?: number; message?: string; code?: string }) => {
        if (m.type === 'listening') {
          resolve(m.port!);
        } else if (m.type === 'error') {
          reject(
            new Error(
              m.code === 'EADDRINUSE' || m.code === 'EACCES'
                ? `cannot listen on ${host}:${port} for probes (${m.code === 'EADDRINUSE' ? 'another program listens there' : 'not allowed'}): stop it, or set PROBE_PORT to another port`
                : `the probe port failed: ${m.message}`
            )
          );
        }
      });
    });
    // Listening: the worker alone does not keep the process alive (the service's stop ends it).
    worker.unref();
    let stopping = false;
    // Past its start, a failure of the worker or its server is said (the port would be silent else).
    worker.removeAllListeners('error');
    worker.on('error', (err) => log.error({ err: { message: err.message } }, 'the probe port stopped answering'));
    worker.on('message', (m: { type: string; message?: string }) => {
      if (m.type === 'error') {
        log.error({ err: { message: m.message } }, 'the probe port failed');
      }
    });
    worker.once('exit', (code) => {
      if (!stopping) {
        log.error({ code }, 'the probe port stopped answering: its thread ended');
      }
    });
    return {
      port: listening,
      publish: (status, body) => worker.postMessage({ type: 'ready', status, body }),
      stop: async () => {
        stopping = true;
        clearInterval(ticking);
        worker.ref();
        const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
        worker.postMessage({ type: 'stop' });
        // A connection the worker cannot close in time does not hold the stop.
        await Promise.race([exited, new Promise((r) => setTimeout(r, 2000).unref())]);
        await worker.terminate();
      },
    };
  } catch (err) {
    clearInterval(ticking);
    await worker.terminate();
    throw err;
  }
}

/**
 * Publishes the service's readiness to the probe port each second, one look at a time, as a
 * caller without the token reads it (or anyone, where there is no token: `mayReadWarnings`).
 * `stop` publishes "stopping"; a look still running then publishes nothing (it said "ready" to a
 * health check while the service drained).
 */
export function publishReadiness(
  probes: Pick<ProbePort, 'publish'>,
  ready: () => Promise<ReadyResponse>,
  body: (ready: ReadyResponse) => ReadyResponse
): { stop(): void } {
  let looking = false;
  let stopped = false;
  const publish = (status: number, value: unknown) => {
    if (!stopped) {
      probes.publish(status, JSON.stringify(value));
    }
  };
  const look = () => {
    if (looking) {
      return;
    }
    looking = true;
    ready()
      .then(
        (r) => publish(r.status === 'ready' ? 200 : 503, body(r)),
        (err: Error) => publish(503, { status: 'not ready', reason: err.message })
      )
      .finally(() => (looking = false));
  };
  look();
  const timer = setInterval(look, 1000);
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      probes.publish(503, JSON.stringify({ status: 'stopping' }));
      stopped = true;
    },
  };
}
