/**
 * The alert rules and the Cache Health dashboard's PromQL, evaluated by a real
 * Prometheus (Debian's `prometheus`) scraping running services every second.
 *
 * Each alert condition is the rule's own expression with its threshold applied (see
 * alertAsPromQL); only the range windows (and offsets) are shortened so the test runs in
 * seconds. It must be false in steady state and true once its situation is induced:
 *   DatabaseQuerySpike   every dashboard refresh asks for something not cached (a rule
 *                        per refresh), far above the steady trickle of misses
 *   LowCacheHitRate      only queries that are not cached
 *   HighQueryLatency     a second service whose database connection goes through a
 *                        proxy that delays every answer
 *   CacheErrors          a third service whose Redis connection goes through a proxy
 *                        that is then cut
 *   AggregateRefreshLag  refreshes stopped (REFRESH_SCHEDULER=off) and the last refresh
 *                        moved back in time
 *   HighCacheMemory      the real 4 GB threshold, then one lowered below current use
 * Finally promtool checks the rules as a Prometheus rule file and unit-tests them with
 * synthetic series at their real windows and `for` durations.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import Redis from 'ioredis';
import { scanKeys } from '../support/redis-keys';
import { decode, encode } from '../../server/cache/codec';
import type { Entry } from '../../server/cache/store';
import {
  alertAsPromQL,
  alertRule,
  dashboardPromQL,
  dashboards,
  panelTargets,
  PLUGIN_TYPE,
  prometheusRuleFile,
  substituteGrafanaVariables,
  templateSrv,
  toContractQuery,
} from './files';
import {
  cuttableProxy,
  delayingProxy,
  loadedDatabase,
  prometheusBinary,
  promtool,
  REDIS_URL,
  sleep,
  startPrometheus,
  startService,
  unavailableReason,
  waitFor,
  type Database,
  type Prometheus,
  type Service,
} from './stack';

/** Rate windows in the test (the rules use 5-10 minutes); ten 1 s scrapes. */
const WINDOW = '10s';
const WINDOW_MS = 10_000;
/** DatabaseQuerySpike compares its last 5 minutes with the hour before: here 10 s with the 20 s before. */
const SPIKE_WINDOWS = { '5m': WINDOW, '1h': '20s' };
/** Steady traffic long enough to give DatabaseQuerySpike its baseline (20 s, 10 s back) and a recent window. */
const STEADY_MS = 35_000;
/** Added to every database answer of the slow service: uncached queries take longer than 200 ms. */
const DB_DELAY_MS = 300;

let reason: string | null = null;
let db: Database | undefined;
let main: Service | undefined;
let slow: Service | undefined;
let flaky: Service | undefined;
let audited: Service | undefined;
let proxy: Awaited<ReturnType<typeof delayingProxy>> | undefined;
let redisProxy: Awaited<ReturnType<typeof cuttableProxy>> | undefined;
let prom: Prometheus | undefined;
let rules: string[] = [];

const day = () => ({ from: Date.now() - 86_400_000, to: Date.now() });

/** The Rule Performance panels at their defaults, one request per panel (as Grafana refreshes). */
function dashboardRequests() {
  const d = dashboards().find((x) => x.title === 'Rule Performance')!;
  const srv = templateSrv(Object.fromEntries(d.templating.list.map((v) => [v.name, '$__all' as const])));
  const byPanel = new Map<string, unknown[]>();
  for (const { panel, target } of panelTargets(d, PLUGIN_TYPE)) {
    byPanel.set(panel.title, [...(byPanel.get(panel.title) ?? []), toContractQuery(target, srv)]);
  }
  return [...byPanel.values()].map((queries) => ({ range: day(), maxDataPoints: 1000, intervalMs: 86_400, queries }));
}

/** Calls `step` every `everyMs` until `ms` have passed or it returns true (bounded: the loop always ends). */
async function during(ms: number, everyMs: number, step: (i: number) => Promise<unknown>): Promise<void> {
  const end = Date.now() + ms;
  for (let i = 0; Date.now() < end; i++) {
    const started = Date.now();
    if ((await step(i)) === true) {
      return;
    }
    await sleep(Math.max(0, everyMs - (Date.now() - started)));
  }
}

async function expectOk(service: Service, body: unknown) {
  const res = await service.post('/api/v1/query', body);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  for (const result of Object.values(res.body.results) as Array<{ error?: string }>) {
    assert.equal(result.error, undefined);
  }
}

/** Stats for one rule: a distinct cache key per rule, so each is a miss the first time. */
const ruleQuery = (ruleId: string) => ({ range: day(), queries: [{ refId: 'A', kind: 'stats', ruleId }] });

/** The Rule Performance panels for one rule (Rule variable set to it): nine misses the first time. */
function ruleDashboardRequests(ruleId: string) {
  return dashboardRequests().map((r) => ({
    ...r,
    queries: (r.queries as Array<Record<string, unknown>>).map((q) => ({ ...q, ruleId })),
  }));
}

/**
 * Cached dashboard refreshes plus a trickle of distinct (uncached) queries, as in normal use.
 * The dashboard's day ends two minutes back, so the minute turning inside the rate window
 * does not make every panel a miss at once.
 */
async function steadyTraffic(ms: number, firstRule: number) {
  const settled = { from: Date.now() - 86_400_000 - 120_000, to: Date.now() - 120_000 };
  const requests = dashboardRequests().map((r) => ({ ...r, range: settled }));
  let next = firstRule;
  await during(ms, 250, async (i) => {
    const calls = requests.map((r) => expectOk(main!, r));
    if (i % 2 === 0) {
      calls.push(expectOk(main!, ruleQuery(rules[next++ % rules.length])));
    }
    await Promise.all(calls);
    return false;
  });
}

const condition = (title: string, threshold?: number) =>
  alertAsPromQL(
    alertRule(title),
    title === 'DatabaseQuerySpike' ? { windows: SPIKE_WINDOWS, threshold } : { window: WINDOW, threshold }
  );

/** True once the condition has a result, polling Prometheus every second up to `timeoutMs`. */
async function becomesTrue(title: string, timeoutMs: number, threshold?: number) {
  const { condition: expr } = condition(title, threshold);
  return waitFor(
    `${title} to fire: ${expr}`,
    async () => {
      const result = await prom!.query(expr);
      return result.length > 0 ? result : undefined;
    },
    timeoutMs,
    1000
  );
}

before(async () => {
  reason = await unavailableReason();
  const binary = prometheusBinary();
  if (!reason && !binary) {
    reason = 'prometheus/promtool not installed (Debian package prometheus)';
  }
  if (reason) {
    return;
  }
  db = await loadedDatabase({ days: 2, rowsPerHour: 2000, seed: 23 });
  // Refreshes stay off so the lag test controls them; a slow Redis (under CI load) must
  // not open the circuit and turn hits into bypasses, hence the high CACHE_SLOW_MS.
  // No warming ahead of each minute: it is constant load over the alerts' real windows (5 min
  // against the hour before), but these are compressed to seconds, where a per-minute batch of
  // database queries at second 50 reads as a spike.
  const common = { REFRESH_SCHEDULER: 'off', WARM_ON_START: 'false', WARM_AHEAD_SECONDS: '0', CACHE_SLOW_MS: '2000' };
  main = await startService({ ...common, DATABASE_URL: db.url });
  proxy = await delayingProxy(
    { host: new URL(db.url).hostname, port: Number(new URL(db.url).port || 5432) },
    DB_DELAY_MS
  );
  const slowUrl = new URL(db.url);
  slowUrl.hostname = '127.0.0.1';
  slowUrl.port = String(proxy.port);
  slow = await startService(
    { ...common, DATABASE_URL: slowUrl.toString(), MIGRATE_ON_START: 'false', DB_CONNECT_TIMEOUT_MS: '10000' },
    120_000
  );
  const redis = new URL(REDIS_URL);
  redisProxy = await cuttableProxy({ host: redis.hostname, port: Number(redis.port || 6379) });
  const flakyRedis = new URL(REDIS_URL);
  flakyRedis.hostname = '127.0.0.1';
  flakyRedis.port = String(redisProxy.port);
  // Its own defaults (CACHE_SLOW_MS 100): a failing Redis opens the circuit as in production.
  flaky = await startService({
    REFRESH_SCHEDULER: 'off',
    WARM_ON_START: 'false',
    DATABASE_URL: db.url,
    MIGRATE_ON_START: 'false',
    REDIS_URL: flakyRedis.toString(),
  });
  // Audits every second, without a near cache: an entry changed in Redis is what it serves and audits.
  audited = await startService({
    ...common,
    DATABASE_URL: db.url,
    MIGRATE_ON_START: 'false',
    AUDIT_INTERVAL_SECONDS: '1',
    CACHE_NEAR_LEASE_MS: '0',
  });
  prom = await startPrometheus(binary!, [
    `127.0.0.1:${main.port}`,
    `127.0.0.1:${slow.port}`,
    `127.0.0.1:${flaky.port}`,
    `127.0.0.1:${audited.port}`,
  ]);
  const res = await fetch(`${main.url}/api/v1/variables/rules`);
  rules = ((await res.json()) as { values: Array<{ value: string }> }).values.map((v) => v.value);
  assert.ok(rules.length >= 100, 'generated rules');
});

after(async () => {
  await prom?.stop();
  await flaky?.stop();
  await audited?.stop();
  await redisProxy?.close();
  await slow?.stop();
  await main?.stop();
  await proxy?.close();
  await db?.drop();
});

test('steady state: every dashboard expression has data and no alert condition holds', async (t) => {
  if (reason) {
    return t.skip(reason);
  }
  // The service reads Redis memory every 15 s; wait for the first reading before the traffic,
  // so every rate window below ends while the traffic runs.
  await waitFor(
    'a Redis memory reading',
    async () => ((await prom!.query('max(ruleperf_redis_used_memory_bytes) > 0')).length ? true : undefined),
    30_000,
    1000
  );
  await steadyTraffic(STEADY_MS, 0);

  for (const d of dashboards()) {
    for (const { where, expr, unit } of dashboardPromQL(d)) {
      const result = await prom!.query(substituteGrafanaVariables(expr, WINDOW));
      assert.ok(result.length > 0, `${where}: no data for ${expr}`);
      if (unit === 'percentunit') {
        // A share is between none and all (database work of warming and audits counted against
        // dashboard queries read as -3,900 % on a quiet stack).
        for (const r of result) {
          const v = Number(r.value[1]);
          assert.ok(v >= 0 && v <= 1, `${where}: ${v} is no share, for ${expr}`);
        }
      }
    }
  }
  for (const title of [
    'LowCacheHitRate',
    'HighQueryLatency',
    'HighCacheMemory',
    'AggregateRefreshLag',
    'DatabaseQuerySpike',
    'CacheErrors',
    'CacheAuditMismatch',
  ]) {
    const c = condition(title);
    // The query has a value (so "false" is a comparison, not missing data) ...
    const values = await prom!.query(c.query);
    assert.ok(values.length > 0, `${title}: no value for ${c.query}`);
    // ... and the condition does not hold (if it does, say which instance and which results made it).
    const holds = await prom!.query(c.condition);
    const detail = holds.length
      ? await prom!.query(`sum by (instance, result) (rate(ruleperf_cache_requests_total[${WINDOW}]))`)
      : [];
    assert.deepEqual(holds, [], `${title} holds in steady state: ${JSON.stringify(values)}; ${JSON.stringify(detail)}`);
  }
});

test('DatabaseQuerySpike fires when every dashboard refresh misses the cache', async (t) => {
  if (reason) {
    return t.skip(reason);
  }
  // The steady test above left the baseline: a trickle of misses. Now each refresh is a new rule's dashboard.
  let next = 100;
  let fired: unknown;
  await during(WINDOW_MS * 3, 200, async () => {
    // One panel after another, as a slow dashboard would: a spike in rate, not a pile-up that slows each query.
    for (const request of ruleDashboardRequests(rules[next++ % rules.length])) {
      await expectOk(main!, request);
    }
    fired = (await prom!.query(condition('DatabaseQuerySpike').condition))[0];
    return Boolean(fired);
  });
  assert.ok(
    fired,
    `DatabaseQuerySpike did not fire: ${JSON.stringify(await prom!.query(condition('DatabaseQuerySpike').query))}`
  );
});

test('LowCacheHitRate fires when no query is cached, HighQueryLatency does not', async (t) => {
  if (reason) {
    return t.skip(reason);
  }
  // Distinct questions only (not flushes: invalidating everything may be rate-limited).
  let next = 200;
  let fired: unknown;
  // At least one full window of this traffic alone, so nothing of the test before is in it.
  const started = Date.now();
  await during(WINDOW_MS * 4, 100, async () => {
    await expectOk(main!, ruleQuery(rules[next++ % rules.length]));
    fired = (await prom!.query(condition('LowCacheHitRate').condition))[0];
    return Boolean(fired) && Date.now() - started > WINDOW_MS + 3000;
  });
  assert.ok(fired, 'LowCacheHitRate did not fire');
  // Misses on a healthy database stay fast: latency is about the database, not the cache.
  assert.deepEqual(await prom!.query(condition('HighQueryLatency').condition), []);
});

test('CacheAuditMismatch fires when a cached answer is changed in Redis', async (t) => {
  if (reason) {
    return t.skip(reason);
  }
  const day = 86_400_000;
  const settled = {
    range: {
      from: Math.floor(Date.now() / day) * day - day,
      to: Math.floor(Date.now() / day) * day - day + 3 * 3_600_000,
    },
    queries: [{ refId: 'A', kind: 'stats' }],
  };
  const truth = await audited!.post('/api/v1/query', settled);
  assert.equal(
    (await audited!.post('/api/v1/query', settled)).body.results.A.frames[0].schema.meta.custom.cache,
    'hit'
  );
  assert.deepEqual(await prom!.query(condition('CacheAuditMismatch').condition), []);
  const redis = new Redis(REDIS_URL);
  try {
    let changed = 0;
    for (const key of await scanKeys(redis, `{${audited!.prefix}}:*:q:*`)) {
      if (key.endsWith(':lock')) {
        continue;
      }
      const entry = decode<Entry>((await redis.getBuffer(key))!)!;
      if (
        JSON.stringify(entry.a.frames[0].data.values) !== JSON.stringify(truth.body.results.A.frames[0].data.values)
      ) {
        continue;
      }
      (entry.a.frames[0].data.values[0] as number[])[0] += 1;
      await redis.set(key, await encode(entry), 'KEEPTTL');
      changed++;
    }
    assert.equal(changed, 1);
    // Served once more (so the auditor samples it), then caught within the audit interval.
    await audited!.post('/api/v1/query', settled);
    await becomesTrue('CacheAuditMismatch', 60_000);
  } finally {
    redis.disconnect();
  }
});

test('CacheErrors fires when the Redis behind a service goes away', async (t) => {
  if (reason) {
    return t.skip(reason);
  }
  const exported = await (await fetch(`${flaky!.url}/metrics`)).text();
  if (!/^# HELP ruleperf_cache_errors_total /m.test(exported)) {
    return t.skip('the service does not export ruleperf_cache_errors_total yet (the counter of failed Redis calls)');
  }
  // Healthy first: lookups and no errors.
  await during(3000, 200, () => expectOk(flaky!, dashboardRequests()[0]));
  assert.deepEqual(await prom!.query(condition('CacheErrors').condition), []);
  redisProxy!.cut();
  try {
    let fired: unknown;
    await during(WINDOW_MS * 3, 100, async () => {
      await expectOk(flaky!, dashboardRequests()[0]);
      fired = (await prom!.query(condition('CacheErrors').condition))[0];
      return Boolean(fired);
    });
    assert.ok(fired, `CacheErrors did not fire: ${JSON.stringify(await prom!.query(condition('CacheErrors').query))}`);
  } finally {
    redisProxy!.heal();
  }
});

test('AggregateRefreshLag fires for every rollup when refreshes stop', async (t) => {
  if (reason) {
    return t.skip(reason);
  }
  // Both services run with REFRESH_SCHEDULER=off: nothing refreshes; the last refresh is 3 hours ago.
  await db!.query("UPDATE ruleperf_rollup_state SET last_refresh_at = now() - interval '3 hours'");
  const firing = await becomesTrue('AggregateRefreshLag', 45_000);
  const registry = await db!.query('SELECT name FROM ruleperf_rollups ORDER BY name');
  assert.deepEqual(
    firing.map((s) => s.metric.rollup).sort(),
    registry.map((r) => r.name)
  );
});

test('HighCacheMemory holds above a threshold lowered below current use', async (t) => {
  if (reason) {
    return t.skip(reason);
  }
  const [{ value }] = await prom!.query(condition('HighCacheMemory').query);
  const used = Number(value[1]);
  assert.ok(used > 0 && used < 4 * 1024 ** 3);
  assert.deepEqual(await prom!.query(condition('HighCacheMemory').condition), [], 'below 4 GB: quiet');
  const firing = await prom!.query(condition('HighCacheMemory', Math.floor(used / 2)).condition);
  assert.equal(firing.length, 1, 'above the lowered threshold: fires');
});

test('HighQueryLatency fires when the database is slow', async (t) => {
  if (reason) {
    return t.skip(reason);
  }
  let next = 250; // rules the main service has not asked for: every query misses the slow service's cache
  let fired: unknown;
  await during(WINDOW_MS * 4, 0, async () => {
    await Promise.all([0, 1, 2].map(() => expectOk(slow!, ruleQuery(rules[next++ % rules.length]))));
    fired = (await prom!.query(condition('HighQueryLatency').condition))[0];
    return Boolean(fired);
  });
  assert.ok(
    fired,
    `HighQueryLatency did not fire; p95 of uncached queries: ${JSON.stringify(await prom!.query(condition('HighQueryLatency').query))}`
  );
});

test('promtool: the rules as a Prometheus rule file pass check and unit tests at their real windows', (t) => {
  if (!prometheusBinary()) {
    return t.skip('promtool not installed (Debian package prometheus)');
  }
  const dir = mkdtempSync(join(tmpdir(), 'ruleperf-promtool-'));
  try {
    // JSON is YAML, which promtool reads.
    writeFileSync(join(dir, 'rules.yml'), JSON.stringify(prometheusRuleFile()));
    const check = promtool(['check', 'rules', 'rules.yml'], dir);
    assert.equal(check.status, 0, check.output);
    writeFileSync(join(dir, 'tests.yml'), JSON.stringify(unitTests()));
    const unit = promtool(['test', 'rules', 'tests.yml'], dir);
    assert.equal(unit.status, 0, unit.output);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('promtool: on a quiet stack the Cache Health share of queries answered without the database is that share', (t) => {
  if (!prometheusBinary()) {
    return t.skip('promtool not installed (Debian package prometheus)');
  }
  // What a trial saw after a restart: 119 database queries (warming, audits) for 3 dashboard
  // queries, and the panel, one minus their ratio, read -3,900 %. Here 100 a step for 4 lookups,
  // of which 2 hits and 1 of the 2 misses coalesced: 3 of 4 answered without a query of their own.
  const d = dashboards().find((x) => x.title === 'Aggregation Cache Health')!;
  const [{ expr }] = dashboardPromQL(d).filter((e) => e.where.includes('without querying the database'));
  const dir = mkdtempSync(join(tmpdir(), 'ruleperf-promtool-'));
  try {
    const tests = {
      evaluation_interval: '15s',
      tests: [
        {
          interval: '15s',
          input_series: [
            ...cacheLookups(2, 2),
            { series: 'ruleperf_coalesced_requests_total', values: counter(1) },
            { series: 'ruleperf_db_queries_total{tier="hourly"}', values: counter(100) },
            {
              series: 'ruleperf_query_duration_seconds_count{cache="hit",kind="stats",tier="hourly"}',
              values: counter(4),
            },
          ],
          promql_expr_test: [
            {
              expr: substituteGrafanaVariables(expr, '5m'),
              eval_time: '20m',
              exp_samples: [{ labels: '{}', value: 0.75 }],
            },
          ],
        },
      ],
    };
    writeFileSync(join(dir, 'share.yml'), JSON.stringify(tests));
    const run = promtool(['test', 'rules', 'share.yml'], dir);
    assert.equal(run.status, 0, run.output);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Counter series for promtool: `perStep` more every 15 s. */
const counter = (perStep: number) => `0+${perStep}x200`;
const warning = { severity: 'warning', service: 'ruleperf' };
const critical = { severity: 'critical', service: 'ruleperf' };

/** A latency histogram for one cache status: `n` observations per step, all within `le`. */
function histogram(cache: string, n: number, le: string) {
  return ['0.1', '0.2', '0.5', '+Inf']
    .map((b) => ({
      series: `ruleperf_query_duration_seconds_bucket{cache="${cache}",le="${b}",kind="stats",tier="hourly"}`,
      values: counter(Number(b === '+Inf' ? Infinity : b) >= Number(le === '+Inf' ? Infinity : le) ? n : 0),
    }))
    .concat([
      {
        series: `ruleperf_query_duration_seconds_count{cache="${cache}",kind="stats",tier="hourly"}`,
        values: counter(n),
      },
    ]);
}

function cacheLookups(hit: number, miss: number) {
  return ['hit', 'miss', 'stale', 'bypass'].map((result) => ({
    series: `ruleperf_cache_requests_total{result="${result}"}`,
    values: counter(result === 'hit' ? hit : result === 'miss' ? miss : 0),
  }));
}

/** Firing and quiet cases per alert; `for` means nothing fires at the early evaluation. */
function unitTests() {
  const fires = (alertname: string, labels: Record<string, string>) => [
    { eval_time: '3m', alertname, exp_alerts: [] }, // pending: `for` has not elapsed
    { eval_time: '25m', alertname, exp_alerts: [{ exp_labels: labels }] },
  ];
  const quiet = (alertname: string) => [{ eval_time: '25m', alertname, exp_alerts: [] }];
  const tests = [
    // 75 % hits at 0.27 lookups/s.
    { input_series: cacheLookups(3, 1), alert_rule_test: fires('LowCacheHitRate', warning) },
    // 95 % hits.
    { input_series: cacheLookups(19, 1), alert_rule_test: quiet('LowCacheHitRate') },
    // 0 % hits but only 0.07 lookups/s: too little traffic to judge.
    { input_series: cacheLookups(0, 1), alert_rule_test: quiet('LowCacheHitRate') },
    // Misses between 0.2 and 0.5 s; many fast hits must not dilute them.
    {
      input_series: [...histogram('miss', 10, '0.5'), ...histogram('hit', 100, '0.1')],
      alert_rule_test: fires('HighQueryLatency', warning),
    },
    {
      input_series: [...histogram('miss', 10, '0.1'), ...histogram('bypass', 1, '0.2')],
      alert_rule_test: quiet('HighQueryLatency'),
    },
    { input_series: histogram('hit', 100, '+Inf'), alert_rule_test: quiet('HighQueryLatency') },
    {
      input_series: [
        { series: 'ruleperf_redis_used_memory_bytes{instance="a"}', values: '5000000000x200' },
        { series: 'ruleperf_redis_used_memory_bytes{instance="b"}', values: '1000x200' },
      ],
      alert_rule_test: fires('HighCacheMemory', critical),
    },
    {
      input_series: [{ series: 'ruleperf_redis_used_memory_bytes{instance="a"}', values: '4000000000x200' }],
      alert_rule_test: quiet('HighCacheMemory'),
    },
    // Lag grows with time for the hourly rollup (over 600 s after 10 minutes); daily is on time.
    {
      input_series: [
        { series: 'ruleperf_aggregate_refresh_lag_seconds{rollup="metrics_hourly",instance="a"}', values: counter(15) },
        { series: 'ruleperf_aggregate_refresh_lag_seconds{rollup="metrics_daily",instance="a"}', values: '0x200' },
      ],
      alert_rule_test: [
        { eval_time: '14m', alertname: 'AggregateRefreshLag', exp_alerts: [] },
        {
          eval_time: '25m',
          alertname: 'AggregateRefreshLag',
          exp_alerts: [{ exp_labels: { ...critical, rollup: 'metrics_hourly' } }],
        },
      ],
    },
    // Database queries: 1/s for two hours, then 20/s. From 2h02m the last 5 minutes run over 4x
    // the hour before (which slowly takes in the spike: at 2h14m it averages 3.8/s); firing 10 min later.
    {
      input_series: [
        { series: 'ruleperf_db_queries_total{tier="hourly",instance="a"}', values: '0+15x480 7215+300x120' },
      ],
      alert_rule_test: [
        { eval_time: '125m', alertname: 'DatabaseQuerySpike', exp_alerts: [] }, // pending: `for` has not elapsed
        { eval_time: '134m', alertname: 'DatabaseQuerySpike', exp_alerts: [{ exp_labels: warning }] },
      ],
    },
    // The same rate all along: quiet.
    {
      input_series: [{ series: 'ruleperf_db_queries_total{tier="hourly",instance="a"}', values: '0+15x600' }],
      alert_rule_test: quiet('DatabaseQuerySpike'),
    },
    // 50x more, but only 0.5 queries/s: below the 1/s floor.
    {
      input_series: [
        { series: 'ruleperf_db_queries_total{tier="hourly",instance="a"}', values: '0+0.15x480 72+7.5x120' },
      ],
      alert_rule_test: [{ eval_time: '132m', alertname: 'DatabaseQuerySpike', exp_alerts: [] }],
    },
    // 20/s since the service started: no rise, no alert.
    {
      input_series: [{ series: 'ruleperf_db_queries_total{tier="hourly",instance="a"}', values: '0+300x120' }],
      alert_rule_test: [{ eval_time: '25m', alertname: 'DatabaseQuerySpike', exp_alerts: [] }],
    },
    // Cache errors: 5 failed calls per 100 lookups (5 %) fires; 1 per 200 (0.5 %) does not;
    // no error series at all reads as 0 %.
    {
      input_series: [
        ...cacheLookups(100, 0),
        { series: 'ruleperf_cache_errors_total{op="lookup"}', values: counter(5) },
      ],
      alert_rule_test: fires('CacheErrors', warning),
    },
    {
      input_series: [
        ...cacheLookups(200, 0),
        { series: 'ruleperf_cache_errors_total{op="lookup"}', values: counter(1) },
      ],
      alert_rule_test: quiet('CacheErrors'),
    },
    { input_series: cacheLookups(100, 0), alert_rule_test: quiet('CacheErrors') },
    // Errors but only 0.07 lookups/s: nothing to judge.
    {
      input_series: [...cacheLookups(1, 0), { series: 'ruleperf_cache_errors_total{op="probe"}', values: counter(1) }],
      alert_rule_test: quiet('CacheErrors'),
    },
  ];
  return { rule_files: ['rules.yml'], evaluation_interval: '1m', tests: tests.map((x) => ({ interval: '15s', ...x })) };
}
