/** Issue-2 figures: load rate, refresh of a 1.5M-row hour, a no-op refresh, exactness at scale. */
import { Client, Pool } from 'pg';
import { SingleBar } from 'cli-progress';
import { migrate } from '../../server/db/migrate';
import { refreshRollups } from '../../server/db/refresh';
import { generateHistory, plannedRows } from '../../server/generator/history';
import { buildModel, hourRows } from '../../server/generator/model';
import { copyRows } from '../../server/generator/load';
import { rowsProgress } from '../../server/cli/progress';
import { table } from './report';
import { checkExactnessPairs } from './exactness-pairs';

const HOUR = 3_600_000;

async function scratch(pg: string, name: string): Promise<Pool> {
  const admin = new Client({ connectionString: `${pg}/postgres` });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const pool = new Pool({ connectionString: `${pg}/${name}`, max: 2 });
  await migrate(pool, { flavour: 'postgres' });
  return pool;
}

async function drop(pg: string, pool: Pool, name: string) {
  await pool.end();
  const admin = new Client({ connectionString: `${pg}/postgres` });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.end();
}

export async function rollupBench(
  pg: string,
  o: { quick: boolean; say: (s: string) => void; pairs: number; largest: number; benchDatabase: (rows: number) => Promise<{ url: string }> }
) {
  const say = o.say;
  say('\n## Rollups (issue 2)\n');
  const name = `ruleperf_bench_scratch_${process.pid}`;
  const pool = await scratch(pg, name);
  const loadRows = o.quick ? 500_000 : 3_000_000;
  const options = { days: 1, rowsPerHour: Math.round(loadRows / 24), rules: 500, parsers: 30, seed: 5, end: new Date(Date.UTC(2026, 0, 2)), method: 'copy' as const };
  const progress = rowsProgress('load rate', plannedRows(options));
  await generateHistory(pool, options, (n) => progress.add(n));
  const load = progress.stop();

  // One hour holding 1.5 million rows (the ADR's refresh row), refreshed alone.
  await pool.query('TRUNCATE metrics');
  await refreshRollups(pool, 'postgres', { until: new Date(Date.UTC(2026, 0, 3)) });
  const hourRowCount = o.quick ? 300_000 : 1_500_000;
  const hourStart = Date.UTC(2026, 0, 3, 10);
  const client = await pool.connect();
  await copyRows(client, hourRows(buildModel(6, 500, 30), 6, hourStart, hourRowCount), () => undefined);
  client.release();
  const { rows: count } = await pool.query('SELECT count(*)::int AS n FROM metrics');
  await pool.query('VACUUM ANALYZE metrics');
  const reports = (await refreshRollups(pool, 'postgres', { until: new Date(hourStart + HOUR) }))!;
  const hourly = reports.find((r) => r.rollup === 'metrics_hourly')!.durationMs;
  const total = reports.reduce((s, r) => s + r.durationMs, 0);
  const t = performance.now();
  await refreshRollups(pool, 'postgres', { until: new Date(hourStart + HOUR) });
  const noop = performance.now() - t;
  await drop(pg, pool, name);

  say(
    table(
      ['Figure', 'ruleperf', 'Baseline'],
      [
        ['Load (COPY, rows/s)', Math.round(load.rowsPerSecond).toLocaleString('en'), 'target ≥ 200,000'],
        [`Refresh of one hour holding ${count[0].n.toLocaleString('en')} rows (hourly rollup)`, `${(hourly / 1000).toFixed(2)} s`, 'ADR: 2.8 s for 1.5M; target ≤ 3 s'],
        ['… all ten rollups (hourly and daily, full, totals, by type, rule, category)', `${(total / 1000).toFixed(2)} s`, 'ADR: 2.8 s + 1.2 s (its two)'],
        ['Refresh with nothing invalidated (client round trip)', `${noop.toFixed(1)} ms`, 'target ≤ 100 ms'],
      ]
    )
  );

  const scale = o.quick ? o.largest : Math.max(10_000_000, Math.min(o.largest, 10_000_000));
  const db = await o.benchDatabase(scale);
  const exPool = new Pool({ connectionString: db.url, max: 2 });
  const bar = new SingleBar({ format: `exactness pairs [{bar}] {value}/{total}`, noTTYOutput: !process.stderr.isTTY, notTTYSchedule: 5000, stream: process.stderr });
  bar.start(o.pairs, 0);
  const errors = await checkExactnessPairs(exPool, o.pairs, () => bar.increment());
  bar.stop();
  await exPool.end();
  const pct = (v: number) => `${(v * 100).toFixed(v < 0.001 ? 4 : 2)} %`;
  say(`\nExactness over ${errors.pairs} random (range, filter) pairs at ${(scale / 1e6).toFixed(0)}M rows — worst relative error against the raw table:\n`);
  say(
    table(
      ['Figure', 'ruleperf', "ADR's query (avg of avgs, percentile of hourly percentiles)"],
      [
        ['count', pct(errors.ruleperf.count), pct(errors.adr.count)],
        ['average', errors.ruleperf.avg.toExponential(1), pct(errors.adr.avg)],
        ['p50', pct(errors.ruleperf.p50), pct(errors.adr.p50)],
        ['p95', pct(errors.ruleperf.p95), pct(errors.adr.p95)],
        ['p99', pct(errors.ruleperf.p99), pct(errors.adr.p99)],
      ]
    )
  );
  return { load, refreshHourRows: count[0].n, hourlyRefreshMs: hourly, allRollupsRefreshMs: total, noopRefreshMs: noop, exactness: { scale, ...errors } };
}
