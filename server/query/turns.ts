/**
 * Uncached work one step per event-loop turn, so that cached answers never wait behind a burst.
 *
 * A burst of distinct uncached requests arrives in a few poll phases, and their Redis replies
 * come back in one read: without this, each batch's continuations (build the key, look up,
 * refuse or start a statement, write the answer) run back to back as one long task, and a
 * cached request that arrived meanwhile waits for all of them (a CPU profile of 300 requests
 * showed the loop held 20–70 ms at a time, on two cores shared with PostgreSQL). Here each
 * such step first waits for its turn: one waiter is let go per turn of the event loop (a
 * `setImmediate` chain; an immediate scheduled from an immediate runs on the next turn), so
 * between two steps the loop polls for I/O and answers what is held in this process at once. Lookups (which may find a cached answer) go before misses (which will
 * query or be refused), three turns in four when both wait. When nothing waits, a step costs
 * one extra turn (microseconds).
 */
export type Lane = 'lookup' | 'miss';

/** At least one turn in this many goes to a miss when one waits. */
export const MISS_EVERY = 4;

/**
 * Lookups let go in one turn, when that many wait: about a millisecond of the loop. A lookup's
 * step is short (a key, a near-cache check or a Redis call sent), and one a turn was a queue: a
 * flood's first pipelined requests (60 connections) queued about a thousand, and a cached answer
 * behind them waited 3-5.5 s (0.4 s now).
 */
export const LOOKUPS_PER_TURN = 32;

export class LoopTurns {
  private readonly waiting: Record<Lane, Array<() => void>> = { lookup: [], miss: [] };
  /** Each waiting lookup's weight (lookups of one turn weigh LOOKUPS_PER_TURN at most, the first whatever its weight). */
  private readonly weights: number[] = [];
  private readonly heads: Record<Lane, number> = { lookup: 0, miss: 0 };
  private scheduled = false;
  private released = 0;

  /**
   * Resolves on a later turn of the event loop, after the steps that asked before it in its lane.
   * A lookup's `weight` is its work in ordinary lookups (a request of many queries, long filter
   * lists, a large body): 32 lookups of a request of 19 queries, each with 500 filter values,
   * held the loop 0.4-1.8 s in one turn.
   */
  next(lane: Lane, weight = 1): Promise<void> {
    return new Promise((resolve) => {
      this.waiting[lane].push(resolve);
      if (lane === 'lookup') {
        this.weights.push(weight);
      }
      this.schedule();
    });
  }

  /** Steps waiting for a turn. */
  get depth(): number {
    return this.size('lookup') + this.size('miss');
  }

  private size(lane: Lane): number {
    return this.waiting[lane].length - this.heads[lane];
  }

  private schedule(): void {
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.release);
    }
  }

  /** Lets a miss or up to LOOKUPS_PER_TURN lookups go; their continuations run right after this callback (microtasks), then the loop polls. */
  private readonly release = (): void => {
    this.scheduled = false;
    // Lookups first (they may find an answer), but every MISS_EVERY-th turn goes to a waiting
    // miss, so a steady stream of lookups cannot starve the misses.
    this.released++;
    const missDue = this.released % MISS_EVERY === 0 && this.size('miss') > 0;
    const lane: Lane = this.size('lookup') > 0 && !missDue ? 'lookup' : 'miss';
    if (this.size(lane) === 0) {
      return;
    }
    const queue = this.waiting[lane];
    for (let n = lane === 'lookup' ? LOOKUPS_PER_TURN : 1; n > 0 && this.size(lane) > 0;) {
      const at = this.heads[lane]++;
      const resolve = queue[at];
      if (lane === 'lookup') {
        n -= this.weights[at];
        // The next one goes in a later turn when it would pass the turn's share.
        if (this.size(lane) > 0 && this.weights[at + 1] > n) {
          n = 0;
        }
      } else {
        n--;
      }
      if (this.heads[lane] === queue.length) {
        // Drained: start over instead of shifting (shift is O(n) per call on long queues).
        queue.length = 0;
        this.heads[lane] = 0;
        if (lane === 'lookup') {
          this.weights.length = 0;
        }
      }
      resolve();
    }
    if (this.depth > 0) {
      this.schedule();
    }
  };
}

/** The process's turns: there is one event loop. */
export const loopTurns = new LoopTurns();

/** Values a large answer's work (frames, JSON) handles between two loop turns: a millisecond or two of it. */
export const VALUES_PER_TURN = 20_000;

/**
 * `f` of each item, in order, taking a loop turn (miss lane) each time the results since the
 * last one reach VALUES_PER_TURN values: one large answer's frames or JSON (tens of ms for a
 * few MB) never hold the loop longer than a slice, and answers finishing together interleave
 * with the cached requests and health checks arriving meanwhile. Items may be a generator
 * that does its work as it is iterated.
 */
export async function mapInTurns<T, R>(
  items: Iterable<T>,
  f: (item: T) => R,
  values: (item: T, result: R) => number
): Promise<R[]> {
  const results: R[] = [];
  let since = 0;
  for (const item of items) {
    const result = f(item);
    results.push(result);
    since += values(item, result);
    if (since >= VALUES_PER_TURN) {
      since = 0;
      await loopTurns.next('miss');
    }
  }
  return results;
}
