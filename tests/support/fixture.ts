/** A small realistic history in a fresh database, refreshed up to a few hours ago so answers have a live edge. */
import { freshDatabase, type TestDatabase } from './services';
import { generateHistory } from '../../server/generator/history';
import { refreshRollups } from '../../server/db/refresh';

export const HOUR = 3_600_000;
export const DAY = 24 * HOUR;

export async function historyDatabase(
  options: { days?: number; rowsPerHour?: number; refreshedHoursAgo?: number } = {}
): Promise<TestDatabase> {
  const db = await freshDatabase();
  const end = new Date(Math.ceil(Date.now() / HOUR) * HOUR); // through the current hour
  await generateHistory(
    db.pool,
    {
      days: options.days ?? 9,
      rowsPerHour: options.rowsPerHour ?? 600,
      rules: 40,
      parsers: 6,
      seed: 11,
      end,
      method: 'copy',
    },
    () => undefined
  );
  await refreshRollups(db.pool, 'postgres', { until: new Date(Date.now() - (options.refreshedHoursAgo ?? 3) * HOUR) });
  await db.pool.query('ANALYZE');
  return db;
}
