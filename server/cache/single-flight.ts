/**
 * In-process single flight: concurrent callers of one key share one computation. The
 * computation is told (its signal aborts) once every caller that joined it has gone — each
 * gave an `asker` signal and each of those aborted; a caller without one (warming, a stale
 * entry's refresh) keeps it wanted to the end. A caller arriving after that starts afresh.
 */
export class SingleFlight<T> {
  private readonly inflight = new Map<string, Flight<T>>();

  run(
    key: string,
    compute: (abandoned: AbortSignal) => Promise<T>,
    asker?: AbortSignal
  ): { promise: Promise<T>; joined: boolean } {
    const existing = this.inflight.get(key);
    if (existing && !existing.abandoned.signal.aborted) {
      existing.join(asker);
      return { promise: existing.promise, joined: true };
    }
    const flight = new Flight<T>();
    flight.join(asker);
    flight.promise = compute(flight.abandoned.signal).finally(() => {
      flight.settled();
      if (this.inflight.get(key) === flight) {
        this.inflight.delete(key);
      }
    });
    this.inflight.set(key, flight);
    return { promise: flight.promise, joined: false };
  }
}

class Flight<T> {
  promise!: Promise<T>;
  readonly abandoned = new AbortController();
  /** Callers still waiting with a signal; Infinity once one joined without (always wanted). */
  private askers = 0;
  /** What was added to the askers' signals, taken off when the flight is over (a signal may outlive it). */
  private readonly listening: Array<{ asker: AbortSignal; left: () => void }> = [];

  join(asker?: AbortSignal): void {
    if (!asker) {
      this.askers = Infinity;
      return;
    }
    if (asker.aborted) {
      // Gone already: wanted by nobody new (the flight may still be wanted by others).
      if (this.askers === 0) {
        this.abandoned.abort();
      }
      return;
    }
    this.askers++;
    const left = () => {
      if (--this.askers === 0) {
        this.abandoned.abort();
      }
    };
    asker.addEventListener('abort', left, { once: true });
    this.listening.push({ asker, left });
  }

  settled(): void {
    for (const { asker, left } of this.listening) {
      asker.removeEventListener('abort', left);
    }
    this.listening.length = 0;
  }
}
