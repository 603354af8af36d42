/**
 * Rollup figures, each beside what it is compared with, measured in the same run on the same
 * rows: the first build of every rollup (schema 5 against this schema, in both flavours), the
 * refresh of one dense hour, a refresh with nothing to do, ingest into each flavour, the
 * minute tier's size at the bench scales, and exactness at scale.
 *
 * On this shared 2-core machine wall times vary by up to 2x with other work; the build
 * figures are also given in CPU seconds of the PostgreSQL backend (read from /proc), which
 * hardly move.
 */
import { Client, Pool, type PoolClient } from 'pg';
import { SingleBar } from 'cli-progress';
import { migrate } from '../../server/db/migrate';
import { nativeEnabled, type NativeChoice } from '../../server/db/native';
import { refreshEachRollup, refreshRollups } from '../../server/db/refresh';
import { startEmbeddedDatabase } from '../../server/db/embedded';
import { generateHistory, plannedRows } from '../../server/generator/history';
import { buildModel, hourRows } from '../../server/generator/model';
import { copyRows, insertRows } from '../../server/generator/load';
import { rowsProgress } from '../../server/cli/progress';
import { table } from './report';
import { checkExactnessPairs } from './exactness-pairs';
import { cpuSeconds } from './proc';

const MIN = 60_000;
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** The schema the comparisons start from: before registry-driven rollups and the minute tier. */
const BEFORE = 5;
/** The minute tier (schema 7). */
const MINUTE_TIER = /^metrics_minute_/;
/** The ten rollups schema 5 had, hourly and daily. */
const OF_SCHEMA_5 = /^metrics_(hourly|daily)(_by_category|_by_type|_by_rule|_total)?$/;

async function scratch(
  pg: string,
  name: string,
  toVersion?: number,
  template?: string,
  native?: NativeChoice
): Promise<Pool> {
  const admin = new Client({ connectionString: `${pg}/postgres` });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.query(template ? `CREATE DATABASE ${name} TEMPLATE ${template}` : `CREATE DATABASE ${name}`);
  await admin.end();
  const pool = new Pool({ connectionString: `${pg}/${name}`, max: 2 });
  pool.on('error', () => undefined); // an idle client cut by the server is replaced on the next query
  await migrate(pool, { flavour: 'postgres', toVersion, native });
  return pool;
}

async function drop(pg: string, pool: Pool | null, name: string) {
  await pool?.end();
  const admin = new Client({ connectionString: `${pg}/postgres` });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.end();
}

interface Measured<T> {
  result: T;
  wallS: number;
  cpuS: number;
}

/** Runs `work` on one connection and measures its wall time and the backend's CPU time. */
async function measured<T>(client: PoolClient | Client, work: () => Promise<T>): Promise<Measured<T>> {
  const pid = (await client.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;
  const cpu0 = cpuSeconds(pid);
  const t = performance.now();
  const result = await work();
  return { result, wallS: (performance.now() - t) / 1000, cpuS: cpuSeconds(pid) - cpu0 };
}

/** Each flavour's refresh of everything, on one connection, as its schema defines it. */
async function refreshAll(
  client: PoolClient,
  schema: 'before' | 'now',
  until: Date,
  latenessMs = 0
): Promise<Array<{ rollup: string; ms: number }>> {
  await client.query('SET statement_timeout = 0');
  const { rows } =
    schema === 'before'
      ? await client.query('SELECT rollup, duration_ms FROM ruleperf_refresh(NULL, $1)', [until])
      : await client.query('SELECT rollup, duration_ms FROM ruleperf_refresh(NULL, $1, $2::interval)', [
          until,
          `${latenessMs} milliseconds`,
        ]);
  return rows.map((r) => ({ rollup: r.rollup, ms: Number(r.duration_ms) }));
}

const rate = (rows: number, s: number) =>
  Number.isFinite(s) && s > 0 ? Math.round(rows / s).toLocaleString('en') : '—';
const secs = (s: number) => (Number.isFinite(s) ? `${s.toFixed(s < 10 ? 2 : 1)} s` : '—');
const ratio = (before: number, now: number) => (Number.isFinite(before / now) ? `${(before / now).toFixed(1)}×` : '—');
const mb = (bytes: number) => `${(bytes / 1e6).toFixed(bytes < 1e7 ? 1 : 0)} MB`;

export interface RollupBenchOptions {
  quick: boolean;
  say: (s: string) => void;
  pairs: number;
  largest: number;
  scales: number[];
  benchDatabase: (rows: number) => Promise<{ url: string }>;
}

export async function rollupBench(pg: string, o: RollupBenchOptions) {
  const say = o.say;
  const figures: Record<string, unknown> = {};
  say('\n## Rollups\n');

  // ---- Load rate (COPY), into the PostgreSQL flavour.
  const loadName = `ruleperf_bench_load_${process.pid}`;
  const loadPool = await scratch(pg, loadName);
  const loadRows = o.quick ? 500_000 : 3_000_000;
  const loadOptions = {
    days: 1,
    rowsPerHour: Math.round(loadRows / 24),
    rules: 500,
    parsers: 30,
    seed: 5,
    end: new Date(Date.UTC(2026, 0, 2)),
    method: 'copy' as const,
  };
  const progress = rowsProgress('load rate', plannedRows(loadOptions));
  await generateHistory(loadPool, loadOptions, (n) => progress.add(n));
  const load = progress.stop();
  await drop(pg, loadPool, loadName);
  figures.load = load;

  // ---- First build and one-hour refresh, on the same rows: schema 5, this schema with its
  // PL/pgSQL sketch functions, and this schema with the C ones (ruleperf_native) when installed.
  const beforeName = `ruleperf_bench_v${BEFORE}_${process.pid}`;
  const plName = `ruleperf_bench_plpgsql_${process.pid}`;
  const nowName = `ruleperf_bench_now_${process.pid}`;
  // The embedded demo's density (6,000 rows an hour), 500 rules, 30 parsers.
  const buildOptions = {
    days: o.quick ? 1 : 2,
    rowsPerHour: 6000,
    rules: 500,
    parsers: 30,
    seed: 7,
    end: new Date(Date.UTC(2026, 0, 10)),
    method: 'copy' as const,
  };
  const before = await scratch(pg, beforeName, BEFORE);
  const buildProgress = rowsProgress('rows for the build comparison', plannedRows(buildOptions));
  await generateHistory(before, buildOptions, (n) => buildProgress.add(n));
  buildProgress.stop();
  await before.query('VACUUM ANALYZE metrics');
  await before.end();
  const pl = await scratch(pg, plName, undefined, beforeName, 'off');
  const now = await scratch(pg, nowName, undefined, beforeName, 'auto');
  const native = await nativeEnabled(now);
  const beforePool = new Pool({ connectionString: `${pg}/${beforeName}`, max: 2 });
  beforePool.on('error', () => undefined);
  const { rows: counted } = await now.query('SELECT count(*)::int AS n FROM metrics');
  const buildRows = counted[0].n as number;
  const until = buildOptions.end;

  const bc = await beforePool.connect();
  const pc = await pl.connect();
  const nc = await now.connect();
  say(
    `First build of every rollup from ${buildRows.toLocaleString('en')} raw rows (${buildOptions.days} day${buildOptions.days > 1 ? 's' : ''} at 6,000 rows an hour, 500 rules, 30 parsers), one after the other on the same rows${native ? '' : ' (the ruleperf_native extension is not installed on this server: no C column)'}:\n`
  );
  const firstBefore = await measured(bc, () => refreshAll(bc, 'before', until));
  const firstPl = await measured(pc, () => refreshAll(pc, 'now', until));
  const firstNow = native ? await measured(nc, () => refreshAll(nc, 'now', until)) : null;
  const split = (m: Measured<Array<{ rollup: string; ms: number }>>) => {
    const msOf = (of: RegExp) => m.result.filter((r) => of.test(r.rollup)).reduce((a, r) => a + r.ms, 0);
    const [tenMs, minuteMs, allMs] = [msOf(OF_SCHEMA_5), msOf(MINUTE_TIER), msOf(/./)];
    return { tenMs, minuteMs, tenCpu: m.cpuS * (tenMs / allMs) };
  };
  const plSplit = split(firstPl);
  const nowSplit = firstNow ? split(firstNow) : null;
  /** A figure of the C build, or a dash where the extension is not installed. */
  const inC = (f: (m: NonNullable<typeof firstNow>) => string) => (firstNow ? f(firstNow) : '—');
  const speedUps = (b: number, p: number, n: number | undefined) =>
    `${ratio(b, p)}${n === undefined ? '' : `; C: ${ratio(p, n)} over PL/pgSQL, ${ratio(b, n)} over schema ${BEFORE}`}`;
  say(
    table(
      ['Figure', `schema ${BEFORE}`, 'this schema, PL/pgSQL sketches', 'this schema, C sketches', 'speed-up'],
      [
        [
          'All rollups: wall time',
          secs(firstBefore.wallS),
          secs(firstPl.wallS),
          inC((m) => secs(m.wallS)),
          speedUps(firstBefore.wallS, firstPl.wallS, firstNow?.wallS),
        ],
        [
          '… raw rows per second (wall)',
          rate(buildRows, firstBefore.wallS),
          rate(buildRows, firstPl.wallS),
          inC((m) => rate(buildRows, m.wallS)),
          '',
        ],
        [
          '… backend CPU time',
          secs(firstBefore.cpuS),
          secs(firstPl.cpuS),
          inC((m) => secs(m.cpuS)),
          speedUps(firstBefore.cpuS, firstPl.cpuS, firstNow?.cpuS),
        ],
        [
          '… raw rows per CPU second',
          rate(buildRows, firstBefore.cpuS),
          rate(buildRows, firstPl.cpuS),
          inC((m) => rate(buildRows, m.cpuS)),
          '',
        ],
        [
          `The ten rollups of schema ${BEFORE} (hourly and daily): wall`,
          secs(firstBefore.wallS),
          secs(plSplit.tenMs / 1000),
          nowSplit ? secs(nowSplit.tenMs / 1000) : '—',
          speedUps(firstBefore.wallS, plSplit.tenMs / 1000, nowSplit ? nowSplit.tenMs / 1000 : undefined),
        ],
        [
          '… raw rows per second (wall; CPU)',
          `${rate(buildRows, firstBefore.wallS)}; ${rate(buildRows, firstBefore.cpuS)}`,
          `${rate(buildRows, plSplit.tenMs / 1000)}; ${rate(buildRows, plSplit.tenCpu)}`,
          nowSplit ? `${rate(buildRows, nowSplit.tenMs / 1000)}; ${rate(buildRows, nowSplit.tenCpu)}` : '—',
          '',
        ],
        [
          `The minute tier (${firstPl.result.filter((r) => MINUTE_TIER.test(r.rollup)).length} rollups: total and per category and type from every raw row, the others their 7 days)`,
          '—',
          secs(plSplit.minuteMs / 1000),
          nowSplit ? secs(nowSplit.minuteMs / 1000) : '—',
          nowSplit ? ratio(plSplit.minuteMs, nowSplit.minuteMs) : '',
        ],
      ]
    )
  );
  figures.firstBuild = {
    rows: buildRows,
    days: buildOptions.days,
    before: firstBefore,
    plpgsql: { ...firstPl, ...plSplit },
    native: firstNow ? { ...firstNow, ...nowSplit } : null,
  };

  // One hour holding 1.5 million rows (the ADR's refresh row), refreshed alone, in each.
  const hourRowCount = o.quick ? 300_000 : 1_500_000;
  const hourStart = until.getTime() + DAY + 10 * HOUR;
  type HourFigures = { hourlyS: number; hourlyCpuS: number; allS: number; allCpuS: number; noopMs: number };
  const hourly: Record<string, HourFigures> = {};
  const hourRuns = [
    ['before', 'before', bc, beforePool],
    ['plpgsql', 'now', pc, pl],
    ...(native ? [['native', 'now', nc, now] as const] : []),
  ] as const;
  for (const [label, schema, client, pool] of hourRuns) {
    await client.query('TRUNCATE metrics');
    await refreshAll(client, schema, new Date(hourStart));
    const loader = await pool.connect();
    await copyRows(loader, hourRows(buildModel(6, 500, 30), 6, hourStart, hourRowCount), () => undefined);
    loader.release();
    await client.query('VACUUM ANALYZE metrics');
    // Up to the end of the hour (plus this schema's minute of lateness, so the hour is complete
    // in both): the hourly rollup first, on its own, then the others.
    const upTo = new Date(hourStart + HOUR + MIN);
    const first = await measured(client, () =>
      schema === 'before'
        ? client.query(`SELECT * FROM ruleperf_refresh(ARRAY['metrics_hourly'], $1)`, [upTo])
        : client.query(`SELECT * FROM ruleperf_refresh(ARRAY['metrics_hourly'], $1, '1 minute')`, [upTo])
    );
    const rest = await measured(client, () => refreshAll(client, schema, upTo, MIN));
    const t = performance.now();
    await refreshAll(client, schema, upTo, MIN);
    hourly[label] = {
      hourlyS: first.wallS,
      hourlyCpuS: first.cpuS,
      allS: first.wallS + rest.wallS,
      allCpuS: first.cpuS + rest.cpuS,
      noopMs: performance.now() - t,
    };
  }
  bc.release();
  pc.release();
  nc.release();
  await drop(pg, beforePool, beforeName);
  await drop(pg, pl, plName);
  await drop(pg, now, nowName);
  const h = (f: (x: HourFigures) => string) => (hourly.native ? f(hourly.native) : '—');
  say(`\nRefresh of one hour holding ${hourRowCount.toLocaleString('en')} rows, and a refresh with nothing to do:\n`);
  say(
    table(
      ['Figure', `schema ${BEFORE}`, 'this schema, PL/pgSQL', 'this schema, C', 'Baseline'],
      [
        ['Load (COPY, rows/s)', '', Math.round(load.rowsPerSecond).toLocaleString('en'), '', 'target ≥ 200,000'],
        [
          'Refresh of the hour: hourly rollup, wall',
          secs(hourly.before.hourlyS),
          secs(hourly.plpgsql.hourlyS),
          h((x) => secs(x.hourlyS)),
          'ADR: 2.8 s for 1.5M; target ≤ 3 s',
        ],
        [
          '… its backend CPU time',
          secs(hourly.before.hourlyCpuS),
          secs(hourly.plpgsql.hourlyCpuS),
          h((x) => secs(x.hourlyCpuS)),
          ratio(hourly.before.hourlyCpuS, hourly.plpgsql.hourlyCpuS) + ' faster (PL/pgSQL)',
        ],
        [
          `… every rollup (schema 5: ten; this schema: ${firstPl.result.length}), wall`,
          secs(hourly.before.allS),
          secs(hourly.plpgsql.allS),
          h((x) => secs(x.allS)),
          'ADR: 2.8 s + 1.2 s (its two)',
        ],
        [
          '… their backend CPU time',
          secs(hourly.before.allCpuS),
          secs(hourly.plpgsql.allCpuS),
          h((x) => secs(x.allCpuS)),
          '',
        ],
        [
          'Refresh with nothing to do (client round trip)',
          `${hourly.before.noopMs.toFixed(1)} ms`,
          `${hourly.plpgsql.noopMs.toFixed(1)} ms`,
          h((x) => `${x.noopMs.toFixed(1)} ms`),
          'target ≤ 100 ms',
        ],
      ]
    )
  );
  figures.hourRefresh = { rows: hourRowCount, ...hourly };

  // ---- The TimescaleDB flavour (the WASM build the tests and `npm start` use): ingest
  // beside the PostgreSQL flavour in the same engine, and the first build, schema 5 against this.
  figures.timescale = await timescaleBench(o.quick, say);

  // ---- The minute tier at the bench scales, and a first build at the largest.
  figures.minuteTier = await minuteTierSizes(o, say);
  figures.buildAtScale = await buildAtScale(pg, o, say);

  // ---- Exactness at scale.
  const scale = o.quick ? o.largest : Math.max(10_000_000, Math.min(o.largest, 10_000_000));
  const db = await o.benchDatabase(scale);
  const exPool = new Pool({ connectionString: db.url, max: 2 });
  const bar = new SingleBar({
    format: `exactness pairs [{bar}] {value}/{total}`,
    noTTYOutput: !process.stderr.isTTY,
    notTTYSchedule: 5000,
    stream: process.stderr,
  });
  bar.start(o.pairs, 0);
  const errors = await checkExactnessPairs(exPool, o.pairs, () => bar.increment());
  bar.stop();
  await exPool.end();
  const pct = (v: number) => `${(v * 100).toFixed(v < 0.001 ? 4 : 2)} %`;
  say(
    `\nExactness over ${errors.pairs} random unaligned (range, filter) pairs at ${(scale / 1e6).toFixed(0)}M rows, against the raw table over the covered range — ${errors.exactRanges} covered exactly as asked, the others (ranges ending within the last minute) moved forward to whole minutes (finer under an hour), ends at most ${(errors.endsOffMs / 1000).toFixed(1)} s from the asked ones; worst relative error:\n`
  );
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
  figures.exactness = { scale, ...errors };
  return figures;
}

/** Ingest and first build in the WASM TimescaleDB, each beside its comparison. */
async function timescaleBench(quick: boolean, say: (s: string) => void) {
  const model = buildModel(6, 500, 30);
  const ingestRows = quick ? 60_000 : 200_000;
  const ingest = async (flavour: 'postgres' | 'timescale', toVersion?: number) => {
    const e = await startEmbeddedDatabase(null);
    const pool = new Pool({ connectionString: e.url, max: 1 });
    try {
      await migrate(pool, { flavour, toVersion });
      await insertRows(pool, hourRows(model, 7, Date.UTC(2026, 0, 2, 10), 20_000), () => undefined); // warm-up, another hour
      const t = performance.now();
      await insertRows(pool, hourRows(model, 6, Date.UTC(2026, 0, 3, 10), ingestRows), () => undefined);
      return ingestRows / ((performance.now() - t) / 1000);
    } finally {
      await pool.end();
      await e.stop();
    }
  };
  // Interleaved rounds, medians: other work on this machine lands on all three alike.
  const rounds: Array<[number, number, number]> = [];
  for (let i = 0; i < (quick ? 1 : 3); i++) {
    rounds.push([await ingest('postgres'), await ingest('timescale', BEFORE), await ingest('timescale')]);
  }
  const median = (i: number) => rounds.map((r) => r[i]).sort((a, b) => a - b)[Math.floor(rounds.length / 2)];
  const [pgRate, tsBefore, tsNow] = [median(0), median(1), median(2)];

  const hours = quick ? 6 : 24;
  const build = async (toVersion?: number) => {
    const e = await startEmbeddedDatabase(null);
    const pool = new Pool({ connectionString: e.url, max: 1 });
    try {
      await migrate(pool, { flavour: 'timescale', toVersion });
      const end = Date.UTC(2026, 0, 10);
      await generateHistory(
        pool,
        { days: hours / 24, rowsPerHour: 6000, rules: 500, parsers: 30, seed: 7, end: new Date(end), method: 'insert' },
        () => undefined
      );
      const t = performance.now();
      if (toVersion === BEFORE) {
        // Schema 5's refresh: every continuous aggregate in registry order, up to its last whole bucket.
        const { rows } = await pool.query(
          'SELECT name, extract(epoch FROM bucket_width) * 1000 AS ms FROM ruleperf_rollups ORDER BY position'
        );
        for (const r of rows) {
          const upTo = new Date(Math.floor((end + HOUR) / Number(r.ms)) * Number(r.ms)).toISOString();
          await pool.query(`CALL refresh_continuous_aggregate('${r.name}', NULL, '${upTo}')`);
        }
        const s = (performance.now() - t) / 1000;
        return { s, tenMs: s * 1000, count: rows.length };
      }
      const reports = (await refreshRollups(pool, 'timescale', { until: new Date(end + HOUR), latenessMs: 0 }))!;
      return {
        s: (performance.now() - t) / 1000,
        tenMs: reports.filter((r) => OF_SCHEMA_5.test(r.rollup)).reduce((s, r) => s + r.durationMs, 0),
        count: reports.length,
      };
    } finally {
      await pool.end();
      await e.stop();
    }
  };
  const buildBefore = await build(BEFORE);
  const buildNow = await build();
  const rows = hours * 6000;
  say(
    `\nTimescaleDB flavour in the WASM build (PGlite + TimescaleDB 2.23, one process; native servers are several times faster). Ingest of ${ingestRows.toLocaleString('en')} rows in batches of 20,000, and the first build from ${rows.toLocaleString('en')} rows:\n`
  );
  say(
    table(
      ['Figure', `schema ${BEFORE}`, 'this schema', 'Comparison'],
      [
        [
          `Ingest, rows/s (median of ${rounds.length})`,
          Math.round(tsBefore).toLocaleString('en'),
          Math.round(tsNow).toLocaleString('en'),
          `PostgreSQL flavour, same engine: ${Math.round(pgRate).toLocaleString('en')}; TimescaleDB takes ${(pgRate / tsNow).toFixed(2)}× its time (schema ${BEFORE}: ${(pgRate / tsBefore).toFixed(2)}×)`,
        ],
        [
          'First build, all rollups',
          secs(buildBefore.s),
          secs(buildNow.s),
          `${ratio(buildBefore.s, buildNow.s)} (this schema has ${buildNow.count - buildBefore.count} more)`,
        ],
        ['… raw rows per second', rate(rows, buildBefore.s), rate(rows, buildNow.s), ''],
        [
          `… the ten rollups of schema ${BEFORE}`,
          secs(buildBefore.s),
          secs(buildNow.tenMs / 1000),
          ratio(buildBefore.s, buildNow.tenMs / 1000),
        ],
      ]
    )
  );
  return {
    ingestRows,
    ingest: { postgres: pgRate, timescaleBefore: tsBefore, timescaleNow: tsNow, rounds },
    build: { rows, before: buildBefore, now: buildNow },
  };
}

/** Rows and bytes of the minute tier (and what a full-dimension one would hold) at each bench scale. */
async function minuteTierSizes(o: RollupBenchOptions, say: (s: string) => void) {
  const out: Record<string, unknown> = {};
  const lines: string[][] = [];
  for (const rows of o.scales) {
    const db = await o.benchDatabase(rows);
    const c = new Client({ connectionString: db.url });
    await c.connect();
    try {
      await c.query('SET statement_timeout = 0');
      const { rows: sizes } = await c.query(
        `SELECT r.name, r.bucket_width, pg_total_relation_size(to_regclass(quote_ident(r.name))) AS bytes, s.retained_from, s.watermark
         FROM ruleperf_rollups r JOIN ruleperf_rollup_status s ON s.rollup = r.name ORDER BY r.position`
      );
      const minute = sizes.filter((s) => MINUTE_TIER.test(s.name));
      const kept = minute[0].retained_from as Date;
      const mark = minute[0].watermark as Date;
      const { rows: raw } = await c.query('SELECT count(*)::bigint AS n FROM metrics WHERE time >= $1 AND time < $2', [
        kept,
        mark,
      ]);
      const rawInWindow = Number(raw[0].n);
      const counts: Record<string, number> = {};
      for (const m of minute) {
        counts[m.name] = Number(
          (await c.query(`SELECT count(*)::bigint AS n FROM ${m.name} WHERE bucket >= $1`, [kept])).rows[0].n
        );
      }
      // What a full-dimension minute rollup would hold over the same days: one row per group.
      const { rows: full } = await c.query(
        `SELECT count(*)::bigint AS n FROM (SELECT 1 FROM metrics WHERE time >= $1 AND time < $2
           GROUP BY date_bin('1 minute', time, '2000-01-01 00:00:00+00'), metric_type, rule_id, parser_id, rule_category, source_type, status) AS g`,
        [kept, mark]
      );
      // The minute tier's share of a refresh: a minute of new rows at this scale's density (an
      // hour's worth spread over the hour; the refresh takes the first minute), then the five
      // minute rollups. The rows are deleted again afterwards.
      const perMinute = Math.max(1, Math.round(rows / 720 / 60));
      const next = mark.getTime();
      const pool = new Pool({ connectionString: db.url, max: 1 });
      const pc = await pool.connect();
      await copyRows(pc, hourRows(buildModel(42, 500, 30), 99, next, perMinute * 60), () => undefined);
      pc.release();
      const t = performance.now();
      await refreshRollups(pool, 'postgres', {
        only: minute.map((m) => m.name),
        until: new Date(next + 2 * MIN),
        latenessMs: MIN,
      });
      const minuteRefreshMs = performance.now() - t;
      await pool.query('DELETE FROM metrics WHERE time >= $1', [new Date(next)]);
      await refreshRollups(pool, 'postgres', { only: minute.map((m) => m.name) });
      await pool.end();
      const bytes = minute.reduce((s, m) => s + Number(m.bytes), 0);
      const rawBytes = Number((await c.query(`SELECT pg_total_relation_size('metrics') AS b`)).rows[0].b);
      out[rows] = { rawInWindow, counts, bytes, fullDimensionRows: Number(full[0].n), minuteRefreshMs, rawBytes };
      const label = rows >= 1e6 ? `${rows / 1e6}M` : `${rows / 1e3}k`;
      lines.push([
        label,
        rawInWindow.toLocaleString('en'),
        minute.map((m) => `${m.name.replace('metrics_minute_', '')} ${counts[m.name].toLocaleString('en')}`).join(', '),
        mb(bytes),
        `${Number(full[0].n).toLocaleString('en')} (${((100 * Number(full[0].n)) / Math.max(1, rawInWindow)).toFixed(0)} % of raw)`,
        `${minuteRefreshMs.toFixed(0)} ms`,
      ]);
    } finally {
      await c.end();
    }
  }
  say(
    `\nThe minute tier at the bench scales (per category, per type and per rule kept 7 days of the 30 days of rows; total and per category and type all 30, schema 13):\n`
  );
  say(
    table(
      [
        'Scale',
        'Raw rows in its 7 days',
        'Rows per minute rollup',
        'Size (with indexes)',
        'A full-dimension minute rollup would hold',
        'Refresh after a minute of rows',
      ],
      lines
    )
  );
  return out;
}

/**
 * The first build of every rollup over a bench database's rows (a copy, rollups emptied and
 * without indexes): side by side as the CLIs build, then one rollup at a time in refresh order
 * so that each one's CPU time is known (the side-by-side build first: the second finds the
 * raw table warmer in memory).
 */
export async function buildAtScale(pg: string, o: RollupBenchOptions, say: (s: string) => void) {
  const rows = o.largest;
  const source = await o.benchDatabase(rows);
  const template = new URL(source.url).pathname.slice(1);
  const name = `ruleperf_bench_build_${process.pid}`;
  const admin = new Client({ connectionString: `${pg}/postgres` });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${name} TEMPLATE ${template}`);
  await admin.end();
  const c = new Client({ connectionString: `${pg}/${name}` });
  await c.connect();
  const groups: Record<string, { wallS: number; cpuS: number; rollupRows: number }> = {};
  let rawRows = 0;
  let sideBySideS = 0;
  try {
    await c.query('SET statement_timeout = 0');
    const { rows: names } = await c.query('SELECT name, source FROM ruleperf_rollups ORDER BY position');
    // As before a first build: rollups empty and without indexes (a first fill builds them after).
    const empty = async () => {
      for (const n of names) {
        await c.query(`TRUNCATE ${n.name}`);
        const { rows: indexes } = await c.query(
          'SELECT indexrelid::regclass::text AS name FROM pg_index WHERE indrelid = $1::regclass',
          [n.name]
        );
        for (const index of indexes) {
          await c.query(`DROP INDEX ${index.name}`);
        }
      }
      await c.query(`UPDATE ruleperf_rollup_state SET watermark = '-infinity', retained_from = '-infinity'`);
      await c.query('DELETE FROM ruleperf_invalidations');
    };
    await empty();
    rawRows = Number((await c.query('SELECT count(*)::bigint AS n FROM metrics')).rows[0].n);
    const until = new Date(Date.now() - 10 * MIN);
    // The same build as `npm run generate`, `npm run refresh` and the bench's own databases
    // run it: two rollups side by side, each once its source is done.
    const pool = new Pool({ connectionString: `${pg}/${name}`, max: 2 });
    try {
      const t = performance.now();
      await refreshEachRollup(pool, 'postgres', { until, sessions: 2 });
      sideBySideS = (performance.now() - t) / 1000;
    } finally {
      await pool.end();
    }
    await empty();
    for (const n of names) {
      const group = MINUTE_TIER.test(n.name)
        ? 'the minute tier'
        : n.source === 'metrics'
          ? 'hourly, from raw rows'
          : 'hourly and daily, from other rollups';
      const m = await measured(c, () =>
        c.query(`SELECT buckets_recomputed FROM ruleperf_refresh(ARRAY[$1], $2, '1 minute')`, [n.name, until])
      );
      const g = (groups[group] ??= { wallS: 0, cpuS: 0, rollupRows: 0 });
      g.wallS += m.wallS;
      g.cpuS += m.cpuS;
      g.rollupRows += Number(m.result.rows[0].buckets_recomputed);
    }
  } finally {
    await c.end();
    await drop(pg, null, name);
  }
  const total = Object.values(groups).reduce(
    (t, g) => ({ wallS: t.wallS + g.wallS, cpuS: t.cpuS + g.cpuS, rollupRows: t.rollupRows + g.rollupRows }),
    { wallS: 0, cpuS: 0, rollupRows: 0 }
  );
  say(
    `\nFirst build of every rollup over the ${(rawRows / 1e6).toFixed(0)}M-row bench database (30 days; the minute total and per category and type from all of it, the other minute rollups from its last 7), one rollup after another:\n`
  );
  say(
    table(
      ['Rollups', 'Rollup rows', 'Wall', 'Backend CPU', 'Raw rows per CPU second'],
      [...Object.entries(groups), ['all', total] as const].map(([g, v]) => [
        g,
        v.rollupRows.toLocaleString('en'),
        secs(v.wallS),
        secs(v.cpuS),
        g === 'all' ? rate(rawRows, v.cpuS) : '',
      ])
    )
  );
  say(
    `\nThe same build two rollups side by side (each on its own connection once its source is done, as \`npm run generate\`, \`npm run refresh\` and the bench build): ${secs(sideBySideS)} wall, ${rate(rawRows, sideBySideS)} raw rows per second, against ${secs(total.wallS)} (${rate(rawRows, total.wallS)}) one after another (target: 300,000 raw rows per second).\n`
  );
  return { rawRows, groups, total, sideBySideS };
}
