/**
 * The embedded database across restarts: a data folder created by one start is reopened
 * by the next, and refreshing its continuous aggregates works there (before the fix every
 * session after the first said "not supported under the current timescale license").
 */
import assert from 'node:assert/strict';
import { test, after } from 'node:test';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { loadConfig } from '../../server/config';
import { startService } from '../../server/main';
import { uniqueName, REDIS_URL } from '../support/services';

const dataDir = mkdtempSync(join(tmpdir(), 'ruleperf-restart-'));
after(() => rmSync(dataDir, { recursive: true, force: true }));

/** A service on the embedded database in `dataDir`, its log lines kept in `lines`. */
async function start(lines: string[]) {
  const config = loadConfig({
    PORT: '0',
    DATA_DIR: dataDir,
    REDIS_URL,
    CACHE_PREFIX: uniqueName('restart').replace(/_/g, '-'),
    WARM_ON_START: 'false',
    WARM_INTERVAL_SECONDS: '0',
    DEMO_DAYS: '1',
    DEMO_ROWS_PER_HOUR: '300',
    DEMO_LIVE: 'false',
  });
  const sink = new Writable({
    write(chunk, _enc, done) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  return startService(config, pino({ level: 'info' }, sink));
}

test('a data folder is created, stopped, reopened, and its rollups refresh in the new session', async () => {
  const first: string[] = [];
  const a = await start(first);
  // The port's URL with this start's password, for psql: the owner's alone, and never in the log.
  const urlFile = join(dataDir, 'pglite.url');
  const password = new URL(readFileSync(urlFile, 'utf8').trim()).password;
  assert.ok(password.length >= 20, 'a password made for this start');
  assert.equal(statSync(urlFile).mode & 0o777, 0o600);
  assert.ok(
    first.some((l) => l.includes('pglite.url')) && !first.some((l) => l.includes(password)),
    'the log names the file, not the password'
  );
  const { rows: created } = await a.pools.read.query('SELECT count(*)::int AS n FROM metrics');
  assert.ok(created[0].n > 5000, `the demo day was loaded (${created[0].n} rows)`);
  await a.stop();
  assert.ok(!existsSync(urlFile), 'the file goes with the service');

  const second: string[] = [];
  const b = await start(second);
  try {
    assert.ok(!second.some((l) => /applying /.test(l)), 'the reopened folder needs no migration');
    const { rows: reopened } = await b.pools.read.query('SELECT count(*)::int AS n FROM metrics');
    assert.equal(reopened[0].n, created[0].n, 'the rows survived the restart, and the demo was not loaded twice');

    // A late row in an hour that is already materialized; then every rollup is due.
    const { rows: hour } = await b.pools.read.query(
      `SELECT bucket, execution_count FROM metrics_hourly_total ORDER BY bucket DESC LIMIT 1 OFFSET 2`
    );
    await b.pools.write.query(
      `INSERT INTO metrics (time, metric_type, rule_id, status, execution_time_ms) VALUES ($1, 'RULE_EXECUTION', 'rule-0001', 'SUCCESS', 12)`,
      [new Date(hour[0].bucket.getTime() + 60_000)]
    );
    await b.pools.write.query('UPDATE ruleperf_rollup_state SET last_refresh_at = NULL');
    await b.scheduler.tick();

    const failures = second.filter((l) => /refresh tick failed/.test(l));
    assert.deepEqual(failures, [], 'no refresh failure in the log');
    assert.ok(
      second.some((l) => /rollups refreshed/.test(l)),
      'the scheduler refreshed the rollups'
    );
    const { rows: after } = await b.pools.read.query(
      'SELECT execution_count FROM metrics_hourly_total WHERE bucket = $1',
      [hour[0].bucket]
    );
    assert.equal(after[0].execution_count, hour[0].execution_count + 1, 'the late row reached the hourly rollup');
    const { rows: direct } = await b.pools.background.query(
      `SELECT (SELECT count(*)::int FROM timescaledb_information.continuous_aggregates) AS n, (SELECT count(*)::int FROM ruleperf_rollups) AS rollups`
    );
    assert.equal(
      direct[0].n,
      direct[0].rollups,
      'TimescaleDB answers on every connection of the session: a continuous aggregate per rollup'
    );
  } finally {
    await b.stop();
  }
});
