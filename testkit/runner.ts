/** Runs queries through the real normalize → plan → SQL → frames path, without HTTP. */
import type { Pool } from 'pg';
import type { RuleperfQueryInput } from '../server/contract';
import { querySchema } from '../server/http/validation';
import { loadRollupCatalog } from '../server/query/catalog';
import { Admission } from '../server/db/admission';
import { QueryExecutor } from '../server/query/executor';
import { normalizeQuery } from '../server/query/normalize';
import { WatermarkSource } from '../server/query/watermarks';

export async function queryRunner(pool: Pool) {
  const rollups = await loadRollupCatalog(pool);
  const admission = new Admission({ concurrency: 4, maxQueue: 1000, maxWaitMs: 60_000 });
  const executor = new QueryExecutor(pool, new WatermarkSource(pool, 0), () => rollups, admission, {
    dbQuery: () => undefined,
  });
  return async (
    range: { from: number; to: number; intervalMs?: number; maxDataPoints?: number },
    query: RuleperfQueryInput
  ) => {
    const q = normalizeQuery(
      { range, intervalMs: range.intervalMs, maxDataPoints: range.maxDataPoints },
      querySchema.parse(query),
      rollups
    );
    const answer = await executor.run(q);
    return { q, answer };
  };
}

/** A frame's columns by field name. */
export function columns(frame: {
  schema: { fields: Array<{ name: string }> };
  data: { values: unknown[][] };
}): Record<string, any[]> {
  return Object.fromEntries(frame.schema.fields.map((f, i) => [f.name, frame.data.values[i]]));
}
