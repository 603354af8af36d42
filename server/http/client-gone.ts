/**
 * A request's "asker" signal: it aborts when the client closes its connection before the answer
 * is sent. Grafana cancels a panel's request whenever its range changes (each drag, zoom or
 * refresh), and the data proxy then closes its connection to the service: work still queued
 * for such a request is given up (admission.ts) instead of run for nobody ahead of the
 * questions the user now asks (27 such requests put a live one 10 s behind them and 503 on the
 * embedded database).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { setMaxListeners } from 'node:events';

/** Per connection, the signals of its requests still unanswered: one 'close' listener each, however many it pipelines. */
const unanswered = new WeakMap<Socket, Set<AbortController>>();

export function clientGone(req: IncomingMessage, res: ServerResponse): AbortSignal {
  const gone = new AbortController();
  // A listener per query it asks (at most LIMITS.maxQueries), each removed or let go with it.
  setMaxListeners(0, gone.signal);
  const socket = req.socket;
  if (socket.destroyed) {
    gone.abort();
    return gone.signal;
  }
  let waiting = unanswered.get(socket);
  if (!waiting) {
    const set = (waiting = new Set());
    unanswered.set(socket, set);
    // The socket's close, not the response's: that one also comes after an answer is sent, and
    // a pipelined request's response has no socket yet.
    socket.once('close', () => {
      for (const asker of set) {
        asker.abort();
      }
      set.clear();
    });
  }
  waiting.add(gone);
  res.once('finish', () => waiting.delete(gone));
  return gone.signal;
}
