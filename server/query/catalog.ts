/**
 * What the router knows about the rollups: read from the database's registry
 * (ruleperf_rollups), so the SQL migrations remain the one definition. Tier names too: a
 * rollup's tier is its registry name without `metrics_`, and new rollups bring new tiers
 * without a code change.
 */

/** A rollup's tier ("hourly", "minute_by_rule", …, from the registry at run time) or "raw" for raw rows. */
export type Tier = string;

export const RAW_TIER: Tier = 'raw';

export interface RollupInfo {
  name: string;
  tier: Tier;
  source: string;
  bucketMs: number;
  dims: string[];
  refreshEveryMs: number;
  /** Whether the rollup stores rank keys (cheap percentile bounds for top-rules ranking). */
  rankKeys: boolean;
  /** How long its buckets are kept (null or absent: as long as the raw rows). */
  retentionMs?: number | null;
  /** Refresh order: sources come first (absent in hand-made catalogs: by width). */
  position?: number;
}

export function tierOf(rollupName: string): Tier {
  return rollupName.replace(/^metrics_/, '');
}

/** Every tier an answer can name, finest rollups last, then raw. */
export function tierNames(rollups: RollupInfo[]): Tier[] {
  return [
    ...[...rollups].sort((a, b) => b.bucketMs - a.bucketMs || (a.position ?? 0) - (b.position ?? 0)).map((r) => r.tier),
    RAW_TIER,
  ];
}

/** Reads the rollup registry (ruleperf_rollups) the router navigates. */

export async function loadRollupCatalog(db: { query(text: string): Promise<{ rows: any[] }> }): Promise<RollupInfo[]> {
  const { rows } = await db.query(
    `SELECT name, source, extract(epoch FROM bucket_width) * 1000 AS ms, dims, extract(epoch FROM refresh_every) * 1000 AS every,
            rank_keys, extract(epoch FROM retention) * 1000 AS retention_ms, position
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
    retentionMs: r.retention_ms === null ? null : Number(r.retention_ms),
    position: Number(r.position),
  }));
}
