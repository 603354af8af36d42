/** At most one action per interval on this instance (used for "invalidate all"). */
export type Slot = { ok: true; release(): void } | { ok: false; retryAfterSeconds: number };

export class IntervalLimiter {
  private nextAllowed = 0;

  constructor(
    private readonly intervalMs: number,
    private readonly now: () => number = Date.now
  ) {}

  /**
   * Takes the slot when the interval since the last taken one has passed; otherwise says
   * how long to wait. `release` gives the slot back (the action was not applied after all).
   */
  take(): Slot {
    if (this.intervalMs <= 0) {
      return { ok: true, release: () => undefined };
    }
    const t = this.now();
    if (t < this.nextAllowed) {
      return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil((this.nextAllowed - t) / 1000)) };
    }
    const previous = this.nextAllowed;
    const mine = t + this.intervalMs;
    this.nextAllowed = mine;
    return {
      ok: true,
      release: () => {
        if (this.nextAllowed === mine) {
          this.nextAllowed = previous;
        }
      },
    };
  }
}
