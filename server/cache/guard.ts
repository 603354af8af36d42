/**
 * Every Redis call of the cache goes through here: the circuit breaker (Redis erring or slow
 * → bypassed, never fatal) and the error counter. A connection that only times out is
 * replaced: one gone silent (its peer lost without FIN or RST, a dropped NAT or conntrack
 * entry) fails every command by timeout and would be kept for hours, until TCP keepalive gives
 * up, leaving every dashboard query on the database although Redis is reachable again.
 */
import type { Metrics } from '../observability/metrics';
import { CircuitBreaker } from './circuit';

/** A connection timing out with the circuit open is replaced at most this often (a slow but live Redis too: harmless). */
export const RECONNECT_EVERY_MS = 5000;

export class RedisGuard {
  readonly circuit: CircuitBreaker;
  private lastReconnect = 0;

  constructor(
    private readonly metrics: Metrics,
    private readonly onError: (err: Error) => void,
    /** Drops the connection and opens a new one. */
    private readonly reconnect: () => void = () => undefined
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
    if (
      this.circuit.isOpen &&
      /timed out/i.test(err.message) &&
      Date.now() - this.lastReconnect >= RECONNECT_EVERY_MS
    ) {
      this.lastReconnect = Date.now();
      this.reconnect();
    }
  }

  state(): 'up' | 'degraded' {
    return this.circuit.isOpen ? 'degraded' : 'up';
  }
}
