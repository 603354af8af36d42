/**
 * The consistency auditor ("compare cached vs fresh data periodically"):
 * every few minutes it takes a small sample of the settled answers recently served from the
 * cache, computes each again from the database without the cache, and compares the frames'
 * values. A mismatch is checked once more (a change just committed may not have reached the
 * change feed yet); if it persists, the entry is dropped, counted and logged with its key and
 * both answers. Answers that read the live edge are not audited: rows still arrive under them.
 */
import { isDeepStrictEqual } from 'node:util';
import type { Logger } from 'pino';
import type { DataFrameJSON } from '../contract';
import type { Answer } from '../query/executor';
import type { NormalizedQuery } from '../query/normalize';
import type { Metrics } from '../observability/metrics';

export interface AuditTarget {
  /** The entry currently under this query's key, if any. */
  lookup(q: NormalizedQuery): Promise<{ key: string; answer: Answer } | null>;
  /** The answer computed from the database, without the cache. */
  recompute(q: NormalizedQuery): Promise<Answer>;
  drop(key: string): Promise<void>;
}

export interface AuditOptions {
  sampleSize: number;
  /** Waited before a mismatch is confirmed (longer than the change feed's poll interval). */
  confirmAfterMs: number;
}

/** Frames' values equal: numbers to 1e-9 relative (sums may be added in another order), everything else exactly. */
export function sameValues(a: DataFrameJSON[], b: DataFrameJSON[]): boolean {
  if (a.length !== b.length) {
    return false;
  }
  return a.every((fa, i) => {
    const va = fa.data.values;
    const vb = b[i].data.values;
    if (fa.schema.name !== b[i].schema.name || va.length !== vb.length) {
      return false;
    }
    return va.every((col, j) => col.length === vb[j].length && col.every((x, k) => close(x, vb[j][k])));
  });
}

function close(x: unknown, y: unknown): boolean {
  if (typeof x === 'number' && typeof y === 'number') {
    return x === y || Math.abs(x - y) <= 1e-9 * Math.max(Math.abs(x), Math.abs(y));
  }
  return isDeepStrictEqual(x, y);
}

/** An answer's values for the log, cut to a readable size. */
function shown(frames: DataFrameJSON[]): string {
  const text = JSON.stringify(frames.map((f) => f.data.values));
  return text.length > 4000 ? `${text.slice(0, 4000)}… (${text.length} characters)` : text;
}

export class CacheAuditor {
  /** Recently hit settled queries, by key (most recent last). */
  private readonly recent = new Map<string, NormalizedQuery>();

  constructor(
    private readonly target: AuditTarget,
    private readonly metrics: Metrics,
    private readonly logger: Logger,
    private readonly o: AuditOptions
  ) {}

  /** Remembers a settled answer served from the cache (bounded: the last 100 keys). */
  record(q: NormalizedQuery, key: string): void {
    this.recent.delete(key);
    this.recent.set(key, q);
    if (this.recent.size > 100) {
      this.recent.delete(this.recent.keys().next().value!);
    }
  }

  /** Audits a random sample of the recently served answers. */
  async runOnce(): Promise<{ checked: number; mismatches: number }> {
    const sample = [...this.recent.values()].sort(() => Math.random() - 0.5).slice(0, this.o.sampleSize);
    let checked = 0;
    let mismatches = 0;
    for (const q of sample) {
      const result = await this.check(q);
      if (result === 'skipped') {
        continue;
      }
      checked++;
      if (result === 'mismatch') {
        mismatches++;
      }
    }
    return { checked, mismatches };
  }

  private async check(q: NormalizedQuery): Promise<'ok' | 'mismatch' | 'skipped'> {
    const cached = await this.target.lookup(q);
    if (!cached || cached.answer.touchesLiveEdge) {
      return 'skipped';
    }
    let fresh = await this.target.recompute(q);
    this.metrics.auditChecks.inc();
    if (sameValues(cached.answer.frames, fresh.frames)) {
      return 'ok';
    }
    await new Promise((r) => setTimeout(r, this.o.confirmAfterMs));
    const again = await this.target.lookup(q);
    if (!again || again.key !== cached.key) {
      return 'ok';
    } // superseded meanwhile (a change reached the feed)
    fresh = await this.target.recompute(q);
    if (sameValues(again.answer.frames, fresh.frames)) {
      return 'ok';
    }
    this.metrics.auditMismatches.inc();
    await this.target.drop(again.key);
    this.logger.error(
      { key: again.key, cached: shown(again.answer.frames), fresh: shown(fresh.frames) },
      'cache audit: a cached answer differs from the database; the entry was dropped'
    );
    return 'mismatch';
  }
}
