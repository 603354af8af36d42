/** npm run refresh [-- --only metrics_hourly,metrics_daily] */
import { Pool } from 'pg';
import { refreshEachRollup, UnknownRollups } from '../db/refresh';
import { schemaInfo } from '../db/migrate';
import { databaseUrl, fail, parseFlags, run } from './common';
import { rollupsProgress } from './progress';

const USAGE = `usage: npm run refresh -- [--only rollup[,rollup…]] [--sessions N]

Brings the rollups of DATABASE_URL up to date, sources first, with a progress bar: recomputes
invalidated buckets and newly completed ones (PostgreSQL flavour; --sessions rollups side by
side, default 2, each on its own connection) or runs the continuous aggregate refresh
(TimescaleDB, one at a time).`;

run(async () => {
  const flags = parseFlags(
    { only: { type: 'string' }, sessions: { type: 'string' }, help: { type: 'boolean' } },
    USAGE
  );
  if (flags.help) {
    console.log(USAGE);
    return;
  }
  const sessions = Number(flags.sessions ?? 2);
  if (!Number.isInteger(sessions) || sessions < 1 || sessions > 16) {
    fail(`--sessions must be a whole number from 1 to 16, got ${JSON.stringify(flags.sessions)}`);
  }
  const pool = new Pool({ connectionString: databaseUrl(), max: sessions });
  try {
    const schema = await schemaInfo(pool);
    if (!schema) {
      fail('the database has no ruleperf schema yet; run `npm run migrate` first');
    }
    const only = flags.only?.split(',').map((s) => s.trim());
    const bar = rollupsProgress('refreshing rollups');
    let reports: Awaited<ReturnType<typeof refreshEachRollup>>;
    try {
      reports = await refreshEachRollup(pool, schema.flavour, { only, sessions, onStep: bar.onStep });
    } catch (err) {
      if (err instanceof UnknownRollups) {
        fail(`--only: ${err.message}`);
      }
      throw err;
    } finally {
      bar.stop();
    }
    if (!reports) {
      console.log('another refresh holds the lock (a running service refreshes on its own); stopped here');
      return;
    }
    for (const r of reports) {
      console.log(
        `${r.rollup.padEnd(32)} ${r.durationMs.toFixed(0).padStart(7)} ms   complete up to ${r.newWatermark?.toISOString() ?? '(no data)'}`
      );
    }
  } finally {
    await pool.end();
  }
});
