/**
 * A request's "asker" signal: it aborts when the client closes its connection before the answer
 * is sent. Grafana cancels a panel's request whenever its range changes (each drag, zoom or
 * refresh), and the data proxy then closes its connection to the service: work still queued
 * for such a request is given up (admission.ts) instead of run for nobody ahead of the
 * questions the user now asks (27 such requests put a live one 10 s behind them and 503 on the
 * embedded database).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

export function clientGone(req: IncomingMessage, res: ServerResponse): AbortSignal {
  const gone = new AbortController();
  const socket = req.socket;
  if (socket.destroyed) {
    gone.abort();
    return gone.signal;
  }
  const abort = () => gone.abort();
  // The socket's close, not the response's: that one also comes after an answer is sent, and a
  // pipelined request's response has no socket yet. Kept until the answer is sent (a kept-alive
  // connection carries many requests).
  socket.once('close', abort);
  res.once('finish', () => socket.off('close', abort));
  return gone.signal;
}
