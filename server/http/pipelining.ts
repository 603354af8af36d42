/**
 * Requests one connection may have queued behind the one being answered. HTTP/1.1 lets a client
 * send many requests before reading an answer (pipelining), and Node parses and dispatches all
 * that one read brings: 1,000 cached requests in one write held the event loop for every other
 * client (their answers waited 290 ms), and each queued answer waits in memory. Node gives a
 * queued request's response no socket until its turn, so only those are counted (nothing is done
 * for a request that is answered at once). Past the limit a request is answered 503 busy at once,
 * before any work, and its connection closed after the answers before it. Browsers and Grafana's
 * client never pipeline.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** Queued on one connection at most: far above what a client that reads each answer has (none). */
export const PIPELINED_MAX = 16;

export class PipelineLimit {
  private readonly queued = new WeakMap<Socket, number>();

  constructor(private readonly max = PIPELINED_MAX) {}

  /** Counts `req`, queued behind another answer (its response has no socket yet), until its turn; false, counting nothing, when `max` already wait. */
  admit(req: IncomingMessage, res: ServerResponse): boolean {
    const socket = req.socket;
    const n = this.queued.get(socket) ?? 0;
    if (n >= this.max) {
      return false;
    }
    this.queued.set(socket, n + 1);
    let released = false;
    const release = () => {
      if (!released) {
        released = true;
        this.queued.set(socket, (this.queued.get(socket) ?? 1) - 1);
      }
    };
    res.once('socket', release);
    res.once('close', release);
    return true;
  }
}

export const PIPELINED_BUSY = `the service is busy (more than ${PIPELINED_MAX} requests waiting on one connection: read each answer before sending more); retry in 1 s`;
