/**
 * The "floor" section (issue 18): ruleperf's cached path against what this machine can do at
 * all. One external client (wrk) sends the provisioned dashboard's nine panel requests, with
 * now-relative ranges, to ruleperf (defaults: near cache on, warmed) and to a bare Node `http`
 * server answering a fixed body of the same average size — same connections, back to back,
 * several rounds, the order alternating per round. Also: the average dashboard answer's size
 * and the part of it that is `meta.executedQueryString`, and what a long change log costs a
 * cache hit.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { loadavg } from 'node:os';
import type Redis from 'ioredis';
import { Client } from 'pg';
import { dashboardWarmItems } from '../../server/warming/warmer';
import { startServiceProcess } from '../../testkit/service-process';
import { dashboardRequests } from '../../testkit/load-model';
import { getText, metricSum, histogramBuckets, bucketDelta, quantileBracket } from '../../testkit/http';
import { luaScript, runWrk, wrkVersion, type WrkResult, type WrkShape } from './wrk';
import { measureDashboard, type DashboardSize } from './response-size';
import { median } from './stats';
import { table } from './report';
import { cpuSeconds } from './proc';

export type Target = 'ruleperf' | 'floor';

export interface FloorRun {
  round: number;
  connections: number;
  target: Target;
  result: WrkResult;
  /** CPU time (user + system, all threads) the answering process spent per answer, in µs. */
  cpuUsPerAnswer?: number;
}

/** Median and range over rounds. */
export interface Spread {
  median: number;
  min: number;
  max: number;
}

export interface FloorSummary {
  connections: number;
  rounds: number;
  ruleperf: { rps: Spread; p50: Spread; p99: Spread; cpuUs?: Spread };
  floor: { rps: Spread; p50: Spread; p99: Spread; cpuUs?: Spread };
  /** ruleperf requests/s ÷ floor requests/s, per round (each pair measured back to back). */
  ratio: Spread;
  failed: { ruleperf: number; floor: number };
}

export interface ServerSide {
  queries: number;
  hits: number;
  misses: number;
  /** Answered stale, or bypassing the cache (circuit open). */
  staleOrBypass: number;
  nearShare: number;
  /** Share of cached queries the service answered within 0.5 ms and 1 ms (its histogram). */
  within05ms: number;
  within1ms: number;
  p50: { lower: number; upper: number };
  p99: { lower: number; upper: number };
}

export const TARGETS = { requestsShare: 0.7, p50Ms: 1, responseBytes: 4096 };

export function spread(values: number[]): Spread {
  return { median: median(values), min: Math.min(...values), max: Math.max(...values) };
}

/** Per connection count: medians and ranges over the rounds, and the per-round ratio. */
export function summarizeFloor(runs: FloorRun[]): FloorSummary[] {
  const counts = [...new Set(runs.map((r) => r.connections))].sort((a, b) => a - b);
  return counts.map((connections) => {
    const of = (t: Target) =>
      runs.filter((r) => r.connections === connections && r.target === t).sort((a, b) => a.round - b.round);
    const rp = of('ruleperf');
    const fl = of('floor');
    const side = (xs: FloorRun[]) => {
      const cpu = xs.flatMap((x) => (x.cpuUsPerAnswer === undefined ? [] : [x.cpuUsPerAnswer]));
      return {
        rps: spread(xs.map((x) => x.result.requestsPerSecond)),
        p50: spread(xs.map((x) => x.result.latencyMs.p50)),
        p99: spread(xs.map((x) => x.result.latencyMs.p99)),
        ...(cpu.length ? { cpuUs: spread(cpu) } : {}),
      };
    };
    const ratios = rp.flatMap((r) => {
      const f = fl.find((x) => x.round === r.round);
      return f ? [r.result.requestsPerSecond / f.result.requestsPerSecond] : [];
    });
    const failed = (xs: FloorRun[]) =>
      xs.reduce(
        (a, x) =>
          a +
          x.result.errors.status +
          x.result.errors.connect +
          x.result.errors.read +
          x.result.errors.write +
          x.result.errors.timeout,
        0
      );
    return {
      connections,
      rounds: Math.min(rp.length, fl.length),
      ruleperf: side(rp),
      floor: side(fl),
      ratio: spread(ratios),
      failed: { ruleperf: failed(rp), floor: failed(fl) },
    };
  });
}

const int = (v: number) => Math.round(v).toLocaleString('en');
const msText = (v: number) => (v < 10 ? v.toFixed(2) : v.toFixed(1));
const pct = (v: number) => `${Math.round(v * 100)} %`;
const rangeOf = (s: Spread, f: (v: number) => string) => (s.min === s.max ? '' : ` (${f(s.min)}–${f(s.max)})`);
const boundMs = (s: number) => (s === Infinity ? '∞' : `${+(s * 1000).toFixed(3)} ms`);
/** A quantile known to a histogram bucket: "≤ 0.5 ms", or "in (1 ms, 2 ms]". */
export const bracketText = (b: { lower: number; upper: number }) =>
  Number.isNaN(b.upper)
    ? 'not observed'
    : b.lower === 0
      ? `≤ ${boundMs(b.upper)}`
      : `in (${boundMs(b.lower)}, ${boundMs(b.upper)}]`;

/** The floor table: each ruleperf figure beside the floor's, the ratio and the target. */
export function floorTable(summaries: FloorSummary[]): string {
  const rows: string[][] = [];
  for (const s of summaries) {
    const c = `${s.connections}`;
    rows.push([
      c,
      'requests/s',
      `${int(s.ruleperf.rps.median)}${rangeOf(s.ruleperf.rps, int)}`,
      `${int(s.floor.rps.median)}${rangeOf(s.floor.rps, int)}`,
      `${pct(s.ratio.median)}${rangeOf(s.ratio, pct)}`,
      `≥ ${pct(TARGETS.requestsShare)} of the floor`,
    ]);
    rows.push([
      c,
      'client p50',
      `${msText(s.ruleperf.p50.median)} ms${rangeOf(s.ruleperf.p50, msText)}`,
      `${msText(s.floor.p50.median)} ms${rangeOf(s.floor.p50, msText)}`,
      `${(s.ruleperf.p50.median / s.floor.p50.median).toFixed(1)}×`,
      s.connections === 10 ? `≤ ${TARGETS.p50Ms} ms` : '',
    ]);
    rows.push([
      c,
      'client p99',
      `${msText(s.ruleperf.p99.median)} ms${rangeOf(s.ruleperf.p99, msText)}`,
      `${msText(s.floor.p99.median)} ms${rangeOf(s.floor.p99, msText)}`,
      `${(s.ruleperf.p99.median / s.floor.p99.median).toFixed(1)}×`,
      '',
    ]);
    if (s.ruleperf.cpuUs && s.floor.cpuUs) {
      const r = s.ruleperf.cpuUs;
      const f = s.floor.cpuUs;
      // On an otherwise idle core, throughput is the inverse of CPU per answer: this ratio is what the requests/s ratio tends to when the machine is quiet.
      rows.push([
        c,
        'server CPU per answer',
        `${int(r.median)} µs${rangeOf(r, int)}`,
        `${int(f.median)} µs${rangeOf(f, int)}`,
        `${pct(f.median / r.median)} (floor CPU ÷ ruleperf CPU)`,
        `≥ ${pct(TARGETS.requestsShare)}`,
      ]);
    }
    if (s.failed.ruleperf || s.failed.floor) {
      rows.push([
        c,
        'FAILED requests (non-2xx, socket errors)',
        String(s.failed.ruleperf),
        String(s.failed.floor),
        '',
        '0',
      ]);
    }
  }
  return table(
    ['Connections', 'Figure (wrk, client side)', 'ruleperf, cached', 'bare Node floor', 'ruleperf ÷ floor', 'Target'],
    rows
  );
}

/** The response-size table. */
export function sizeTable(size: DashboardSize, wireBytes?: { ruleperf: number; floor: number }): string {
  const rows: string[][] = [
    [
      `Average dashboard answer (JSON body as the plugin asks it, compactTime, mean of ${size.panels.length} panels)`,
      `${int(size.averageBytes)} bytes`,
      `≤ ${int(TARGETS.responseBytes)} bytes (4 KB)`,
    ],
    [
      '… of which meta.executedQueryString',
      `${int(size.averageExecutedQueryBytes)} bytes (${(size.executedQueryShare * 100).toFixed(1)} %)`,
      'still present and readable',
    ],
    ['… without executedQueryString', `${int(size.averageBytes - size.averageExecutedQueryBytes)} bytes`, ''],
    [
      '… to a client that does not ask for compactTime (every timestamp written out)',
      `${int(size.averagePlainBytes)} bytes`,
      'the plugin asks for it',
    ],
    [
      'Average dashboard answer on the wire to a client accepting gzip (a browser, through the data proxy)',
      `${int(size.averageGzipBytes)} bytes (${((size.averageGzipBytes / size.averageBytes) * 100).toFixed(0)} % of the JSON)`,
      `≤ ${int(TARGETS.responseBytes)} bytes (4 KB)`,
    ],
  ];
  if (wireBytes) {
    rows.push([
      'Bytes read per answer by wrk (headers + body): ruleperf / floor',
      `${int(wireBytes.ruleperf)} / ${int(wireBytes.floor)}`,
      'the floor answers a body of the same average size',
    ]);
  }
  return table(['Figure', 'ruleperf', 'Target'], rows);
}

export function serverSideText(s: ServerSide): string {
  return (
    `Server side over ruleperf's wrk runs (its /metrics): ${int(s.queries)} queries, ${int(s.hits)} hits, ${int(s.misses)} misses, ${int(s.staleOrBypass)} stale or bypassing (${(s.nearShare * 100).toFixed(1)} % of hits from the near cache); ` +
    `cache lookup + answer (query_duration_seconds, cache="hit") p50 ${bracketText(s.p50)}, p99 ${bracketText(s.p99)}; ` +
    `${(s.within05ms * 100).toFixed(1)} % within 0.5 ms, ${(s.within1ms * 100).toFixed(1)} % within 1 ms.`
  );
}

export function startFloorServer(
  bodyBytes: number
): Promise<{ url: string; child: ChildProcess; stop(): Promise<void> }> {
  const child = spawn(process.execPath, [join(__dirname, 'floor-server.mjs')], {
    env: { ...process.env, FLOOR_BODY_BYTES: String(bodyBytes) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => reject(new Error(`floor server did not start: ${output}`)), 10_000);
    const onData = (c: Buffer) => {
      output += c;
      const m = /ready at (http:\/\/\S+)/.exec(output);
      if (!m) {
        return;
      }
      clearTimeout(timer);
      resolve({
        url: m[1],
        child,
        stop: () =>
          new Promise<void>((done) => {
            if (child.exitCode !== null) {
              return done();
            }
            child.once('exit', () => done());
            child.kill('SIGTERM');
          }),
      });
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`floor server exited (${code}): ${output}`)));
  });
}

/** Changes the change-log check adds (a busy database keeps thousands for two entry lifetimes). */
export const CHANGE_LOG_ROWS = 5000;

export interface ChangeLogCost {
  changes: number;
  /** CPU per cached answer (µs) just before the changes were added, and with them kept. */
  beforeUs: number;
  afterUs: number;
}

async function medianOf(n: number, measure: () => Promise<number>): Promise<number> {
  const values: number[] = [];
  for (let i = 0; i < n; i++) {
    values.push(await measure());
  }
  return median(values);
}

/**
 * What a long change log costs a cache hit: ruleperf's CPU per answer (median of three wrk runs), then
 * again once CHANGE_LOG_ROWS changes (raw ranges 400 days back, outside every panel's range)
 * have reached the service; the rows are deleted afterwards. A hit that walked the log would
 * cost tens of µs more with them (server/db/change-feed.ts `versionOf`).
 */
async function changeLogCost(dbUrl: string, measure: () => Promise<number>, settleMs: number): Promise<ChangeLogCost> {
  const db = new Client({ connectionString: dbUrl });
  await db.connect();
  let ids: number[] = [];
  try {
    const beforeUs = await medianOf(3, measure);
    const { rows } = await db.query(
      `INSERT INTO ruleperf_changes (lo, hi)
       SELECT now() - interval '400 days' - g * interval '1 minute', now() - interval '400 days' - g * interval '1 minute' + interval '30 seconds'
       FROM generate_series(1, $1) g RETURNING id`,
      [CHANGE_LOG_ROWS]
    );
    ids = rows.map((r) => Number(r.id));
    await new Promise((r) => setTimeout(r, settleMs));
    return { changes: ids.length, beforeUs, afterUs: await medianOf(3, measure) };
  } finally {
    if (ids.length) {
      await db.query('DELETE FROM ruleperf_changes WHERE id = ANY($1::bigint[])', [ids]);
    }
    await db.end();
  }
}

export function changeLogText(c: ChangeLogCost | { error: string }): string {
  if ('error' in c) {
    return `Change log: not measured (${c.error}).`;
  }
  return (
    `Change log: CPU per cached answer ${Math.round(c.afterUs)} µs with ${int(c.changes)} more changes kept, ` +
    `${Math.round(c.beforeUs)} µs just before (medians of three wrk runs, ×${(c.afterUs / c.beforeUs).toFixed(2)}; ` +
    'a hit that walked the log would cost tens of µs more).'
  );
}

const panelLabel = (q: Record<string, unknown>) =>
  `${q.kind}${Array.isArray(q.metrics) ? ` (${(q.metrics as string[]).join(', ')})` : ''}`;

export async function floorBench(o: {
  dbUrl: string;
  redis: Redis;
  redisUrl: string;
  quick: boolean;
  say: (s: string) => void;
  flush: (r: Redis, prefix: string) => Promise<void>;
  connections: number[];
  rounds: number;
  seconds: number;
  threads: number;
}) {
  const say = o.say;
  say(`\n### Floor: ruleperf's cached path against a bare Node server (wrk, client side)\n`);
  const version = wrkVersion();
  if (!version) {
    say(
      '**wrk is not installed: the floor section was skipped.** Install it with `apt-get install wrk` (`.ci/run` does) and run again.'
    );
    return { skipped: 'wrk is not installed' };
  }
  const prefix = `bench-floor-${process.pid}`;
  const svc = await startServiceProcess({
    DATABASE_URL: o.dbUrl,
    REDIS_URL: o.redisUrl,
    CACHE_PREFIX: prefix,
    REFRESH_SCHEDULER: 'off',
    WARM_ON_START: 'true',
    DB_POOL_MAX: '10',
  });
  let floor: Awaited<ReturnType<typeof startFloorServer>> | undefined;
  try {
    const panels = dashboardWarmItems(join(__dirname, '..', '..', 'provisioning', 'dashboards'));
    const requests = dashboardRequests(panels, Date.now(), {}).map((body) => {
      body.queries[0].refId = 'A';
      return { panel: panelLabel(body.queries[0] as Record<string, unknown>), body };
    });
    await new Promise((r) => setTimeout(r, 3000)); // start-up warming
    const size = await measureDashboard(svc.url, requests);
    floor = await startFloorServer(Math.round(size.averageBytes));
    const shapes: WrkShape[] = requests.map(({ body }) => {
      const { range, ...rest } = body;
      return { spanMs: Number(range.to) - Number(range.from), rest };
    });
    const script = luaScript(shapes, { path: '/api/v1/query' });
    const urls: Record<Target, string> = { ruleperf: svc.url, floor: floor.url };
    const pids: Record<Target, number | undefined> = { ruleperf: svc.child.pid, floor: floor.child.pid };
    const load = loadavg()[0];

    /** One wrk run against `target`, with the CPU its process spent per answer (when /proc tells). */
    const timedRun = async (target: Target, connections: number) => {
      const cpu0 = cpuSeconds(pids[target]);
      const result = await runWrk({ url: urls[target], script, connections, threads: o.threads, seconds: o.seconds });
      const cpu = cpuSeconds(pids[target]) - cpu0;
      return {
        result,
        ...(Number.isFinite(cpu) && result.requests ? { cpuUsPerAnswer: (cpu * 1e6) / result.requests } : {}),
      };
    };

    // Warm both (JIT, sockets, every panel's key) before anything is timed.
    for (const t of ['ruleperf', 'floor'] as Target[]) {
      await runWrk({ url: urls[t], script, connections: o.connections[0], threads: o.threads, seconds: 2 });
    }
    const before = await getText(`${svc.url}/metrics`);
    const runs: FloorRun[] = [];
    const total = o.rounds * o.connections.length * 2;
    for (let round = 0; round < o.rounds; round++) {
      for (const connections of o.connections) {
        const order: Target[] = round % 2 === 0 ? ['ruleperf', 'floor'] : ['floor', 'ruleperf'];
        for (const target of order) {
          process.stderr.write(
            `\rfloor: ${runs.length + 1}/${total} (${target}, ${connections} connections, round ${round + 1})   `
          );
          runs.push({ round, connections, target, ...(await timedRun(target, connections)) });
        }
      }
    }
    process.stderr.write('\n');
    const after = await getText(`${svc.url}/metrics`);
    const changeLog = await changeLogCost(
      o.dbUrl,
      async () => (await timedRun('ruleperf', o.connections[0])).cpuUsPerAnswer ?? NaN,
      2000
    ).catch((err: Error) => ({ error: err.message }));
    const delta = (name: string, label = '') => metricSum(after, name, label) - metricSum(before, name, label);
    const hitBuckets = bucketDelta(
      histogramBuckets(before, 'ruleperf_query_duration_seconds', ['cache="hit"']),
      histogramBuckets(after, 'ruleperf_query_duration_seconds', ['cache="hit"'])
    );
    const hitsTimed = quantileBracket(hitBuckets, 1).count;
    const server: ServerSide = {
      queries: delta('ruleperf_cache_requests_total'),
      hits: delta('ruleperf_cache_requests_total', 'result="hit"'),
      misses: delta('ruleperf_cache_requests_total', 'result="miss"'),
      staleOrBypass:
        delta('ruleperf_cache_requests_total', 'result="stale"') +
        delta('ruleperf_cache_requests_total', 'result="bypass"'),
      nearShare:
        delta('ruleperf_cache_near_hits_total') / Math.max(1, delta('ruleperf_cache_requests_total', 'result="hit"')),
      within05ms: (hitBuckets.get(0.0005) ?? 0) / Math.max(1, hitsTimed),
      within1ms: (hitBuckets.get(0.001) ?? 0) / Math.max(1, hitsTimed),
      p50: quantileBracket(hitBuckets, 0.5),
      p99: quantileBracket(hitBuckets, 0.99),
    };
    const summaries = summarizeFloor(runs);
    const wire = {
      ruleperf: median(runs.filter((r) => r.target === 'ruleperf').map((r) => r.result.bytesPerRequest)),
      floor: median(runs.filter((r) => r.target === 'floor').map((r) => r.result.bytesPerRequest)),
    };

    say(
      `${version}, ${o.threads} thread${o.threads > 1 ? 's' : ''}, the dashboard's ${requests.length} panel requests in turn (millisecond ranges ending within the last 2 s, as Grafana sends), ${o.seconds} s per run, ` +
        `${o.rounds} rounds (ruleperf and floor back to back, order alternating); medians over the rounds, the range in brackets is the machine's noise. ` +
        `ruleperf: service defaults (near cache on), warmed. Floor: bare Node \`http\` answering ${int(Math.round(size.averageBytes))} bytes. Load average at the start: ${load.toFixed(2)}.\n`
    );
    say(floorTable(summaries));
    say(`\n${serverSideText(server)}\n`);
    say(sizeTable(size, wire));
    say(`\n${changeLogText(changeLog)}\n`);
    return {
      wrk: version,
      threads: o.threads,
      seconds: o.seconds,
      rounds: o.rounds,
      loadAverage: load,
      summaries,
      server,
      size,
      wire,
      changeLog,
      runs: runs.map((r) => ({ round: r.round, connections: r.connections, target: r.target, ...r.result })),
    };
  } finally {
    await floor?.stop();
    await svc.stop();
    await o.flush(o.redis, prefix);
  }
}
