/**
 * Normalized queries, remembered per query object and coverage. A dashboard asks the same
 * questions on every refresh with ranges that move by milliseconds but cover the same whole
 * minutes, so most requests normalize to a value computed moments ago. Handing back that
 * same (frozen) object also lets what is derived from it be derived once (its cache key,
 * keys.ts).
 *
 * Keyed by the query object's identity (a validated query is shared by requests with the
 * same body, see http/request-memo.ts; nothing mutates it) and, inside, by everything else
 * normalizing reads: the covered range, whether it differs from the asked one, intervalMs
 * and maxDataPoints; the rollup catalog clears the memo when it is another one.
 */
import type { RuleperfQuery } from '../contract';
import type { RollupInfo } from './catalog';
import { coverage, normalizeCovered, widthsChangeAt, type NormalizedQuery, type RequestRange } from './normalize';
import { deepFreeze } from './frozen';

/** Coverages kept per query: the minute covered now and the one before, and a few settled ranges. */
const PER_QUERY = 4;

interface Known {
  from: number;
  to: number;
  differsFromAsked: boolean;
  inWholeHours: boolean;
  movingStepMs: number | null;
  intervalMs: number | undefined;
  maxDataPoints: number | undefined;
  /** When a rollup's retention passes the range's start, which may change its bucket width (normalize.ts widthsChangeAt). */
  until: number;
  q: NormalizedQuery;
}

export class NormalizeMemo {
  private byQuery = new WeakMap<RuleperfQuery, Known[]>();
  private catalog: readonly RollupInfo[] | null = null;

  normalize(
    request: RequestRange,
    query: RuleperfQuery,
    rollups: readonly RollupInfo[],
    now = Date.now(),
    rawKeptFrom: number | null = null
  ): NormalizedQuery {
    if (rollups !== this.catalog) {
      this.byQuery = new WeakMap();
      this.catalog = rollups;
    }
    const c = coverage(request, now, rawKeptFrom);
    let known = this.byQuery.get(query);
    if (known) {
      // A handful of entries per query: compared field by field, no key to build.
      for (const k of known) {
        if (
          k.from === c.range.from &&
          k.to === c.range.to &&
          k.differsFromAsked === c.differsFromAsked &&
          k.inWholeHours === c.inWholeHours &&
          k.movingStepMs === c.movingStepMs &&
          k.intervalMs === c.intervalMs &&
          k.maxDataPoints === c.maxDataPoints &&
          now < k.until
        ) {
          return k.q;
        }
      }
    } else {
      this.byQuery.set(query, (known = []));
    }
    const q = deepFreeze(normalizeCovered(query, c, rollups, now));
    known.push({
      from: c.range.from,
      to: c.range.to,
      differsFromAsked: c.differsFromAsked,
      inWholeHours: c.inWholeHours,
      movingStepMs: c.movingStepMs,
      intervalMs: c.intervalMs,
      maxDataPoints: c.maxDataPoints,
      until: widthsChangeAt(rollups, c.range.from, now),
      q,
    });
    if (known.length > PER_QUERY) {
      known.shift();
    }
    return q;
  }
}
