/**
 * What the router knows about the rollups: read once from the database's registry
 * (ruleperf_rollups), so the SQL migrations remain the one definition.
 */
import type { Tier } from '../contract';

export interface RollupInfo {
  name: string;
  tier: Tier;
  source: string;
  bucketMs: number;
  dims: string[];
  refreshEveryMs: number;
}

export function tierOf(rollupName: string): Tier {
  return rollupName.replace(/^metrics_/, '') as Tier;
}

export const HOUR_MS = 3_600_000;
export const DAY_MS = 24 * HOUR_MS;
