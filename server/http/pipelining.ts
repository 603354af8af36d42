/**
 * Requests one connection may pipeline. HTTP/1.1 lets a client send many requests before reading
 * an answer, and Node parses and dispatches all that one read brings (up to 64 KB, over a
 * thousand short requests, several reads a turn): 1,000 cached requests in one write held the
 * event loop for every other client (their answers waited 290 ms), and each queued answer waits
 * in memory. Two counts, each refused past the one answered and PIPELINED_MAX behind it:
 * - the requests whose response has no socket yet (queued behind a slower answer);
 * - the requests one connection brought in this loop turn: answers from memory need not queue,
 *   and a client pumping 500 cached queries a write held other clients' answers 40 ms at p50,
 *   over a second at worst.
 * A refused request is answered 503 busy at once, before any work, and the connection is closed
 * after the answers before it (what still comes is dropped unparsed for a moment: closing.ts). Every
 * request its last read still brought is refused the same way (left unanswered, they were read
 * into memory without end: 200,000 behind one slow answer). A client that reads each answer
 * before its next request (browsers, Grafana) never meets either.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** Queued on one connection at most: far above what a client that reads each answer has (none). */
export const PIPELINED_MAX = 16;

export class PipelineLimit {
  private readonly queued = new WeakMap<Socket, number>();
  private readonly thisTurn = new WeakMap<Socket, { turn: number; n: number }>();
  /** Connections answered busy, closing after the answers before it. */
  private readonly refused = new WeakSet<Socket>();
  private turn = 0;
  private turnEnds = false;

  constructor(private readonly max = PIPELINED_MAX) {}

  /** Whether `req` may go ahead; false: answer it busy, its connection closing. */
  admit(req: IncomingMessage, res: ServerResponse): boolean {
    const socket = req.socket;
    if (this.refused.has(socket)) {
      return false;
    }
    if (this.countThisTurn(socket) > this.max + 1 || (!res.socket && !this.countQueued(socket, res))) {
      this.refused.add(socket);
      return false;
    }
    return true;
  }

  private countThisTurn(socket: Socket): number {
    if (!this.turnEnds) {
      this.turnEnds = true;
      setImmediate(() => {
        this.turn++;
        this.turnEnds = false;
      });
    }
    const seen = this.thisTurn.get(socket);
    if (seen?.turn === this.turn) {
      return ++seen.n;
    }
    this.thisTurn.set(socket, { turn: this.turn, n: 1 });
    return 1;
  }

  /** Counts `res`, queued behind another answer (no socket yet), until its turn; false, counting nothing, when `max` already wait. */
  private countQueued(socket: Socket, res: ServerResponse): boolean {
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
