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
  /** Whether the rollup stores rank keys (cheap percentile bounds for top-rules ranking). */
  rankKeys: boolean;
}

export function tierOf(rollupName: string): Tier {
  return rollupName.replace(/^metrics_/, '') as Tier;
}

export const HOUR_MS = 3_600_000;
export const DAY_MS = 24 * HOUR_MS;

/** Reads the rollup registry (ruleperf_rollups) the router navigates. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function loadRollupCatalog(db: { query(text: string): Promise<{ rows: any[] }> }): Promise<RollupInfo[]> {
  const { rows } = await db.query(
    `SELECT name, source, extract(epoch FROM bucket_width) * 1000 AS ms, dims, extract(epoch FROM refresh_every) * 1000 AS every,
            EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = to_regclass(quote_ident(name)) AND a.attname = 'latency_rank_keys' AND NOT a.attisdropped) AS rank_keys
     FROM ruleperf_rollups ORDER BY position`
  );
  return rows.map((r) => ({
    name: r.name,
    tier: tierOf(r.name),
    source: r.source,
    bucketMs: Number(r.ms),
    dims: r.dims,
    refreshEveryMs: Number(r.every),
    rankKeys: r.rank_keys === true,
  }));
}
