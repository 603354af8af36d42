/**
 * Counts taken on the hot path as plain numbers and added to their prom-client counter when
 * it is collected (every scrape and every get()). prom-client hashes and checks the labels
 * on every inc(), and a cached answer counts several things, so that was a noticeable part
 * of its CPU; collection adds exactly what was counted, so the exposed values are the same.
 */
import type { Counter } from 'prom-client';

export interface Tally {
  inc(): void;
}

export class Tallies<L extends string> {
  private readonly slots = new Map<string, { labels: Partial<Record<L, string>>; n: number; tally: Tally }>();

  constructor(private readonly counter: Counter<L>) {}

  /** The tally for these labels; `key` must identify them (keep the tally where the labels are fixed). */
  of(key: string, labels: Partial<Record<L, string>>): Tally {
    let slot = this.slots.get(key);
    if (!slot) {
      const s = { labels, n: 0, tally: { inc: () => void s.n++ } };
      this.slots.set(key, (slot = s));
    }
    return slot.tally;
  }

  /** Adds what was counted since the last flush to the counter (its `collect` calls this). */
  flush(): void {
    for (const slot of this.slots.values()) {
      if (slot.n === 0) {
        continue;
      }
      const n = slot.n;
      slot.n = 0;
      this.counter.inc(slot.labels, n);
    }
  }
}
