/**
 * Every Redis call of the cache goes through here: the circuit breaker (Redis erring or slow
 * → bypassed, never fatal), the error counter, and the work that must happen before Redis is
 * trusted again (invalidations queued while it was away).
 */
import type { Metrics } from '../observability/metrics';
import { CircuitBreaker } from './circuit';

export class RedisGuard {
  readonly circuit: CircuitBreaker;
  private beforeUse: Array<() => Promise<void>> = [];
  private draining: Promise<void> | null = null;

  constructor(
    private readonly metrics: Metrics,
    private readonly onError: (err: Error) => void
  ) {
    this.circuit = new CircuitBreaker({ failureThreshold: 2, probeIntervalMs: 500, onChange: (open) => metrics.circuitOpen.set(open ? 1 : 0) });
  }

  /** Runs before the next call that reaches Redis (until it succeeds). */
  whenReachable(task: () => Promise<void>): void {
    this.beforeUse.push(task);
  }

  /** Runs a Redis call through the circuit; undefined when bypassed or failed. */
  async run<T>(op: string, call: () => Promise<T>): Promise<T | undefined> {
    if (!this.circuit.allow()) return undefined;
    try {
      if (this.beforeUse.length) await this.drain();
      const result = await call();
      this.circuit.success();
      return result;
    } catch (err) {
      this.failed(op, err as Error);
      return undefined;
    }
  }

  /** Runs the queued tasks once, in order, however many calls are waiting on them. */
  private drain(): Promise<void> {
    this.draining ??= (async () => {
      while (this.beforeUse.length) {
        await this.beforeUse[0]();
        this.beforeUse.shift();
      }
    })().finally(() => (this.draining = null));
    return this.draining;
  }

  failed(op: string, err: Error): void {
    this.metrics.cacheErrors.inc({ op });
    this.circuit.failure();
    this.onError(err);
  }

  state(): 'up' | 'degraded' {
    return this.circuit.isOpen ? 'degraded' : 'up';
  }
}
