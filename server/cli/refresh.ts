/** npm run refresh [-- --only metrics_hourly,metrics_daily] */
import { Pool } from 'pg';
import { refreshRollups } from '../db/refresh';
import { schemaInfo } from '../db/migrate';
import { databaseUrl, fail, parseFlags, run } from './common';

const USAGE = `usage: npm run refresh -- [--only rollup[,rollup…]]

Brings the rollups of DATABASE_URL up to date: recomputes invalidated buckets and newly
completed ones (PostgreSQL flavour) or runs the continuous aggregate refresh (TimescaleDB).`;

run(async () => {
  const flags = parseFlags({ only: { type: 'string' }, help: { type: 'boolean' } }, USAGE);
  if (flags.help) {
    console.log(USAGE);
    return;
  }
  const pool = new Pool({ connectionString: databaseUrl(), max: 1 });
  try {
    const schema = await schemaInfo(pool);
    if (!schema) {
      fail('the database has no ruleperf schema yet; run `npm run migrate` first');
    }
    const reports = await refreshRollups(pool, schema.flavour, { only: flags.only?.split(',').map((s) => s.trim()) });
    if (!reports) {
      console.log('another refresh holds the lock; nothing done');
      return;
    }
    for (const r of reports) {
      console.log(
        `${r.rollup.padEnd(24)} ${r.durationMs.toFixed(0).padStart(7)} ms   complete up to ${r.newWatermark?.toISOString() ?? '(no data)'}`
      );
    }
  } finally {
    await pool.end();
  }
});
