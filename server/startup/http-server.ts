/** Start-up, last step: the HTTP server, with timeouts that keep slow clients from holding sockets. */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { Socket } from 'node:net';
import { isLoopbackHost, type Config } from '../config';
import { StartupError } from './database';
import { declaredTooLarge } from '../http/app';

export interface Listening {
  url: string;
  port: number;
  /**
   * Drains, then stops accepting and closes idle keep-alive sockets; resolves once in-flight
   * requests completed. For SHUTDOWN_DRAIN_MS (or until no connection is left) requests are
   * still accepted and answered, each closing its connection: closing at once would reset a
   * request a client has just written on a kept-alive socket the server still counts as idle
   * (Node's server.close() destroys idle sockets), or one still in the accept backlog.
   */
  close(): Promise<void>;
}

/**
 * Served without API_TOKEN on loopback, any program of this machine may call the service — and
 * so may a web page the machine's browser opens, by DNS rebinding: its name made to resolve to
 * 127.0.0.1, its requests carry its own name as Host. Such requests are refused.
 */
function addressedToLoopback(host: string | undefined): boolean {
  if (host === undefined) {
    return true; // no browser sends a request without one
  }
  const name = (host.startsWith('[') ? host.slice(1, host.indexOf(']')) : host.replace(/:\d*$/, '')).replace(/\.$/, '');
  return isLoopbackHost(name) || name.toLowerCase().endsWith('.localhost');
}

/**
 * What the port answers while the service starts (the database, its migrations and, on a first
 * start, the demo and its rollups: half a minute or more): liveness says it is starting,
 * everything else 503 with Retry-After. Before, the port stayed closed, so there was no
 * /readyz to poll, and a port in use was found only once the database had been migrated.
 */
export function startingHandler(startedAt: number): http.RequestListener {
  return (req, res) => {
    req.resume();
    const seconds = Math.round((performance.now() - startedAt) / 1000);
    const path = (req.url ?? '').split('?')[0];
    const starting = { status: 'starting', seconds };
    const [status, body] =
      path === '/healthz'
        ? [200, starting]
        : path === '/readyz'
          ? [503, starting]
          : [
              503,
              {
                error: `the service is starting (${seconds} s so far: the database, its migrations and, on a first start, the demo data and its rollups); retry in 5 s`,
              },
            ];
    res.writeHead(status, { 'content-type': 'application/json', ...(status === 503 ? { 'retry-after': '5' } : {}) });
    res.end(JSON.stringify(body));
  };
}

/**
 * Connections the server may hold at once: its file descriptors, less room for the database,
 * Redis and files (past them, those fail too). Node raises its soft limit to the hard one at start.
 */
export function defaultMaxConnections(limitsText = readLimits()): number {
  const soft = Number(/^Max open files\s+(\d+)/m.exec(limitsText)?.[1]);
  return Number.isFinite(soft) && soft > 0 ? Math.max(64, Math.min(10_000, soft - 512)) : 10_000;
}

function readLimits(): string {
  try {
    return readFileSync('/proc/self/limits', 'utf8');
  } catch {
    return '';
  }
}

/** Whether a connection has sent nothing yet (one that has begun a request is Node's to time: headersTimeout). */
const silent = (socket: Socket) => socket.bytesRead === 0;

/** How long, once the port is closed, a connection opened before has to send its first request. */
const LAST_REQUEST_MS = 250;

export async function listen(handler: http.RequestListener, config: Config): Promise<Listening> {
  let draining = false;
  // Connections that have not sent a request yet, each with its deadline: Node times only
  // requests begun (headersTimeout), so a client opening connections and sending nothing held
  // them for good (20,000 of them took every file descriptor the process had).
  const unused = new Map<Socket, NodeJS.Timeout>();
  /** Every open connection (their count decides when to make room), with the answer it holds now (when a request has come on it). */
  const answering = new Map<Socket, http.ServerResponse | null>();
  const checkHost = !config.API_TOKEN && isLoopbackHost(config.HOST);
  // Timeouts are checked every second (Node's default interval is 30 s).
  const server = http.createServer(
    {
      connectionsCheckingInterval: 1000,
      headersTimeout: config.HTTP_HEADERS_TIMEOUT_MS,
      requestTimeout: config.HTTP_REQUEST_TIMEOUT_MS,
    },
    (req, res) => {
      answering.set(req.socket, res);
      const deadline = unused.get(req.socket);
      if (deadline) {
        clearTimeout(deadline);
        unused.delete(req.socket);
      }
      if (draining) {
        // The client's next request opens a new connection (to an instance that stays).
        res.setHeader('Connection', 'close');
      }
      if (checkHost && !addressedToLoopback(req.headers.host)) {
        res.writeHead(403, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            error: `served without API_TOKEN, this service answers requests addressed to this machine only (Host localhost, *.localhost, 127.x.x.x or [::1]), not ${JSON.stringify(String(req.headers.host).slice(0, 100))}: set API_TOKEN to be called by another name`,
          })
        );
        return;
      }
      handler(req, res);
    }
  );
  const maxConnections = config.HTTP_MAX_CONNECTIONS ?? defaultMaxConnections();
  server.maxConnections = maxConnections;
  // Near the limit, each new connection closes the oldest one that has not sent a request yet:
  // a client holding connections it does not use kept every new one out (Grafana's, whose
  // keep-alive connections are renewed, and health checks'), while clients send their request
  // at once, so theirs are the newest.
  const roomFrom = maxConnections - Math.max(1, Math.floor(maxConnections / 100));
  // Taken out of the list at once: connections accepted in the same turn each close another.
  const close = (socket: Socket) => {
    clearTimeout(unused.get(socket));
    unused.delete(socket);
    socket.destroy();
  };
  // A silent one among the oldest few first: one that has begun its request may be a slow client's.
  const makeRoom = () => {
    let oldest: Socket | undefined;
    let looked = 0;
    for (const socket of unused.keys()) {
      oldest ??= socket;
      if (silent(socket) || ++looked >= 16) {
        close(silent(socket) ? socket : oldest);
        return;
      }
    }
    if (oldest) {
      close(oldest);
    }
  };
  server.on('connection', (socket: Socket) => {
    answering.set(socket, null);
    if (answering.size > roomFrom) {
      makeRoom();
    }
    // Silent since it connected; one that has begun a request is Node's to time (headersTimeout).
    const deadline = setTimeout(() => silent(socket) && socket.destroy(), config.HTTP_HEADERS_TIMEOUT_MS);
    deadline.unref();
    unused.set(socket, deadline);
    socket.once('close', () => {
      answering.delete(socket);
      clearTimeout(deadline);
      unused.delete(socket);
    });
  });
  // Expect: 100-continue: the client waits for a go-ahead before sending its body. It is given
  // when something starts reading the body, so a body nobody reads (a 404, a 405, a 401, one
  // declared too large: 413, app.ts) is answered without one, and nothing of it is sent (a
  // go-ahead at once had the client send a body only to have its connection closed on it).
  server.on('checkContinue', (req: http.IncomingMessage, res: http.ServerResponse) => {
    if (!declaredTooLarge(req)) {
      req.once('resume', () => {
        if (!res.headersSent) {
          res.writeContinue();
        }
      });
    }
    server.emit('request', req, res);
  });
  // An Expect other than 100-continue: Node's default 417 has no body; the contract's errors are JSON.
  server.on('checkExpectation', (_req: http.IncomingMessage, res: http.ServerResponse) => {
    res.writeHead(417, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: 'the Expect header is not supported: send no Expect, or Expect: 100-continue' }));
  });
  const connections = () => new Promise<number>((resolve) => server.getConnections((err, n) => resolve(err ? 0 : n)));
  server.listen(config.PORT, config.HOST);
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        err.code === 'EADDRINUSE' || err.code === 'EACCES'
          ? new StartupError(
              `cannot listen on ${config.HOST}:${config.PORT} (${err.code === 'EADDRINUSE' ? 'another program listens there' : 'not allowed'}): stop it, or set PORT to another port`
            )
          : err
      )
    );
  });
  server.keepAliveTimeout = 5_000;
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.PORT;
  return {
    url: `http://${config.HOST === '0.0.0.0' ? '127.0.0.1' : config.HOST}:${port}`,
    port,
    close: async () => {
      draining = true;
      const until = Date.now() + config.SHUTDOWN_DRAIN_MS;
      while (Date.now() < until && (await connections()) > 0) {
        await new Promise((r) => setTimeout(r, Math.min(50, until - Date.now())));
      }
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
        // Node counts a connection that never sent a request as busy: it held the stop until
        // SHUTDOWN_GRACE_MS, which then exited with an error. One opened just before the port
        // closed gets a moment to send its request; one that has begun it (bytes read) is left to
        // finish it, within Node's headersTimeout.
        setTimeout(() => {
          for (const socket of unused.keys()) {
            if (silent(socket)) {
              socket.destroy();
            }
          }
        }, LAST_REQUEST_MS).unref();
        // Half the grace on, a request still arriving (its head, or its body, trickling in) is not
        // worked on and will not be: its connection closes, so that the stop ends in time. Left to
        // Node's timeouts (headers 10 s, request 30 s), one such client made every stop outlast
        // SHUTDOWN_GRACE_MS and exit with an error. Answers under way are left to finish.
        setTimeout(
          () => {
            for (const [socket, res] of answering) {
              if (!res || res.writableFinished || !res.req.complete) {
                socket.destroy();
              }
            }
          },
          Math.max(LAST_REQUEST_MS, config.SHUTDOWN_GRACE_MS / 2)
        ).unref();
      });
    },
  };
}
