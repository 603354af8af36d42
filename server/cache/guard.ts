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

/**
 * `call`'s answer, or a "timed out" error when Redis has not answered within `ms` of the command
 * being written. Counted from when it is written, not issued: ioredis writes pipelined commands
 * at the end of the turn they are issued in, which a busy handler may hold for longer than `ms`.
 * Judged when the loop next reads its sockets, not when the timer fires: timers run before the
 * loop polls, so a loop busy for longer than `ms` (a flood of cheap requests, a large answer
 * encoded) would otherwise time out replies that arrived in time, and open the circuit on a
 * healthy Redis.
 */
export function answeredWithin<T>(call: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const written = setImmediate(() => {
      timer = setTimeout(
        () =>
          setImmediate(() => {
            if (!settled) {
              settled = true;
              reject(new Error(`Command timed out: Redis gave no answer within ${ms} ms`));
            }
          }),
        ms
      );
    });
    const settle = () => {
      settled = true;
      clearImmediate(written);
      clearTimeout(timer);
    };
    call.then(
      (value) => {
        if (!settled) {
          settle();
          resolve(value);
        }
      },
      (err: unknown) => {
        if (!settled) {
          settle();
          reject(err);
        }
      }
    );
  });
}

export interface GuardOptions {
  onError?: (err: Error) => void;
  /** Drops the connection and opens a new one. */
  reconnect?: () => void;
  /** A round trip without side effects (PING): the probe while the circuit is open. */
  ping?: () => Promise<unknown>;
  /** An answer later than this counts as a failure (CACHE_SLOW_MS). */
  slowMs?: number;
}

export class RedisGuard {
  readonly circuit: CircuitBreaker;
  readonly slowMs: number;
  private lastReconnect = 0;

  constructor(
    private readonly metrics: Metrics,
    private readonly options: GuardOptions = {}
  ) {
    this.slowMs = options.slowMs ?? 100;
    this.circuit = new CircuitBreaker({
      failureThreshold: 2,
      probeIntervalMs: 500,
      onChange: (open) => metrics.circuitOpen.set(open ? 1 : 0),
    });
  }

  /**
   * Runs a Redis call through the circuit; undefined when bypassed or failed. While the circuit is
   * open, the periodic probe is a PING in the background, and the request that let it through is
   * bypassed at once: it does not wait CACHE_SLOW_MS on a Redis that was failing, and a call
   * with side effects (a lock) is not made on its behalf only to be ignored.
   */
  async run<T>(op: string, call: () => Promise<T>): Promise<T | undefined> {
    if (!this.circuit.allow()) {
      return undefined;
    }
    const ping = this.options.ping;
    if (this.circuit.isOpen && ping) {
      void this.judged('probe', ping);
      return undefined;
    }
    return this.judged(op, call);
  }

  private async judged<T>(op: string, call: () => Promise<T>): Promise<T | undefined> {
    try {
      const result = await answeredWithin(call(), this.slowMs);
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
    this.options.onError?.(err);
    if (
      this.circuit.isOpen &&
      /timed out/i.test(err.message) &&
      Date.now() - this.lastReconnect >= RECONNECT_EVERY_MS
    ) {
      this.lastReconnect = Date.now();
      this.options.reconnect?.();
    }
  }

  state(): 'up' | 'degraded' {
    return this.circuit.isOpen ? 'degraded' : 'up';
  }
}
