/**
 * Admission control for database work: at most `concurrency` statements run at once (the
 * read pool's size), the rest wait in a bounded queue, user queries ahead of background work
 * (warming). A statement that cannot start within `maxWaitMs`, or finds the queue full, is
 * refused with `Busy` — answered as 503 "busy" with Retry-After, never as "the database is
 * unavailable", which is kept for a database that really cannot be reached. Cached answers
 * never come here.
 */
export class Busy extends Error {
  constructor(
    readonly retryAfterSeconds: number,
    reason: string
  ) {
    super(`the service is busy (${reason}); retry in ${retryAfterSeconds} s`);
  }
}

export type Priority = 'user' | 'background';

interface Waiter {
  start: () => void;
  fail: (err: Error) => void;
}

export interface AdmissionOptions {
  concurrency: number;
  maxQueue: number;
  maxWaitMs: number;
}

export class Admission {
  private running = 0;
  private readonly queues: Record<Priority, Waiter[]> = { user: [], background: [] };

  constructor(private readonly o: AdmissionOptions) {}

  get waiting(): number {
    return this.queues.user.length + this.queues.background.length;
  }

  get active(): number {
    return this.running;
  }

  async run<T>(work: () => Promise<T>, priority: Priority = 'user'): Promise<T> {
    if (this.running >= this.o.concurrency || this.waiting > 0) {
      await this.wait(priority);
    } else {
      this.running++;
    }
    try {
      return await work();
    } finally {
      this.release();
    }
  }

  private wait(priority: Priority): Promise<void> {
    if (this.waiting >= this.o.maxQueue) {
      return Promise.reject(new Busy(1, `${this.waiting} database queries already waiting`));
    }
    return new Promise<void>((resolve, reject) => {
      const queue = this.queues[priority];
      const waiter: Waiter = {
        start: () => {
          clearTimeout(timer);
          resolve();
        },
        fail: reject,
      };
      const timer = setTimeout(() => {
        const i = queue.indexOf(waiter);
        if (i >= 0) {
          queue.splice(i, 1);
        }
        reject(
          new Busy(
            Math.max(1, Math.ceil(this.o.maxWaitMs / 1000)),
            `no database connection free within ${this.o.maxWaitMs} ms`
          )
        );
      }, this.o.maxWaitMs);
      queue.push(waiter);
    });
  }

  /** Hands the slot to the next waiter (user queries first), or frees it. */
  private release(): void {
    const next = this.queues.user.shift() ?? this.queues.background.shift();
    if (next) {
      next.start();
    } else {
      this.running--;
    }
  }
}
