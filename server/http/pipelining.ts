/**
 * Requests one connection may have in flight at once. HTTP/1.1 lets a client send many requests
 * before reading an answer (pipelining), and Node parses and dispatches all that one read brings:
 * 1,000 cached requests in one write held the event loop for every other client (their answers
 * waited 290 ms). Past the limit a request is answered 503 busy at once, before any work, and its
 * connection closed after the answers before it. Browsers and Grafana's client never pipeline.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** In flight on one connection at most: far above what a client that reads each answer has (one). */
export const PIPELINED_MAX = 16;

export class PipelineLimit {
  private readonly inFlight = new WeakMap<Socket, number>();

  constructor(private readonly max = PIPELINED_MAX) {}

  /** Counts `req` on its connection until its response is over; false, counting nothing, when the connection has `max` in flight. */
  admit(req: IncomingMessage, res: ServerResponse): boolean {
    const socket = req.socket;
    const n = this.inFlight.get(socket) ?? 0;
    if (n >= this.max) {
      return false;
    }
    this.inFlight.set(socket, n + 1);
    let released = false;
    const release = () => {
      if (!released) {
        released = true;
        this.inFlight.set(socket, (this.inFlight.get(socket) ?? 1) - 1);
      }
    };
    res.once('finish', release);
    res.once('close', release);
    return true;
  }
}

export const PIPELINED_BUSY = `the service is busy (more than ${PIPELINED_MAX} requests in flight on one connection: read each answer before sending more); retry in 1 s`;
