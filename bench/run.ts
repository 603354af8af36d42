/**
 * npm run bench — reproduces the ADR's tables on this machine, ruleperf beside each
 * alternative, in one run: raw table (B), rollups without cache (E), rollups + Redis
 * (A, ruleperf), and the ADR's own millisecond cache keys.
 *
 *   npm run bench -- [--scale 45m|10m|1m|100m|<rows>[,…]] [--quick] [--sections rollups,queries,floor,traffic,overload]
 *                    [--rules 500[,5000] --parsers 30[,100]] [--pairs 200] [--traffic-seconds 120] [--rebuild] [--native auto|off]
 *                    [--floor-connections 10,100] [--floor-seconds 10] [--floor-rounds 5] [--wrk-threads 1]
 */
import { parseArgs } from 'node:util';
import { Client, Pool } from 'pg';
import Redis from 'ioredis';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { SingleBar } from 'cli-progress';
import { migrate } from '../server/db/migrate';
import { refreshEachRollup, refreshRollups } from '../server/db/refresh';
import { generateHistory, plannedRows } from '../server/generator/history';
import { rollupsProgress, rowsProgress } from '../server/cli/progress';
import { startServiceProcess, type ServiceProcess } from '../testkit/service-process';
import { post } from '../testkit/http';
import { medianOfRuns, summarize, type Summary } from './lib/stats';
import { table, latencyRow, LATENCY_HEADERS, ms, writeResults, latencyChart } from './lib/report';
import { RAW_SQL } from './lib/raw-queries';
import { rollupBench } from './lib/rollup-bench';
import { trafficBench } from './lib/traffic-bench';
import { overloadBench } from './lib/overload-bench';
import { freshnessBench } from './lib/freshness-bench';
import { floorBench } from './lib/floor-bench';
import { parseScale, rowsLabel } from './lib/options';
import {
  cardinalities,
  cardinalityLabel,
  cardinalityTable,
  DEFAULT_CARDINALITY,
  type Cardinality,
  type CardinalityRow,
} from './lib/cardinality';
import { startupBench } from './lib/startup-bench';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const PG = process.env.BENCH_PG ?? 'postgres://postgres@127.0.0.1:5432';
/** Bench databases are named <prefix>_<rows>; another prefix keeps runs of different checkouts apart. */
const DB_PREFIX = process.env.BENCH_DB_PREFIX ?? 'ruleperf_bench';
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';

const { values: flags } = parseArgs({
  options: {
    scale: { type: 'string', default: '45m' },
    quick: { type: 'boolean', default: false },
    sections: { type: 'string', default: 'rollups,queries,floor,traffic,overload,freshness' },
    rules: { type: 'string', default: String(DEFAULT_CARDINALITY.rules) },
    parsers: { type: 'string', default: String(DEFAULT_CARDINALITY.parsers) },
    'floor-connections': { type: 'string' },
    'floor-seconds': { type: 'string' },
    'floor-rounds': { type: 'string' },
    'wrk-threads': { type: 'string', default: '1' },
    pairs: { type: 'string' },
    'traffic-seconds': { type: 'string' },
    rebuild: { type: 'boolean', default: false },
    /** The bench databases' sketch functions: C where ruleperf_native is installed (auto), or PL/pgSQL (off). */
    native: { type: 'string', default: 'auto' },
    runs: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (flags.help) {
  console.log(
    'usage: npm run bench -- [--scale 45m|10m|1m|100m|<rows>[,…]] [--quick] [--sections startup,rollups,queries,floor,traffic,overload,freshness] [--rules 500[,5000]] [--parsers 30[,100]]\n' +
      '                        [--pairs 200] [--traffic-seconds 120] [--runs 3] [--floor-connections 10,100] [--floor-seconds 10] [--floor-rounds 5] [--wrk-threads 1] [--rebuild] [--native auto|off]'
  );
  process.exit(0);
}
const quick = flags.quick;
if (flags.native !== 'auto' && flags.native !== 'off') {
  console.error(`bench: --native must be auto or off, got "${flags.native}"`);
  process.exit(2);
}
const native = flags.native;
/** An option that cannot be read ends the run with its message (no stack trace). */
const option = <T>(read: () => T): T => {
  try {
    return read();
  } catch (err) {
    console.error(`bench: ${(err as Error).message}`);
    process.exit(2);
  }
};
const scales = option(() =>
  (quick ? '1m' : flags.scale!)
    .split(',')
    .map(parseScale)
    .sort((a, b) => a - b)
);
const sections = new Set(flags.sections!.split(','));
const pairs = Number(flags.pairs ?? (quick ? 20 : 200));
const trafficSeconds = Number(flags['traffic-seconds'] ?? (quick ? 25 : 120));
/** Service timings are repeated this many times (rows interleaved) and medians quoted. */
const runs = Number(flags.runs ?? (quick ? 1 : 3));
/** Data shapes: rules × parsers, paired by position (one --parsers value applies to every --rules value). */
const cards = option(() => cardinalities(flags.rules!, flags.parsers!));
const floorConnections = (flags['floor-connections'] ?? '10,100').split(',').map(Number);
option(() => {
  if (
    !floorConnections.every((c) => Number.isInteger(c) && c > 0) ||
    !Number.isInteger(Number(flags['wrk-threads'])) ||
    Number(flags['wrk-threads']) < 1
  ) {
    throw new Error('--floor-connections and --wrk-threads take whole numbers ≥ 1');
  }
});
const floorSeconds = Number(flags['floor-seconds'] ?? (quick ? 3 : 10));
const floorRounds = Number(flags['floor-rounds'] ?? (quick ? 3 : 5));
const reps = (base: number) => (quick ? Math.max(3, Math.round(base / 5)) : base);

const out: string[] = [];
const figures: Record<string, unknown> = {
  date: new Date().toISOString(),
  quick,
  scales,
  machine: { cores: require('node:os').cpus().length, node: process.version },
};
const say = (s = '') => {
  console.log(s);
  out.push(s);
};
const label = rowsLabel;

const historyOptions = (rows: number, days: number, end: Date, card: Cardinality) => ({
  days,
  rowsPerHour: Math.round(rows / 720),
  rules: card.rules,
  parsers: card.parsers,
  seed: 42,
  end,
  method: 'copy' as const,
});

/**
 * A reused database ends where it was built: its last (partial) hour and the hours since are
 * loaded again, through the current hour, so "the last hour" holds rows like a live system's.
 */
async function topUp(url: string, rows: number, card: Cardinality) {
  const pool = new Pool({ connectionString: url, max: 2 });
  const { rows: found } = await pool.query('SELECT max(time) AS last FROM metrics');
  const from = Math.floor((found[0].last as Date).getTime() / HOUR) * HOUR;
  const end = Math.floor(Date.now() / HOUR) * HOUR + HOUR;
  await pool.query('DELETE FROM metrics WHERE time >= $1', [new Date(from)]);
  const hours = (end - from) / HOUR;
  await generateHistory(pool, historyOptions(rows, hours / 24, new Date(end), card), () => undefined);
  await pool.end();
  say(`loaded the ${hours} hour(s) since it was built, through the current hour`);
}

/**
 * As the service's scheduler would have it: no rows stamped after now (a live system has
 * none) and rollups refreshed up to now, so they match the raw rows (a reloaded hour was
 * materialized before) and the live edge is minutes, not hours.
 */
async function makeCurrent(url: string) {
  const pool = new Pool({ connectionString: url, max: 1 });
  await pool.query('DELETE FROM metrics WHERE time > now()');
  // Deleted rows (these, and a reloaded hour's) sit on the pages the live edge is read from
  // until a vacuum clears them, and a server without autovacuum (as here) never would.
  await pool.query('VACUUM metrics');
  await refreshRollups(pool, 'postgres');
  await pool.end();
}

/** A benchmark database per scale and cardinality (default: 500 rules, 30 parsers): 30 days, reused while recent. */
const builtThisRun = new Set<string>();
async function benchDatabase(
  rows: number,
  card: Cardinality = DEFAULT_CARDINALITY
): Promise<{ url: string; load?: { rowsPerSecond: number; seconds: number }; refreshSeconds?: number }> {
  const name = `${DB_PREFIX}_${rows}${card.suffix}`;
  const rebuild = flags.rebuild && !builtThisRun.has(name);
  builtThisRun.add(name);
  const url = `${PG}/${name}`;
  const admin = new Client({ connectionString: `${PG}/postgres` });
  await admin.connect();
  const exists = (await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount;
  if (exists && !rebuild) {
    const c = new Client({ connectionString: url });
    await c.connect();
    const meta = await c
      .query(`SELECT built_at FROM bench_meta WHERE rows = $1 AND built_at > now() - interval '6 hours'`, [rows])
      .catch(() => ({ rowCount: 0, rows: [] }));
    await c.end();
    if (meta.rowCount) {
      await admin.end();
      say(`reusing ${name} (built ${meta.rows[0].built_at.toISOString()}; --rebuild to start over)`);
      const upgrade = new Pool({ connectionString: url, max: 1 });
      await migrate(upgrade, { flavour: 'postgres', native }); // a database built by an older checkout
      await upgrade.end();
      await topUp(url, rows, card);
      await makeCurrent(url);
      return { url };
    }
  }
  await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const pool = new Pool({ connectionString: url, max: 2 });
  await migrate(pool, { flavour: 'postgres', native });
  const options = historyOptions(rows, 30, new Date(Math.floor(Date.now() / HOUR) * HOUR), card);
  const progress = rowsProgress(`loading ${label(rows)}${card.suffix}`, plannedRows(options));
  await generateHistory(pool, options, (n) => progress.add(n));
  const load = progress.stop();
  const t = performance.now();
  const bar = rollupsProgress();
  await refreshEachRollup(pool, 'postgres', { until: new Date(Date.now() - 10 * 60_000), onStep: bar.onStep }).finally(
    () => bar.stop()
  );
  const refreshSeconds = (performance.now() - t) / 1000;
  await pool.query('ANALYZE');
  await pool.query('CREATE TABLE bench_meta (rows bigint, built_at timestamptz DEFAULT now())');
  await pool.query('INSERT INTO bench_meta (rows) VALUES ($1)', [rows]);
  await pool.end();
  say(
    `built ${name}: ${load.rows.toLocaleString('en')} rows at ${Math.round(load.rowsPerSecond).toLocaleString('en')} rows/s; first refresh ${refreshSeconds.toFixed(1)} s`
  );
  await makeCurrent(url);
  return { url, load: { rowsPerSecond: load.rowsPerSecond, seconds: load.seconds }, refreshSeconds };
}

interface AdrRow {
  name: string;
  source: string;
  spanMs: number;
  query: Record<string, unknown>;
  raw: keyof typeof RAW_SQL;
}
const ADR_ROWS: AdrRow[] = [
  { name: 'Last 1 hour aggregate', source: 'Hourly', spanMs: HOUR, query: { kind: 'stats' }, raw: 'stats' },
  { name: 'Last 24 hours aggregate', source: 'Hourly', spanMs: DAY, query: { kind: 'stats' }, raw: 'stats' },
  { name: 'Last 7 days aggregate', source: 'Daily', spanMs: 7 * DAY, query: { kind: 'stats' }, raw: 'stats' },
  { name: 'Last 30 days aggregate', source: 'Daily', spanMs: 30 * DAY, query: { kind: 'stats' }, raw: 'stats' },
  {
    name: 'Top 10 slowest rules (7 days)',
    source: 'Daily',
    spanMs: 7 * DAY,
    query: { kind: 'topRules', limit: 10 },
    raw: 'topRules',
  },
  {
    name: 'Error breakdown (30 days)',
    source: 'Daily',
    spanMs: 30 * DAY,
    query: { kind: 'errorBreakdown', groupBy: 'ruleCategory', limit: 10 },
    raw: 'errorBreakdown',
  },
  {
    name: 'Per-rule timeseries (24 hours)',
    source: 'Hourly',
    spanMs: DAY,
    query: {
      kind: 'timeseries',
      ruleId: 'rule-0001',
      metrics: ['executionCount', 'p50ExecutionTimeMs', 'p95ExecutionTimeMs', 'p99ExecutionTimeMs'],
    },
    raw: 'ruleTimeseries',
  },
];

const body = (row: AdrRow, now = Date.now()) => ({
  range: { from: now - row.spanMs, to: now },
  intervalMs: 60_000,
  maxDataPoints: 1000,
  queries: [{ refId: 'A', ...row.query }],
});

async function timeService(
  svc: ServiceProcess,
  row: AdrRow,
  n: number
): Promise<{ server: Summary; client: Summary; tiers: string; cache: string }> {
  const server: number[] = [];
  const client: number[] = [];
  let tiers = '';
  let cache = '';
  for (let i = 0; i < n; i++) {
    const r = await post(`${svc.url}/api/v1/query`, body(row));
    if (r.status !== 200) {
      throw new Error(`${row.name}: HTTP ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
    }
    server.push(r.serverMs);
    client.push(r.clientMs);
    const meta = r.body.results.A.frames[0]?.schema.meta.custom;
    tiers = meta?.tiers.join('+') ?? '';
    cache = meta?.cache ?? '';
  }
  return { server: summarize(server), client: summarize(client), tiers, cache };
}

async function timeRaw(url: string, row: AdrRow, n: number): Promise<Summary> {
  const c = new Client({ connectionString: url });
  await c.connect();
  await c.query('SET max_parallel_workers_per_gather = 2');
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    const now = Date.now();
    const params: unknown[] = [new Date(now - row.spanMs), new Date(now)];
    if (row.raw === 'ruleTimeseries') {
      params.push('rule-0001');
    }
    const t = performance.now();
    await c.query(RAW_SQL[row.raw], params);
    samples.push(performance.now() - t);
  }
  await c.end();
  return summarize(samples);
}

async function redisFlushPrefix(redis: Redis, prefix: string) {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `{${prefix}}:*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length) {
      await redis.del(...keys);
    }
  } while (cursor !== '0');
}

async function main() {
  say(
    `# ruleperf benchmark — ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC${quick ? ' (quick)' : ''}`
  );
  say(
    `\nMachine: ${require('node:os').cpus().length} cores, Node ${process.version}; native PostgreSQL and Redis on 127.0.0.1. Sketch functions: ${native === 'off' ? 'PL/pgSQL (--native off)' : 'C where the ruleperf_native extension is installed (--native auto)'}. Latencies are measured at the server (Server-Timing) unless marked client.`
  );
  const redis = new Redis(REDIS_URL);
  const scaling: Array<{ rows: number; uncached: number; raw: number; cached: number }> = [];
  const byCardinality: CardinalityRow[] = [];

  if (sections.has('startup')) {
    figures.startup = await startupBench({ quick, say });
  }

  if (sections.has('rollups')) {
    const r = await rollupBench(PG, { quick, say, pairs, largest: scales[scales.length - 1], scales, benchDatabase });
    figures.rollups = r;
  }

  // Each scale at each cardinality; the first cardinality is the one charted and loaded with traffic.
  for (const { rows, card } of scales.flatMap((rows) => cards.map((card) => ({ rows, card })))) {
    if (!['queries', 'floor', 'traffic', 'overload', 'freshness'].some((name) => sections.has(name))) {
      break;
    }
    const main = card === cards[0];
    if (!main && !sections.has('queries')) {
      continue;
    } // other data shapes only feed the query and cardinality tables
    say(`\n## ${label(rows)} rows over 30 days, ${cardinalityLabel(card)}`);
    const db = await benchDatabase(rows, card);
    const perScale: Record<string, unknown> = { rows, rules: card.rules, parsers: card.parsers, build: db };
    figures[`scale_${rows}${card.suffix}`] = perScale;

    if (sections.has('queries')) {
      const uncachedSvc = await startServiceProcess({
        DATABASE_URL: db.url,
        CACHE_ENABLED: 'false',
        REFRESH_SCHEDULER: 'off',
        WARM_ON_START: 'false',
      });
      const prefix = `bench-${process.pid}-${rows}${card.suffix}`;
      // Near cache off: every timed hit is a Redis round trip (the traffic section runs the defaults).
      const cachedSvc = await startServiceProcess({
        DATABASE_URL: db.url,
        REDIS_URL,
        CACHE_PREFIX: prefix,
        REFRESH_SCHEDULER: 'off',
        WARM_ON_START: 'false',
        CACHE_NEAR_LEASE_MS: '0',
      });
      const rowsOut: string[][] = [];
      const results: Record<string, unknown> = {};
      const bar = new SingleBar({
        format: `timing queries [{bar}] {value}/{total} {row}`,
        noTTYOutput: !process.stderr.isTTY,
        notTTYSchedule: 5000,
        stream: process.stderr,
      });
      bar.start(ADR_ROWS.length * runs, 0, { row: '' });
      // Each run times every row once (miss, then hit); rows interleave across runs so a noisy
      // minute on this shared machine does not land on one row only.
      const timed = new Map<
        string,
        { miss: Array<Awaited<ReturnType<typeof timeService>>>; hit: Array<Awaited<ReturnType<typeof timeService>>> }
      >();
      for (let run = 0; run < runs; run++) {
        for (const row of ADR_ROWS) {
          bar.update({ row: `${row.name}${runs > 1 ? ` (run ${run + 1}/${runs})` : ''}` });
          const t = timed.get(row.name) ?? { miss: [], hit: [] };
          t.miss.push(await timeService(uncachedSvc, row, reps(50)));
          await post(`${cachedSvc.url}/api/v1/query`, body(row));
          t.hit.push(await timeService(cachedSvc, row, reps(200)));
          timed.set(row.name, t);
          bar.increment();
        }
      }
      for (const row of ADR_ROWS) {
        const t = timed.get(row.name)!;
        const miss = {
          ...t.miss[0],
          server: medianOfRuns(t.miss.map((x) => x.server)),
          client: medianOfRuns(t.miss.map((x) => x.client)),
        };
        const hit = {
          ...t.hit[0],
          server: medianOfRuns(t.hit.map((x) => x.server)),
          client: medianOfRuns(t.hit.map((x) => x.client)),
        };
        const rawRuns = rows >= 20e6 ? (quick ? 1 : 3) : reps(10);
        const raw = await timeRaw(db.url, row, rawRuns);
        rowsOut.push(
          latencyRow(row.name, miss.tiers, 'Hit', hit.server),
          latencyRow(row.name, miss.tiers, 'Miss', miss.server),
          latencyRow(row.name, 'raw table', '—', raw)
        );
        results[row.name] = {
          tiers: miss.tiers,
          hit: hit.server,
          hitClient: hit.client,
          miss: miss.server,
          missClient: miss.client,
          missRunsP95: t.miss.map((x) => x.server.p95),
          hitRunsP95: t.hit.map((x) => x.server.p95),
          raw,
          hitCacheStatus: hit.cache,
          speedupVsRaw: raw.p95 / hit.server.p95,
          uncachedSpeedupVsRaw: raw.p95 / miss.server.p95,
        };
      }
      bar.stop();
      perScale.queries = results;
      say(`\n### Query latency (ADR "Performance Benchmarks" layout; Data Source = tiers that answered)\n`);
      say(
        `Hit and Miss: medians over ${runs} run${runs > 1 ? 's' : ''} of ${reps(200)} hits / ${reps(50)} misses each (per-run p95s in the JSON); raw table: one run. Hits here are Redis round trips (near cache off); the traffic section runs the defaults.\n`
      );
      say(table(LATENCY_HEADERS, rowsOut));
      const s30 = results['Last 30 days aggregate'] as { miss: Summary; raw: Summary; hit: Summary };
      say(
        `\nADR reports 3,200 ms (raw 30-day scan) → 180 ms (aggregates) → 8 ms (Redis). Here: raw ${ms(s30.raw.p95)} → uncached ${ms(s30.miss.p95)} (${(s30.raw.p95 / s30.miss.p95).toFixed(0)}×) → cached ${ms(s30.hit.p95)} (${(s30.raw.p95 / s30.hit.p95).toFixed(0)}× faster than raw), p95.`
      );
      if (main) {
        scaling.push({ rows, uncached: s30.miss.p95, raw: s30.raw.p95, cached: s30.hit.p95 });
      }
      const grouped = (name: string) => results[name] as { miss: Summary; hit: Summary };
      byCardinality.push({
        rows,
        card,
        topRules: grouped('Top 10 slowest rules (7 days)'),
        errorBreakdown: grouped('Error breakdown (30 days)'),
      });
      await uncachedSvc.stop();
      await cachedSvc.stop();
      await redisFlushPrefix(redis, prefix);
    }

    // The overload figures are quoted at 10M rows where that scale runs, else at the largest.
    if (sections.has('overload') && main && rows === (scales.includes(10e6) ? 10e6 : scales[scales.length - 1])) {
      const prefix = `bench-overload-${process.pid}`;
      perScale.overload = await overloadBench({ dbUrl: db.url, redisUrl: REDIS_URL, prefix, quick, say });
      await redisFlushPrefix(redis, prefix);
    }
    if (sections.has('freshness') && main && rows === (scales.includes(10e6) ? 10e6 : scales[scales.length - 1])) {
      const prefix = `bench-freshness-${process.pid}`;
      perScale.freshness = await freshnessBench({ dbUrl: db.url, redisUrl: REDIS_URL, prefix, quick, say });
      await redisFlushPrefix(redis, prefix);
    }

    const loaded = main && rows === scales[scales.length - 1];
    let floor: Awaited<ReturnType<typeof floorBench>> | undefined;
    if (sections.has('floor') && loaded) {
      floor = await floorBench({
        dbUrl: db.url,
        redis,
        redisUrl: REDIS_URL,
        quick,
        say,
        flush: redisFlushPrefix,
        connections: floorConnections,
        rounds: floorRounds,
        seconds: floorSeconds,
        threads: Number(flags['wrk-threads']),
      });
      perScale.floor = floor;
    }
    if (sections.has('traffic') && loaded) {
      perScale.traffic = await trafficBench({
        dbUrl: db.url,
        redis,
        redisUrl: REDIS_URL,
        seconds: trafficSeconds,
        quick,
        say,
        flush: redisFlushPrefix,
        floor: floor?.summaries && floor.server ? { summaries: floor.summaries, server: floor.server } : floor?.skipped,
      });
    }
  }

  if (byCardinality.length && (cards.length > 1 || cards[0].suffix !== '')) {
    say(`\n## Cardinality: the rule-grouped panels as rules and parsers grow (p95 at the server, medians over runs)\n`);
    say(cardinalityTable(byCardinality, label));
  }
  figures.cardinality = byCardinality;

  if (scaling.length > 1) {
    say(`\n## Uncached latency against data size (30-day aggregate, p95)\n`);
    say(
      table(
        ['Rows', 'Raw table', 'ruleperf uncached', 'ruleperf cached'],
        scaling.map((s) => [label(s.rows), ms(s.raw), ms(s.uncached), ms(s.cached)])
      )
    );
    const svg = latencyChart(
      [
        { name: 'raw table', points: scaling.map((s) => [s.rows, s.raw]) },
        { name: 'ruleperf uncached', points: scaling.map((s) => [s.rows, s.uncached]) },
        { name: 'ruleperf cached', points: scaling.map((s) => [s.rows, s.cached]) },
      ],
      '30-day aggregate p95 vs data size'
    );
    const stamp = new Date().toISOString().slice(0, 10);
    writeFileSync(join(__dirname, 'results', `${stamp}-scaling.svg`), svg);
    say(`\n![latency vs data size](${stamp}-scaling.svg)`);
  }
  figures.scaling = scaling;
  redis.disconnect();
  const stamp = `${new Date().toISOString().slice(0, 10)}${quick ? '-quick' : ''}`;
  const files = writeResults(join(__dirname, 'results'), stamp, out.join('\n') + '\n', figures);
  console.log(`\nwritten: ${files.md}, ${files.json}`);
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(`bench failed: ${err.stack ?? err}`);
    process.exit(1);
  }
);
