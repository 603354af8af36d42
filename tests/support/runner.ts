/** Runs queries through the real normalize → route → SQL → frames path, without HTTP. */
import type { Pool } from 'pg';
import type { RuleperfQueryInput } from '../../server/contract';
import { querySchema } from '../../server/http/validation';
import { DAY_MS, loadRollupCatalog } from '../../server/query/catalog';
import { QueryExecutor } from '../../server/query/executor';
import { normalizeQuery } from '../../server/query/normalize';
import { WatermarkSource } from '../../server/query/watermarks';

export async function queryRunner(pool: Pool) {
  const rollups = await loadRollupCatalog(pool);
  const executor = new QueryExecutor(pool, new WatermarkSource(pool, 0), { dbQuery: () => undefined });
  return async (range: { from: number; to: number; intervalMs?: number }, query: RuleperfQueryInput) => {
    const q = normalizeQuery({ range, intervalMs: range.intervalMs }, querySchema.parse(query), rollups, { dailyFromMs: 7 * DAY_MS });
    const answer = await executor.run(q, 'A');
    return { q, answer };
  };
}

/** A frame's columns by field name. */
export function columns(frame: { schema: { fields: Array<{ name: string }> }; data: { values: unknown[][] } }): Record<string, any[]> {
  return Object.fromEntries(frame.schema.fields.map((f, i) => [f.name, frame.data.values[i]]));
}
