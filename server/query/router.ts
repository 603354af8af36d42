/**
 * Chooses where a query is answered from (the aggregate navigator): the bucket width
 * by granularity and span, then the smallest rollup of that width holding every
 * dimension the query filters or groups by, then the finer rollup that fills the stretch
 * between the coarse rollup's watermark and the fine one's. Raw rows cover the rest.
 */
import type { Granularity, QueryKind } from '../contract';
import { DAY_MS, HOUR_MS, type RollupInfo } from './catalog';

export interface Route {
  /** The rollup answering most of the range. */
  primary: RollupInfo;
  /** A finer rollup with the same dimensions for the stretch after the primary's watermark. */
  finer: RollupInfo | null;
  /** Width of the answer's buckets (timeseries points), a multiple of the primary's. */
  bucketMs: number;
  alignedFrom: number;
  alignedTo: number;
}

export interface RouteInput {
  kind: QueryKind;
  granularity: Granularity;
  from: number;
  to: number;
  intervalMs?: number;
  maxDataPoints?: number;
  neededDims: string[];
  rollups: RollupInfo[];
  dailyFromMs: number;
}

export class RouteError extends Error {}

function smallestHolding(rollups: RollupInfo[], width: number, dims: string[]): RollupInfo | undefined {
  return rollups
    .filter((r) => r.bucketMs === width && dims.every((d) => r.dims.includes(d)))
    .sort((a, b) => a.dims.length - b.dims.length)[0];
}

export function chooseRoute(input: RouteInput): Route {
  const span = input.to - input.from;
  const width =
    input.granularity === 'hourly' ? HOUR_MS : input.granularity === 'daily' ? DAY_MS : span >= input.dailyFromMs ? DAY_MS : HOUR_MS;
  const primary = smallestHolding(input.rollups, width, input.neededDims);
  if (!primary) {
    throw new RouteError(`no rollup of width ${width} ms holds ${input.neededDims.join(', ')}`);
  }
  const finer =
    input.rollups
      .filter((r) => r.bucketMs < width && width % r.bucketMs === 0 && input.neededDims.every((d) => r.dims.includes(d)))
      .sort((a, b) => b.bucketMs - a.bucketMs || a.dims.length - b.dims.length)[0] ?? null;

  let bucketMs = width;
  if (input.kind === 'timeseries') {
    // Never finer than Grafana's interval, never more points than it asked for.
    const wanted = Math.max(input.intervalMs ?? 0, input.maxDataPoints ? span / input.maxDataPoints : 0);
    bucketMs = Math.max(width, Math.ceil(wanted / width) * width);
  }
  // Timeseries points are whole answer buckets on the epoch grid, like Grafana's own intervals.
  const alignedFrom = Math.floor(input.from / bucketMs) * bucketMs;
  const alignedTo = Math.ceil(input.to / bucketMs) * bucketMs;
  return { primary, finer, bucketMs, alignedFrom, alignedTo };
}
