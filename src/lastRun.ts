/** What the query editor's "last run" line says about an answer, from the service's frame meta. */
import { dateTimeFormat } from '@grafana/data';

import type { RuleperfFrameMeta } from './contract';
import { CACHE_LABELS, tierLabel } from './labels';

interface Range {
  from: number;
  to: number;
}

/**
 * The service's `meta.custom`. `coveredRange` is the range the answer covers; older
 * services send only `alignedRange` (the range widened to whole buckets), read the same way.
 */
export type LastRunMeta = Omit<RuleperfFrameMeta, 'coveredRange' | 'computedAt'> & {
  coveredRange?: Range;
  computedAt?: number;
  alignedRange?: Range;
};

/**
 * The service answers a settled range exactly and a range ending now to whole minutes (finer under an hour); like
 * the service's own notice, the line says so whenever the covered range is off at all (rows in
 * a shifted millisecond change a count).
 */
export const COVERAGE_TOLERANCE_MS = 0;

interface FrameLike {
  refId?: string;
  meta?: { custom?: Record<string, unknown> };
}

/** The meta of this query's first frame that carries the service's custom meta. */
export function lastRunMeta(series: FrameLike[] | undefined, refId: string): LastRunMeta | undefined {
  const frame = series?.find((f) => f.refId === refId && f.meta?.custom && 'tiers' in f.meta.custom);
  return frame?.meta?.custom as LastRunMeta | undefined;
}

/** The range the answer covers when it differs from the panel's (by more than the tolerance). */
export function coverageDifference(meta: LastRunMeta, panel: Range | undefined): Range | undefined {
  const covered = meta.coveredRange ?? meta.alignedRange;
  if (!covered || !panel) {
    return undefined;
  }
  const off = Math.max(Math.abs(covered.from - panel.from), Math.abs(covered.to - panel.to));
  return off > COVERAGE_TOLERANCE_MS ? covered : undefined;
}

/**
 * "Answered from the hourly rollup + raw rows (live edge) · cache hit · rollups complete up
 * to … · covers … to …, the panel asked for … to …" (the last part only when they differ).
 */
export function describeLastRun(meta: LastRunMeta, panel?: Range, timeZone?: string): string {
  const when = (ms: number) => dateTimeFormat(ms, { timeZone });
  const tiers = (meta.tiers ?? []).map(tierLabel);
  const parts = [
    tiers.length ? `Answered from the ${tiers.join(' + ')}` : 'Answered',
    CACHE_LABELS[meta.cache] ?? `cache ${meta.cache}`,
  ];
  if (typeof meta.watermark === 'number') {
    parts.push(`rollups complete up to ${when(meta.watermark)}`);
  }
  const covered = coverageDifference(meta, panel);
  if (covered && panel) {
    parts.push(
      `covers ${when(covered.from)} to ${when(covered.to)}, the panel asked for ${when(panel.from)} to ${when(panel.to)}`
    );
  }
  return parts.join(' · ');
}
