/**
 * The floor section's pieces: the wrk Lua script (run by the real wrk against a recording
 * server), wrk's output, the floor server, the floor and size tables, Prometheus histogram
 * brackets, cardinality options.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import http from 'node:http';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { luaScript, luaString, parseWrk, runWrk, wrkDurationMs, wrkVersion, type WrkResult } from '../../bench/lib/wrk';
import {
  changeLogText,
  floorTable,
  sizeTable,
  summarizeFloor,
  bracketText,
  type FloorRun,
} from '../../bench/lib/floor-bench';
import { procStatTicks } from '../../bench/lib/proc';
import { clientHeadline } from '../../bench/lib/traffic-bench';
import { executedQueryBytes, dashboardSize } from '../../bench/lib/response-size';
import { histogramBuckets, bucketDelta, quantileBracket } from '../../testkit/http';
import { cardinalities, cardinalityTable, DEFAULT_CARDINALITY } from '../../bench/lib/cardinality';
import { summarize } from '../../bench/lib/stats';

const WRK = wrkVersion();

/** A server that records every request (headers and body) and answers a small JSON body. */
async function recordingServer() {
  const seen: Array<{ method: string; url: string; headers: http.IncomingHttpHeaders; body: string; at: number }> = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      seen.push({
        method: req.method!,
        url: req.url!,
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        at: Date.now(),
      });
      res.writeHead(seen.length % 50 === 0 ? 503 : 200, { 'content-type': 'application/json' });
      res.end('{"ok":true}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    seen,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))),
  };
}

const shapes = [
  { spanMs: 86_400_000, rest: { intervalMs: 86_000, maxDataPoints: 1000, queries: [{ refId: 'A', kind: 'stats' }] } },
  {
    spanMs: 3_600_000,
    rest: { intervalMs: 4000, queries: [{ refId: 'A', kind: 'timeseries', metrics: ['p95ExecutionTimeMs'] }] },
  },
  // Quotes, backslashes, a newline and non-ASCII must reach the server byte for byte.
  {
    spanMs: 604_800_000,
    rest: { queries: [{ refId: 'A', kind: 'topRules', ruleCategory: 'we"ird\\cat\nnew — ünïcode ✓' }] },
  },
];

test(
  'the Lua script, run by the real wrk: every shape in turn, exact bodies, ranges in ms ending in the last two seconds',
  { skip: WRK ? false : 'wrk is not installed (apt-get install wrk)' },
  async () => {
    const server = await recordingServer();
    try {
      const script = luaScript(shapes, { path: '/api/v1/query', headers: { Authorization: 'Bearer t"k' } });
      const started = Date.now();
      const result = await runWrk({ url: server.url, script, connections: 1, threads: 1, seconds: 1 });
      assert.ok(server.seen.length >= 30, `wrk sent ${server.seen.length} requests`);
      // wrk counts answered requests; the server may have taken one more that was cut at the end.
      assert.ok(
        Math.abs(result.requests - server.seen.length) <= 1,
        `wrk ${result.requests} vs server ${server.seen.length}`
      );
      assert.equal(
        result.errors.status,
        server.seen.filter((_, i) => (i + 1) % 50 === 0 && i < result.requests).length,
        'non-2xx answers are counted'
      );
      const tos = new Set<number>();
      // wrk calls request() once to check the script before sending, so the cycle may start anywhere.
      const offset = shapes.findIndex(
        (s) => JSON.stringify(s.rest) === JSON.stringify({ ...JSON.parse(server.seen[0].body), range: undefined })
      );
      assert.ok(offset >= 0);
      server.seen.forEach((r, i) => {
        assert.equal(r.method, 'POST');
        assert.equal(r.url, '/api/v1/query');
        assert.equal(r.headers['content-type'], 'application/json');
        assert.equal(r.headers.authorization, 'Bearer t"k');
        assert.equal(Number(r.headers['content-length']), Buffer.byteLength(r.body));
        const body = JSON.parse(r.body);
        const shape = shapes[(i + offset) % shapes.length]; // one connection: strictly in turn
        const { range, ...rest } = body;
        assert.deepEqual(rest, shape.rest);
        assert.equal(range.to - range.from, shape.spanMs);
        assert.ok(Number.isInteger(range.to));
        assert.ok(
          range.to <= r.at && range.to >= Math.floor(started / 1000) * 1000 - 1000,
          `to=${range.to} at=${r.at}`
        );
        tos.add(range.to);
      });
      const ends = server.seen.map((r) => JSON.parse(r.body).range.to);
      assert.ok(
        ends.every((to, i) => i === 0 || to !== ends[i - 1]),
        'consecutive bodies differ (millisecond ranges)'
      );
      assert.ok(tos.size >= Math.min(500, ends.length / 2), `${tos.size} distinct range ends`);
      assert.ok(
        result.latencyMs.p50 > 0 &&
          result.latencyMs.p50 <= result.latencyMs.p99 &&
          result.latencyMs.p99 <= result.latencyMs.max
      );
      assert.ok(result.bytesPerRequest > 11, 'bytes read include headers and body');
    } finally {
      await server.close();
    }
  }
);

test('luaScript refuses what it cannot send; luaString escapes every byte that needs it', () => {
  assert.throws(() => luaScript([], { path: '/' }), /no request shapes/);
  assert.throws(() => luaScript([{ spanMs: 1, rest: {} }], { path: '/' }), /needs a body/);
  assert.equal(luaString('a"b\\c'), '"a\\"b\\\\c"');
  assert.equal(luaString('\n\u0000'), '"\\010\\000"');
  assert.equal(luaString('é'), '"\\195\\169"', 'UTF-8 bytes as decimal escapes');
  assert.equal(luaString(']]--'), '"]]--"');
});

const SAMPLE_TEXT = `Running 1s test @ http://127.0.0.1:18777/
  1 threads and 2 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.13ms    2.28ms  16.14ms   85.53%
    Req/Sec     1.18k   209.40     1.53k    70.00%
  Latency Distribution
     50%  850.00us
     75%    2.95ms
     90%    5.03ms
     99%   1.09s
  1171 requests in 1.00s, 1.70MB read
  Socket errors: connect 1, read 2, write 3, timeout 4
  Non-2xx or 3xx responses: 12
Requests/sec:   1168.87
Transfer/sec:      1.69MB
`;

test("wrk's output: the WRK_JSON line is preferred and exact; plain text is read with its units", () => {
  const json = parseWrk(
    SAMPLE_TEXT +
      'WRK_JSON {"requests":1171,"duration_us":1001825,"bytes":1778749,"errors":{"connect":0,"read":0,"write":0,"timeout":0,"status":5},"latency_us":{"mean":2134.818,"p50":1063,"p90":5030,"p99":10920,"p999":15000,"max":16140}}\n'
  );
  assert.equal(json.requests, 1171);
  assert.ok(Math.abs(json.requestsPerSecond - 1171 / 1.001825) < 1e-9);
  assert.ok(Math.abs(json.bytesPerRequest - 1778749 / 1171) < 1e-9);
  assert.deepEqual(json.latencyMs, { mean: 2.134818, p50: 1.063, p90: 5.03, p99: 10.92, p999: 15, max: 16.14 });
  assert.equal(json.errors.status, 5);

  const text = parseWrk(SAMPLE_TEXT);
  assert.equal(text.requests, 1171);
  assert.equal(text.seconds, 1);
  assert.equal(text.requestsPerSecond, 1168.87);
  assert.ok(Math.abs(text.bytesPerRequest - (1.7 * 1024 * 1024) / 1171) < 1e-9);
  assert.equal(text.latencyMs.p50, 0.85);
  assert.equal(text.latencyMs.p90, 5.03);
  assert.equal(text.latencyMs.p99, 1090);
  assert.equal(text.latencyMs.mean, 2.13);
  assert.equal(text.latencyMs.max, 16.14);
  assert.deepEqual(text.errors, { connect: 1, read: 2, write: 3, timeout: 4, status: 12 });

  assert.equal(wrkDurationMs('1.5m'), 90_000);
  assert.throws(() => wrkDurationMs('fast'), /cannot read/);
  assert.throws(() => parseWrk('unable to connect to 127.0.0.1:1 Connection refused'), /unexpected output/);
});

test('the floor server answers exactly the asked number of bytes of JSON, after reading the body', async () => {
  const child = spawn(process.execPath, [join(__dirname, '..', '..', 'bench', 'lib', 'floor-server.mjs')], {
    env: { ...process.env, FLOOR_BODY_BYTES: '6492' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      child.stdout!.on('data', (c: Buffer) => {
        const m = /ready at (\S+)/.exec(String(c));
        if (m) {
          resolve(m[1]);
        }
      });
      child.once('exit', (code) => reject(new Error(`exited ${code}`)));
    });
    const res = await fetch(`${url}/api/v1/query`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ range: { from: 0, to: 1 } }),
    });
    const text = await res.text();
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type')!, /application\/json/);
    assert.equal(Buffer.byteLength(text), 6492);
    assert.ok(JSON.parse(text).results);
  } finally {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
});

const wrkResult = (rps: number, p50: number, p99: number, status = 0): WrkResult => ({
  requests: rps * 10,
  seconds: 10,
  requestsPerSecond: rps,
  bytesPerRequest: 6700,
  latencyMs: { mean: p50, p50, p90: p99, p99, p999: p99, max: p99 },
  errors: { connect: 0, read: 0, write: 0, timeout: 0, status },
});

test('floor summary: medians over rounds, the ratio taken per round (back to back), failures shown', () => {
  const runs: FloorRun[] = [
    { round: 0, connections: 10, target: 'ruleperf', result: wrkResult(4000, 2, 6) },
    { round: 0, connections: 10, target: 'floor', result: wrkResult(10000, 0.7, 3) },
    { round: 1, connections: 10, target: 'floor', result: wrkResult(5000, 0.9, 4) }, // a noisy round: both slower
    { round: 1, connections: 10, target: 'ruleperf', result: wrkResult(2500, 3, 9, 2) },
    { round: 2, connections: 10, target: 'ruleperf', result: wrkResult(4400, 1.8, 5) },
    { round: 2, connections: 10, target: 'floor', result: wrkResult(11000, 0.6, 2) },
    { round: 0, connections: 100, target: 'ruleperf', result: wrkResult(7000, 12, 30), cpuUsPerAnswer: 140 },
    { round: 0, connections: 100, target: 'floor', result: wrkResult(14000, 6, 12), cpuUsPerAnswer: 42 },
  ];
  const [ten, hundred] = summarizeFloor(runs);
  assert.equal(ten.connections, 10);
  assert.equal(ten.rounds, 3);
  assert.deepEqual(ten.ruleperf.rps, { median: 4000, min: 2500, max: 4400 });
  assert.equal(ten.floor.p50.median, 0.7);
  assert.deepEqual(ten.ratio, { median: 0.4, min: 0.4, max: 0.5 }, 'per-round ratios 0.4, 0.5, 0.4');
  assert.deepEqual(ten.failed, { ruleperf: 2, floor: 0 });
  assert.equal(hundred.ratio.median, 0.5);

  const t = floorTable([ten, hundred]);
  const lines = t.split('\n');
  assert.match(lines[0], /Connections .*ruleperf, cached .*bare Node floor .*ruleperf ÷ floor .*Target/);
  assert.match(
    t,
    /\| 10 +\| requests\/s +\| 4,000 \(2,500–4,400\) +\| 10,000 \(5,000–11,000\) +\| 40 % \(40 %–50 %\) +\| ≥ 70 % of the floor/
  );
  assert.match(
    t,
    /\| 10 +\| client p50 +\| 2\.00 ms \(1\.80–3\.00\) +\| 0\.70 ms \(0\.60–0\.90\) +\| 2\.9× +\| ≤ 1 ms/
  );
  assert.match(t, /\| 10 +\| FAILED requests \(non-2xx, socket errors\) +\| 2 +\| 0/);
  assert.match(t, /\| 100 +\| requests\/s +\| 7,000 +\| 14,000 +\| 50 % +\|/, 'one round: no range');
  assert.ok(!/100 +\| FAILED/.test(t));
  assert.match(t, /\| 100 +\| server CPU per answer +\| 140 µs +\| 42 µs +\| 30 % \(floor CPU ÷ ruleperf CPU\)/);
  assert.ok(!/10 +\| server CPU/.test(t), 'no CPU row where it was not measured');
});

test('CPU time from /proc/<pid>/stat, whatever the command name holds', () => {
  const stat = (comm: string) =>
    `4242 (${comm}) S 1 4242 4242 0 -1 4194304 1000 0 0 0 1234 567 0 0 20 0 11 0 100 1000000 5000 18446744073709551615`;
  assert.equal(procStatTicks(stat('node')), 1801);
  assert.equal(procStatTicks(stat('we ird) (name')), 1801);
  assert.ok(procStatTicks(readFileSync('/proc/self/stat', 'utf8')) >= 0);
  assert.throws(() => procStatTicks('garbage'), /cannot read/);
});

test('the size table and executedQueryString bytes', () => {
  const answer = JSON.stringify({
    results: {
      A: {
        frames: [
          {
            schema: { meta: { executedQueryString: 'SELECT "a\\b"\nFROM x', custom: { cache: 'hit' } } },
            data: { values: [] },
          },
        ],
      },
    },
  });
  const sql = `,"executedQueryString":${JSON.stringify('SELECT "a\\b"\nFROM x')}`;
  assert.equal(executedQueryBytes(answer), Buffer.byteLength(sql));
  assert.equal(executedQueryBytes('{"executedQueryString":"é"}'), Buffer.byteLength('"executedQueryString":"é"'));
  assert.equal(executedQueryBytes('{"x":1}'), 0);
  assert.equal(
    executedQueryBytes('{"a":1,"executedQueryString":"x","b":2}'),
    Buffer.byteLength(',"executedQueryString":"x"'),
    'one comma goes with the member'
  );
  const size = dashboardSize([
    { panel: 'stats', bytes: 5000, executedQueryBytes: 4000, gzipBytes: 1500, plainBytes: 5000 },
    { panel: 'topRules', bytes: 3000, executedQueryBytes: 1000, gzipBytes: 900, plainBytes: 13000 },
  ]);
  assert.deepEqual(
    [
      size.averageBytes,
      size.averageExecutedQueryBytes,
      size.executedQueryShare,
      size.averageGzipBytes,
      size.averagePlainBytes,
    ],
    [4000, 2500, 0.625, 1200, 9000]
  );
  const t = sizeTable(size, { ruleperf: 4250, floor: 4180 });
  assert.match(t, /compactTime, mean of 2 panels\) +\| 4,000 bytes +\| ≤ 4,096 bytes \(4 KB\)/);
  assert.match(t, /executedQueryString +\| 2,500 bytes \(62\.5 %\)/);
  assert.match(t, /without executedQueryString +\| 1,500 bytes/);
  assert.match(t, /does not ask for compactTime .*\| 9,000 bytes/);
  assert.match(t, /4,250 \/ 4,180/);
  assert.match(t, /accepting gzip .*\| 1,200 bytes \(30 % of the JSON\) +\| ≤ 4,096 bytes/);
});

const METRICS = (hitFast: number, hitSlow: number) => `# TYPE ruleperf_query_duration_seconds histogram
ruleperf_query_duration_seconds_bucket{le="0.0005",kind="stats",cache="hit",tier="daily_total"} ${hitFast}
ruleperf_query_duration_seconds_bucket{le="0.001",kind="stats",cache="hit",tier="daily_total"} ${hitFast + hitSlow}
ruleperf_query_duration_seconds_bucket{le="0.002",kind="stats",cache="hit",tier="daily_total"} ${hitFast + hitSlow}
ruleperf_query_duration_seconds_bucket{le="+Inf",kind="stats",cache="hit",tier="daily_total"} ${hitFast + hitSlow}
ruleperf_query_duration_seconds_bucket{le="0.0005",kind="topRules",cache="hit",tier="daily_by_rule"} 10
ruleperf_query_duration_seconds_bucket{le="0.001",kind="topRules",cache="hit",tier="daily_by_rule"} 10
ruleperf_query_duration_seconds_bucket{le="0.002",kind="topRules",cache="hit",tier="daily_by_rule"} 10
ruleperf_query_duration_seconds_bucket{le="+Inf",kind="topRules",cache="hit",tier="daily_by_rule"} 10
ruleperf_query_duration_seconds_bucket{le="0.0005",kind="stats",cache="miss",tier="daily_total"} 0
ruleperf_query_duration_seconds_bucket{le="+Inf",kind="stats",cache="miss",tier="daily_total"} 7
ruleperf_query_duration_seconds_sum{kind="stats",cache="hit",tier="daily_total"} 0.1
`;

test('histogram buckets: summed over label sets, differenced between scrapes, quantiles bracketed by buckets', () => {
  const before = histogramBuckets(METRICS(100, 0), 'ruleperf_query_duration_seconds', ['cache="hit"']);
  assert.deepEqual(
    [...before],
    [
      [0.0005, 110],
      [0.001, 110],
      [0.002, 110],
      [Infinity, 110],
    ]
  );
  const after = histogramBuckets(METRICS(190, 20), 'ruleperf_query_duration_seconds', ['cache="hit"']);
  const d = bucketDelta(before, after);
  assert.deepEqual(
    [...d],
    [
      [0.0005, 90],
      [0.001, 110],
      [0.002, 110],
      [Infinity, 110],
    ]
  );
  assert.deepEqual(quantileBracket(d, 0.5), { lower: 0, upper: 0.0005, count: 110 });
  assert.deepEqual(quantileBracket(d, 0.99), { lower: 0.0005, upper: 0.001, count: 110 });
  assert.equal(bracketText(quantileBracket(d, 0.5)), '≤ 0.5 ms');
  assert.equal(bracketText(quantileBracket(d, 0.99)), 'in (0.5 ms, 1 ms]');
  assert.equal(bracketText(quantileBracket(new Map(), 0.5)), 'not observed');
  const misses = histogramBuckets(METRICS(0, 0), 'ruleperf_query_duration_seconds', ['cache="miss"']);
  assert.deepEqual(quantileBracket(misses, 0.5), { lower: 0.0005, upper: Infinity, count: 7 });
});

test('the traffic headline: wrk figures beside the floor and the server, or why they are missing', () => {
  const [s] = summarizeFloor([
    { round: 0, connections: 10, target: 'ruleperf', result: wrkResult(4327, 2.01, 6.3) },
    { round: 0, connections: 10, target: 'floor', result: wrkResult(13069, 0.69, 2) },
  ]);
  const server = {
    queries: 1000,
    hits: 1000,
    misses: 0,
    staleOrBypass: 0,
    nearShare: 1,
    within05ms: 0.95,
    within1ms: 0.999,
    p50: { lower: 0, upper: 0.0005 },
    p99: { lower: 0.0005, upper: 0.001 },
  };
  const rows = clientHeadline({ summaries: [s], server });
  assert.deepEqual(rows[0], [
    'Cached answer at the client, p50 / p99 (wrk, 10 connections, dashboard mix)',
    '2.01 ms / 6.30 ms',
    'bare Node floor: 0.69 ms / 2.00 ms; goal p50 ≤ 1 ms',
  ]);
  assert.deepEqual(rows[1], [
    'Cached requests/s at the client (wrk, 10 connections)',
    '4,327/s (33 % of the floor)',
    'bare Node floor: 13,069/s; goal ≥ 70 %',
  ]);
  assert.deepEqual(rows[2].slice(1), [
    'p50 ≤ 0.5 ms, p99 in (0.5 ms, 1 ms]',
    '99.9 % within 1 ms; 0 misses in 1,000 queries',
  ]);
  assert.match(clientHeadline(undefined)[0][1], /not measured: the floor section was not in --sections/);
  assert.equal(clientHeadline('wrk is not installed')[0][1], 'not measured: wrk is not installed');
});

test('cardinality options pair rules with parsers; the table marks what is over the target', () => {
  assert.deepEqual(cardinalities('500', '30'), [DEFAULT_CARDINALITY]);
  assert.equal(DEFAULT_CARDINALITY.suffix, '', 'default databases keep their names (reused)');
  assert.deepEqual(
    cardinalities('500,5000', '30,100').map((c) => [c.rules, c.parsers, c.suffix]),
    [
      [500, 30, ''],
      [5000, 100, '_r5000_p100'],
    ]
  );
  assert.deepEqual(
    cardinalities('5000,2000', '100').map((c) => c.parsers),
    [100, 100]
  );
  assert.throws(() => cardinalities('5k', '30'), /--rules: "5k"/);
  assert.throws(() => cardinalities('500,5000', '30,40,50'), /one per --rules value/);
  assert.throws(() => cardinalities('500,500', '30'), /listed twice/);
  const s = (p95: number) => summarize([p95]);
  const t = cardinalityTable(
    [
      {
        rows: 45e6,
        card: DEFAULT_CARDINALITY,
        topRules: { miss: s(31), hit: s(0.5) },
        errorBreakdown: { miss: s(26), hit: s(0.6) },
      },
      {
        rows: 45e6,
        card: cardinalities('5000', '100')[0],
        topRules: { miss: s(120), hit: s(0.5) },
        errorBreakdown: { miss: s(44), hit: s(0.7) },
      },
    ],
    (r) => `${r / 1e6}M`
  );
  assert.match(t, /\| 45M +\| 500 \/ 30 +\| 31ms +\| 0\.50ms +\| 26ms +\| 0\.60ms/);
  assert.match(t, /\| 45M +\| 5,000 \/ 100 +\| 120ms \(over\) +\| 0\.50ms +\| 44ms +\| 0\.70ms/);
});

test('the change-log line: both CPU figures and the number of changes, or why it was not measured', () => {
  assert.equal(
    changeLogText({ changes: 5000, beforeUs: 41.4, afterUs: 43.6 }),
    'Change log: CPU per cached answer 44 µs with 5,000 more changes kept, 41 µs just before (medians of three wrk runs, ×1.05; a hit that walked the log would cost tens of µs more).'
  );
  assert.equal(changeLogText({ error: 'permission denied' }), 'Change log: not measured (permission denied).');
});
