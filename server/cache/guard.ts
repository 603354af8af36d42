/**
 * Every Redis call of the cache goes through here: the circuit breaker (Redis erring or slow
 * → bypassed, never fatal) and the error counter.
 */
import type { Metrics } from '../observability/metrics';
import { CircuitBreaker } from './circuit';

export class RedisGuard {
  readonly circuit: CircuitBreaker;

  constructor(
    private readonly metrics: Metrics,
    private readonly onError: (err: Error) => void
  ) {
    this.circuit = new CircuitBreaker({
      failureThreshold: 2,
      probeIntervalMs: 500,
      onChange: (open) => metrics.circuitOpen.set(open ? 1 : 0),
    });
  }

  /** Runs a Redis call through the circuit; undefined when bypassed or failed. */
  async run<T>(op: string, call: () => Promise<T>): Promise<T | undefined> {
    if (!this.circuit.allow()) {
      return undefined;
    }
    try {
      const result = await call();
      this.circuit.success();
      return result;
    } catch (err) {
      this.failed(op, err as Error);
      return undefined;
    }
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
