/**
 * Request bodies held in memory at once, across connections. A request's body bytes are counted
 * as they arrive and given back when its response is over. When a chunk would overfill the
 * budget, room is made by refusing the bodies that have been arriving longest (408: over
 * SLOW_BODY_MS, longer than a client takes to send a dashboard's body); the request whose
 * bytes the budget still cannot hold is answered 503 busy at once and its connection closed.
 * Without a budget, 250 connections each sending 1 MB less a byte and then waiting grew the
 * process by 240 MB until their request timeout. Counted as they arrive, not reserved by the
 * declared length: 64 connections declaring 1 MB (or chunked) and sending a byte each held the
 * whole budget. And refusing only the newcomer let 70 such stalled bodies hold it: every query
 * (a cached one too, 200 bytes of body) was 503 for 30 s at a time, until their request timeout.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

/** The body limit (app.ts BODY_LIMIT, '1mb'), in bytes. */
export const BODY_LIMIT_BYTES = 1024 * 1024;

/** Bytes of request bodies in flight at most: 64 bodies at the 1 MB limit; dashboard bodies are a few hundred bytes. */
export const BODIES_IN_FLIGHT_MAX_BYTES = 64 * 1024 * 1024;

/**
 * Pieces (chunks of a chunked body, or reads of one with a length) one body may arrive in. Each
 * is a Buffer of its own until the body ends, about 300 bytes of heap however small: a 1 MB body
 * in 1-byte chunks held 300 MB, eight at once 3 GB, and four crashed a process with a 768 MB
 * heap. Grafana sends a dashboard's body in one or two; a 1 MB body in reads of 256 bytes is
 * 4,096.
 */
export const BODY_PIECES_MAX = 4096;

/**
 * What a piece of a body holds of the heap however small it is (a Buffer of its own): the budget
 * charges at least this for each. Charged their bytes, 400 connections sending 4,000 1-byte
 * chunks each were counted 1.6 MB while the process grew by 520 MB.
 */
export const PIECE_HEAP_BYTES = 300;

/**
 * A body still arriving this long may be refused (408) to make room for others when the budget is
 * full. A dashboard's body comes in a packet or two, a 1 MB one over 100 Mbit/s in 80 ms. Bodies
 * that churn (each closed younger than this, another opened) hold the budget only at 64 MB per
 * SLOW_BODY_MS: at 1 s, one client uploading 64 MB/s kept every query 503; at 200 ms it takes 320 MB/s.
 */
export const SLOW_BODY_MS = 200;

interface Arriving {
  started: number;
  /** Bytes it holds now: one holding none frees nothing, and is not refused to make room. */
  held: number;
  /** Refuses it (408), giving back what it held. */
  drop: () => void;
}

export class BodyBudget {
  private inFlight = 0;
  /** Bodies still arriving, longest arriving first (insertion order). */
  private readonly arriving = new Set<Arriving>();

  constructor(
    private readonly maxBytes = BODIES_IN_FLIGHT_MAX_BYTES,
    private readonly now: () => number = Date.now
  ) {}

  /** Takes `bytes`, refusing bodies arriving longer than SLOW_BODY_MS (not `self`) to make room; false (nothing taken) when there is none. */
  take(bytes: number, self?: Arriving): boolean {
    if (this.inFlight + bytes > this.maxBytes) {
      const slowBefore = this.now() - SLOW_BODY_MS;
      for (const body of this.arriving) {
        if (this.inFlight + bytes <= this.maxBytes || body.started > slowBefore) {
          break;
        }
        if (body !== self && body.held > 0) {
          body.drop();
        }
      }
      if (this.inFlight + bytes > this.maxBytes) {
        return false;
      }
    }
    this.inFlight += bytes;
    return true;
  }

  give(bytes: number): void {
    this.inFlight -= bytes;
  }

  /** Bytes held now (tests, metrics). */
  get heldBytes(): number {
    return this.inFlight;
  }

  /**
   * Counts `req`'s body against the budget as it is read, until the first of its last byte, the
   * response being over and the request being gone (a pipelined request's response queued behind
   * another may never emit 'close' itself); `refuse` is called once, with what it held given back:
   * `busy` when a chunk would overfill the budget, `slow` when it is refused to make room for
   * others. Call before anything reads the body: the count starts when the body starts flowing
   * (its 'resume'), so it adds no reader of its own. A request counts at most the body limit:
   * past it, its bytes are read to be thrown away (body-parser's 413), not held, and one
   * connection sending 64 MB must not hold the whole budget. A body in more than
   * BODY_PIECES_MAX pieces is refused as too large as well (`tooLarge('pieces')`).
   */
  count(
    req: IncomingMessage,
    res: ServerResponse,
    refuse: { busy: () => void; slow: () => void; tooLarge: (why: 'bytes' | 'pieces') => void }
  ): void {
    let received = 0;
    let pieces = 0;
    let counting = true;
    const self: Arriving = {
      started: 0,
      held: 0,
      drop: () => {
        req.off('data', arrived);
        stop();
        refuse.slow();
      },
    };
    const stop = () => {
      this.arriving.delete(self);
      if (counting) {
        counting = false;
        this.give(self.held);
        self.held = 0;
      }
    };
    // Arrived whole: its bytes stay counted until the answer is over, but it is no longer arriving.
    const ended = () => this.arriving.delete(self);
    const arrived = (chunk: Buffer) => {
      received += chunk.length;
      pieces++;
      if (received > BODY_LIMIT_BYTES || pieces > BODY_PIECES_MAX) {
        // Past the limit (a chunked body declares no length): answered at once, not read on.
        req.off('data', arrived);
        stop();
        refuse.tooLarge(received > BODY_LIMIT_BYTES ? 'bytes' : 'pieces');
        return;
      }
      const bytes = Math.min(Math.max(chunk.length, PIECE_HEAP_BYTES), BODY_LIMIT_BYTES - self.held);
      if (!counting || bytes <= 0) {
        return;
      }
      if (!this.take(bytes, self)) {
        req.off('data', arrived);
        stop();
        refuse.busy();
        return;
      }
      self.held += bytes;
    };
    req.once('resume', () => {
      self.started = this.now();
      if (!req.complete) {
        this.arriving.add(self);
      }
      req.on('data', arrived);
      req.once('end', ended);
    });
    res.once('close', stop);
    req.once('close', stop);
  }
}
