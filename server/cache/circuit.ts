/**
 * A circuit breaker around Redis: consecutive failures (errors, or answers slower than
 * the limit) open it, and the cache is bypassed; while open, one probe at a time is let
 * through, and a healthy probe closes it again. Nothing waits on an open circuit.
 */
export class CircuitBreaker {
  private failures = 0;
  private openedAt: number | null = null;
  private probing = false;

  constructor(
    private readonly options: {
      failureThreshold: number;
      probeIntervalMs: number;
      onChange?: (open: boolean) => void;
      now?: () => number;
    }
  ) {}

  private now(): number {
    return this.options.now ? this.options.now() : Date.now();
  }

  get isOpen(): boolean {
    return this.openedAt !== null;
  }

  /** May a cache call go ahead now? While open, only a periodic probe may. */
  allow(): boolean {
    if (this.openedAt === null) {
      return true;
    }
    if (!this.probing && this.now() - this.openedAt >= this.options.probeIntervalMs) {
      this.probing = true;
      return true;
    }
    return false;
  }

  success(): void {
    this.failures = 0;
    this.probing = false;
    if (this.openedAt !== null) {
      this.openedAt = null;
      this.options.onChange?.(false);
    }
  }

  failure(): void {
    this.failures++;
    if (this.openedAt !== null) {
      // A failed probe: wait a full interval before the next.
      this.openedAt = this.now();
      this.probing = false;
    } else if (this.failures >= this.options.failureThreshold) {
      this.openedAt = this.now();
      this.options.onChange?.(true);
    }
  }
}
