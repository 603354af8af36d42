/**
 * Request bodies held in memory at once, across connections. Each request with a body reserves
 * its declared length (the body limit when it declares none) before a byte of it is read, and
 * gives it back when its response is over; a request the budget cannot hold is answered 503
 * busy at once. Without it, 250 connections each sending 1 MB less a byte and then waiting
 * grew the process by 240 MB until their request timeout.
 */

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
}
