/**
 * Admission control for database work: at most `concurrency` pieces of work hold a slot at
 * once (the read pool's size), the rest wait in a bounded queue, user queries ahead of
 * background work (warming). Work that cannot start within `maxWaitMs`, or finds the queue
 * full, is refused with `Busy` — answered as 503 "busy" with Retry-After, never as "the
 * database is unavailable", which is kept for a database that really cannot be reached.
 * Cached answers never come here.
 *
 * One slot carries a whole uncached answer (its state read and its statements), so an
 * answer under way never queues again behind the rest of a burst; a statement it could run
 * beside the one on its slot takes a second slot only if one is free at that moment
 * (`tryRun`) — holding a slot while waiting for another could deadlock.
 *
 * Work whose expected wait (its place in the queue × the recent time a slot is held ÷
 * `concurrency`) is far past `maxWaitMs` is refused on arrival rather than after waiting out
 * the limit: the user learns at once, and a burst's refusals are spread over its arrival
 * instead of all falling due together `maxWaitMs` later.
 */
export class Busy extends Error {
  constructor(
    readonly retryAfterSeconds: number,
    reason: string
  ) {
    super(`the service is busy (${reason}); retry in ${retryAfterSeconds} s`);
  }
}

/**
 * Work whose every asker has gone (the client closed its connection: Grafana cancels a panel's
 * request when the range changes) before it reached a slot: dropped from the queue rather than
 * run for nobody in front of the questions still wanted.
 */
export class Abandoned extends Error {
  constructor() {
    super('the client closed its connection before its query reached the database');
  }
}

export type Priority = 'user' | 'background';

interface Waiter {
  start: () => void;
}

export interface AdmissionOptions {
  concurrency: number;
  maxQueue: number;
  maxWaitMs: number;
  /** What a busy answer adds about the database (the embedded one serves one statement at a time). */
  busyHint?: string;
  /** The clock slot times are read from (tests pass their own). */
  now?: () => number;
}

/**
 * Work is refused on arrival only when its expected wait is this many times the limit: the
 * estimate comes from recent answers, which need not be like the ones queued now, so the
 * border cases wait and see (the limit still holds for them).
 */
const REFUSE_AT_ONCE_ABOVE = 2;

/** How many recent user slot times the expected wait is estimated from. */
const RECENT = 32;

/**
 * The mean time recent user work held a slot, its slowest tenth left out: the mean is what a
 * queue drains at, and one runaway statement should not make a burst be refused.
 */
class RecentHolds {
  private readonly ring: number[] = [];
  private next = 0;
  private estimate: number | null = null;

  add(ms: number): void {
    this.ring[this.next] = ms;
    this.next = (this.next + 1) % RECENT;
    this.estimate = null;
  }

  /** Null until enough work has run to say anything. */
  typical(): number | null {
    if (this.ring.length < 4) {
      return null;
    }
    if (this.estimate === null) {
      const kept = [...this.ring].sort((a, b) => a - b).slice(0, this.ring.length - Math.ceil(this.ring.length / 10));
      this.estimate = kept.reduce((sum, ms) => sum + ms, 0) / kept.length;
    }
    return this.estimate;
  }
}

export class Admission {
  private running = 0;
  private readonly queues: Record<Priority, Waiter[]> = { user: [], background: [] };
  private readonly recent = new RecentHolds();
  private readonly now: () => number;

  constructor(private readonly o: AdmissionOptions) {
    this.now = o.now ?? (() => performance.now());
  }

  get waiting(): number {
    return this.queues.user.length + this.queues.background.length;
  }

  get active(): number {
    return this.running;
  }

  /** A slot is free and nobody waits for one: work may start at once. */
  private get startsAtOnce(): boolean {
    return this.running < this.o.concurrency && this.waiting === 0;
  }

  /**
   * Runs `work` on a slot, waiting for one in its priority's queue; given up (`Abandoned`) when
   * `abandoned` aborts before it starts. Work that started runs on (its answer is cached).
   */
  async run<T>(work: () => Promise<T>, priority: Priority = 'user', abandoned?: AbortSignal): Promise<T> {
    if (abandoned?.aborted) {
      throw new Abandoned();
    }
    if (this.startsAtOnce) {
      this.running++;
    } else {
      await this.wait(priority, abandoned);
    }
    const started = this.now();
    try {
      return await work();
    } finally {
      if (priority === 'user') {
        this.recent.add(this.now() - started);
      }
      this.release();
    }
  }

  /** Runs `work` on a slot free at this moment, or returns null (nothing waits, nothing is refused). */
  tryRun<T>(work: () => Promise<T>): Promise<T> | null {
    if (!this.startsAtOnce) {
      return null;
    }
    this.running++;
    return work().finally(() => this.release());
  }

  /** How long new work joining the queue now is expected to wait, or null while that is unknown. */
  expectedWaitMs(priority: Priority = 'user'): number | null {
    const typical = this.recent.typical();
    if (typical === null) {
      return null;
    }
    // User work goes before background work, so only that is ahead of user work.
    const ahead = priority === 'user' ? this.queues.user.length : this.waiting;
    return ((ahead + 1) * typical) / this.o.concurrency;
  }

  /**
   * Why work of this priority arriving now would be refused at once (a full queue, or an
   * expected wait far past the limit), or null when it would run or wait its turn.
   */
  refusal(priority: Priority = 'user'): Busy | null {
    if (this.startsAtOnce) {
      return null;
    }
    if (this.waiting >= this.o.maxQueue) {
      return new Busy(1, this.why(`${this.waiting} database queries already waiting`));
    }
    const expected = this.expectedWaitMs(priority);
    if (expected !== null && expected > REFUSE_AT_ONCE_ABOVE * this.o.maxWaitMs) {
      return new Busy(
        // The expected wait, within reason: the queue may drain faster than its recent past.
        Math.min(60, Math.max(1, Math.ceil(expected / 1000))),
        this.why(
          `${this.waiting} database queries waiting, about ${Math.round(expected)} ms ahead; a query may wait ${this.o.maxWaitMs} ms`
        )
      );
    }
    return null;
  }

  private why(reason: string): string {
    return this.o.busyHint ? `${reason}: ${this.o.busyHint}` : reason;
  }

  private wait(priority: Priority, abandoned?: AbortSignal): Promise<void> {
    const refused = this.refusal(priority);
    if (refused) {
      return Promise.reject(refused);
    }
    return new Promise<void>((resolve, reject) => {
      const queue = this.queues[priority];
      const leave = (err: Error) => {
        clearTimeout(timer);
        abandoned?.removeEventListener('abort', onAbandoned);
        const i = queue.indexOf(waiter);
        if (i >= 0) {
          queue.splice(i, 1);
        }
        reject(err);
      };
      const onAbandoned = () => leave(new Abandoned());
      const waiter: Waiter = {
        start: () => {
          clearTimeout(timer);
          abandoned?.removeEventListener('abort', onAbandoned);
          resolve();
        },
      };
      const timer = setTimeout(
        () =>
          leave(
            new Busy(
              Math.max(1, Math.ceil(this.o.maxWaitMs / 1000)),
              this.why(`no database connection free within ${this.o.maxWaitMs} ms`)
            )
          ),
        this.o.maxWaitMs
      );
      abandoned?.addEventListener('abort', onAbandoned, { once: true });
      queue.push(waiter);
    });
  }

  /** Hands the slot to the next waiter (user work first), or frees it. */
  private release(): void {
    const next = this.queues.user.shift() ?? this.queues.background.shift();
    if (next) {
      next.start();
    } else {
      this.running--;
    }
  }
}
