/**
 * Request bodies held in memory at once, across connections. Each request with a body reserves
 * its declared length (the body limit when it is chunked) before a byte of it is read, and
 * gives it back when its response is over; a request the budget cannot hold is answered 503
 * busy at once. Without it, 250 connections each sending 1 MB less a byte and then waiting
 * grew the process by 240 MB until their request timeout.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

/** The body limit (app.ts BODY_LIMIT, '1mb'), in bytes. */
export const BODY_LIMIT_BYTES = 1024 * 1024;

/** Bytes of request bodies in flight at most: 64 bodies at the 1 MB limit; dashboard bodies are a few hundred bytes. */
export const BODIES_IN_FLIGHT_MAX_BYTES = 64 * 1024 * 1024;

export class BodyBudget {
  private inFlight = 0;

  constructor(private readonly maxBytes = BODIES_IN_FLIGHT_MAX_BYTES) {}

  /** Reserves `bytes`; false (nothing reserved) when the budget cannot hold them now. */
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
   * Reserves what `req`'s body may hold until the first of the response being over and the
   * request being gone (a pipelined request's response queued behind another may never emit
   * 'close' itself); false (nothing reserved) when the budget cannot hold it now.
   */
  holdFor(req: IncomingMessage, res: ServerResponse): boolean {
    const bytes = bodyBytesToReserve(req);
    if (!this.take(bytes)) {
      return false;
    }
    let held = true;
    const giveBack = () => {
      if (held) {
        held = false;
        this.give(bytes);
      }
    };
    res.once('close', giveBack);
    req.once('close', giveBack);
    return true;
  }
}

/**
 * What a request's body may hold: its declared length (over the limit it is a 413 once read),
 * the limit when it is chunked, nothing when it declares neither (then it has no body).
 */
function bodyBytesToReserve(req: IncomingMessage): number {
  if (req.headers['transfer-encoding'] !== undefined) {
    return BODY_LIMIT_BYTES;
  }
  if (req.headers['content-length'] === undefined) {
    return 0;
  }
  const declared = Number(req.headers['content-length']);
  return Number.isInteger(declared) && declared >= 0 ? Math.min(declared, BODY_LIMIT_BYTES) : BODY_LIMIT_BYTES;
}
