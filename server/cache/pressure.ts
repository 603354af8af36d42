/**
 * Settled answers (ranges that have ended) are kept for hours, so one client asking many
 * distinct past ranges writes an entry each: 197 KB per 5-day grouped timeseries, 15 MB of
 * Redis in 20 s from 4 connections. In a Redis that evicts, those one-off entries push out the
 * dashboards' hot ones; in one that does not, writes start failing and the circuit opens.
 * While Redis is nearly full, an answer (of a range ending now too: a stream of distinct spans
 * ending now did the same) is therefore stored only when it is asked a
 * second time, by any instance (a doorkeeper, as in TinyLFU; the first ask leaves a marker of
 * about 100 bytes in Redis for ASKED_MS): a dashboard asking again is cached on its next
 * refresh, a stream of one-off ranges is not. With room to spare, every answer is stored at
 * once, as before.
 */
import type { RedisInfo } from './redis';

/** Past this share of maxmemory, Redis counts as nearly full. */
export const NEARLY_FULL = 0.8;

/** How long an answer asked once while Redis is nearly full is remembered (its marker's life). */
export const ASKED_MS = 10 * 60_000;

/** Whether Redis is nearly full, from an INFO read at most every `everyMs`, in the background (the caller never waits). */
export class MemoryPressure {
  private high = false;
  private readAt = -Infinity;
  private reading = false;

  constructor(
    private readonly read: () => Promise<RedisInfo | null>,
    private readonly everyMs = 1000
  ) {
    // Known before the first answer is stored.
    this.nearlyFull();
  }

  /** As last read (false until a read says otherwise, and when Redis has no maxmemory: nothing to compare with). */
  nearlyFull(): boolean {
    if (!this.reading && performance.now() - this.readAt > this.everyMs) {
      this.reading = true;
      this.readAt = performance.now();
      this.read().then(
        (info) => {
          this.high = !!info && info.maxMemory > 0 && info.usedMemory > NEARLY_FULL * info.maxMemory;
          this.reading = false;
        },
        () => {
          this.reading = false;
        }
      );
    }
    return this.high;
  }
}
