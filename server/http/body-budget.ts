/**
 * Request bodies held in memory at once, across connections. A request's body bytes are counted
 * as they arrive and given back when its response is over; the request whose bytes the budget
 * cannot hold is answered 503 busy at once and its connection closed. Without it, 250
 * connections each sending 1 MB less a byte and then waiting grew the process by 240 MB until
 * their request timeout. Counted as they arrive, not reserved by the declared length: 64
 * connections declaring 1 MB (or chunked) and sending a byte each held the whole budget, and
 * every other request with a body was refused for 30 s.
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

export class BodyBudget {
  private inFlight = 0;

  constructor(private readonly maxBytes = BODIES_IN_FLIGHT_MAX_BYTES) {}

  /** Takes `bytes`; false (nothing taken) when the budget cannot hold them now. */
  take(bytes: number): boolean {
    if (this.inFlight + bytes > this.maxBytes) {
      return false;
    }
    this.inFlight += bytes;
    return true;
  }

  give(bytes: number): void {
    this.inFlight -= bytes;
  }

  /**
   * Counts `req`'s body against the budget as it is read, until the first of the response being
   * over and the request being gone (a pipelined request's response queued behind another may
   * never emit 'close' itself); `refuse` is called once, with what it held given back, when a
   * chunk would overfill the budget. Call before anything reads the body: the count starts when
   * the body starts flowing (its 'resume'), so it adds no reader of its own. A request counts at
   * most the body limit: past it, its bytes are read to be thrown away (body-parser's 413), not
   * held, and one connection sending 64 MB must not hold the whole budget. A body in more than
   * BODY_PIECES_MAX pieces is refused as too large as well (`tooLarge('pieces')`).
   */
  count(
    req: IncomingMessage,
    res: ServerResponse,
    refuse: { busy: () => void; tooLarge: (why: 'bytes' | 'pieces') => void }
  ): void {
    let held = 0;
    let received = 0;
    let pieces = 0;
    let counting = true;
    const stop = () => {
      if (counting) {
        counting = false;
        this.give(held);
        held = 0;
      }
    };
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
      const bytes = Math.min(chunk.length, BODY_LIMIT_BYTES - held);
      if (!counting || bytes <= 0) {
        return;
      }
      if (!this.take(bytes)) {
        stop();
        refuse.busy();
        return;
      }
      held += bytes;
    };
    req.once('resume', () => req.on('data', arrived));
    res.once('close', stop);
    req.once('close', stop);
  }
}
