/**
 * npm run test:chaos — two service instances under steady dashboard load share one
 * Redis (a private redis-server this suite starts, so it can kill and pause it) and one
 * PostgreSQL (reached through a TCP proxy the suite can cut). Each scenario reports
 * requests sent, answered, failed, the worst latency and the time to recover. Only
 * 127.0.0.1 is targeted; every loop is bounded in count and time.
 */
import assert from 'node:assert/strict';
import { test, before, after } from 'node:test';
import type { ChildProcess } from 'node:child_process';
import { Client } from 'pg';
import { historyDatabase, DAY, HOUR } from '../support/fixture';
import { PG_HOST, PG_PORT, type TestDatabase } from '../support/services';
import { TcpProxy } from '../support/tcp-proxy';
import { freePort, startPrivateRedis } from '../support/private-redis';
import { startServiceProcess, type ServiceProcess } from '../../testkit/service-process';
import { assertRollupsMatchRaw } from '../support/rollup-checks';
import { refreshRollups } from '../../server/db/refresh';
import { post } from '../../testkit/http';
import { crashProbe } from '../../testkit/probes';

interface Outcome {
  at: number;
  status: number;
  ms: number;
  cache?: string;
  instance: number;
}

const report: string[] = [];
let db: TestDatabase;
let redisPort = 0;
let redis: ChildProcess | null = null;
let redisProxy: TcpProxy;
let pgProxy: TcpProxy;
const instances: ServiceProcess[] = [];

/** The suite's Redis, on the same port each time, so a restart is the same Redis to the services. */
async function startRedis(): Promise<void> {
  redis = (await startPrivateRedis(['--maxmemory', '256mb', '--maxmemory-policy', 'allkeys-lru'], redisPort)).child;
}

async function stopRedis(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  const r = redis;
  redis = null;
  if (!r || r.exitCode !== null) {
    return;
  }
  await new Promise<void>((resolve) => {
    r.once('exit', () => resolve());
    r.kill(signal);
  });
}

const queries = [
  { kind: 'stats' },
  { kind: 'stats', metricType: 'RULE_EXECUTION' },
  { kind: 'timeseries', metrics: ['p50ExecutionTimeMs', 'p95ExecutionTimeMs', 'p99ExecutionTimeMs'] },
  { kind: 'topRules', limit: 10 },
  { kind: 'errorBreakdown', groupBy: 'ruleCategory' },
];

/** Steady load: `rate` requests/s spread over the live instances, for `ms` milliseconds. */
async function load(ms: number, rate: number, alive: () => number[], during?: () => Promise<void>): Promise<Outcome[]> {
  const outcomes: Outcome[] = [];
  const started = Date.now();
  const pending: Array<Promise<void>> = [];
  let i = 0;
  const faults = during ? during() : Promise.resolve();
  while (Date.now() - started < ms && i < rate * (ms / 1000) * 2) {
    const live = alive();
    const instance = live[i % live.length];
    const q = queries[i % queries.length];
    const now = Date.now();
    const at = now - started;
    const t = performance.now();
    pending.push(
      post(`${instances[instance].url}/api/v1/query`, {
        range: { from: now - DAY, to: now },
        intervalMs: 60_000,
        maxDataPoints: 500,
        queries: [{ refId: 'A', ...q }],
      }).then(
        (r) =>
          void outcomes.push({
            at,
            status: r.status,
            ms: performance.now() - t,
            cache: r.body.results?.A?.frames?.[0]?.schema.meta.custom.cache,
            instance,
          }),
        () => void outcomes.push({ at, status: 0, ms: performance.now() - t, instance })
      )
    );
    i++;
    await new Promise((r) => setTimeout(r, 1000 / rate));
  }
  await faults;
  await Promise.all(pending);
  return outcomes.sort((a, b) => a.at - b.at);
}

function summarize(name: string, outcomes: Outcome[], faultEnd: number, healthy: (o: Outcome) => boolean) {
  const failed = outcomes.filter((o) => o.status !== 200);
  const afterFault = outcomes.filter((o) => o.at >= faultEnd);
  const firstHealthy = afterFault.find(healthy);
  // Recovered once every later request is healthy.
  const lastUnhealthy = [...afterFault].reverse().find((o) => !healthy(o));
  const recoveredAt = lastUnhealthy
    ? afterFault.find((o) => o.at > lastUnhealthy.at && healthy(o))?.at
    : firstHealthy?.at;
  const recovery = recoveredAt === undefined ? Infinity : Math.max(0, recoveredAt - faultEnd);
  const worst = Math.max(...outcomes.map((o) => o.ms));
  const row = {
    name,
    sent: outcomes.length,
    answered: outcomes.length - failed.length,
    failed: failed.length,
    worstMs: worst,
    recoveryMs: recovery,
  };
  report.push(
    `| ${name} | ${row.sent} | ${row.answered} | ${row.failed} | ${Math.round(worst)} ms | ${Number.isFinite(recovery) ? `${(recovery / 1000).toFixed(1)} s` : 'not recovered'} |`
  );
  return { ...row, failedOutcomes: failed };
}

const allInstances = () => instances.map((_, i) => i).filter((i) => instances[i].child.exitCode === null);
const usesCache = (o: Outcome) => o.status === 200 && o.cache !== 'bypass';

before(async () => {
  db = await historyDatabase({ days: 2, rowsPerHour: 600, refreshedHoursAgo: 1 });
  redisPort = await freePort();
  await startRedis();
  redisProxy = new TcpProxy('127.0.0.1', redisPort);
  const rp = await redisProxy.start();
  pgProxy = new TcpProxy(PG_HOST, PG_PORT);
  const pp = await pgProxy.start();
  for (let i = 0; i < 2; i++) {
    instances.push(
      await startServiceProcess({
        DATABASE_URL: db.url.replace(`:${PG_PORT}/`, `:${pp}/`),
        REDIS_URL: `redis://127.0.0.1:${rp}`,
        CACHE_PREFIX: `chaos-${process.pid}`,
        CACHE_TTL_SECONDS: '2',
        CACHE_JITTER_SECONDS: '0',
        WARM_ON_START: 'false',
        REFRESH_SCHEDULER: 'off',
        SHUTDOWN_GRACE_MS: '10000',
      })
    );
  }
});

after(async () => {
  await Promise.all(instances.map((s) => s.stop()));
  await redisProxy?.stop();
  await pgProxy?.stop();
  await stopRedis('SIGKILL');
  await db?.drop();
  console.log(
    [
      '',
      '| scenario | sent | answered | failed | worst latency | recovery |',
      '|---|---|---|---|---|---|',
      ...report,
    ].join('\n')
  );
});

test('Redis killed, then restarted: no request fails; the cache is back within 5 s', async () => {
  const outcomes = await load(9000, 40, allInstances, async () => {
    await new Promise((r) => setTimeout(r, 2000));
    await stopRedis('SIGKILL');
    await new Promise((r) => setTimeout(r, 3000));
    await startRedis();
  });
  const r = summarize('Redis killed 3 s, restarted', outcomes, 5000, usesCache);
  assert.equal(r.failed, 0, JSON.stringify(r.failedOutcomes.slice(0, 3)));
  assert.ok(
    outcomes.some((o) => o.cache === 'bypass'),
    'the circuit opened'
  );
  assert.ok(r.recoveryMs <= 5000, `recovered in ${r.recoveryMs} ms`);
});

test('Redis paused (SIGSTOP) for 10 s: no request fails, worst latency stays bounded', async () => {
  const outcomes = await load(15000, 40, allInstances, async () => {
    await new Promise((r) => setTimeout(r, 2000));
    redis!.kill('SIGSTOP');
    await new Promise((r) => setTimeout(r, 10_000));
    redis!.kill('SIGCONT');
  });
  const r = summarize('Redis paused 10 s (SIGSTOP)', outcomes, 12_000, usesCache);
  assert.equal(r.failed, 0);
  assert.ok(r.recoveryMs <= 5000, `recovered in ${r.recoveryMs} ms`);
});

test('Redis answering slowly (250 ms through a delaying proxy): bypassed, no request fails', async () => {
  const outcomes = await load(9000, 40, allInstances, async () => {
    await new Promise((r) => setTimeout(r, 2000));
    redisProxy.delayMs = 250;
    await new Promise((r) => setTimeout(r, 4000));
    redisProxy.delayMs = 0;
  });
  const r = summarize('Redis slow (250 ms) for 4 s', outcomes, 6000, usesCache);
  assert.equal(r.failed, 0);
  const slowPhase = outcomes.filter((o) => o.at > 3000 && o.at < 6000);
  assert.ok(slowPhase.filter((o) => o.ms > 300).length <= 4, 'after the first slow calls the cache is skipped');
  assert.ok(r.recoveryMs <= 5000);
});

test('PostgreSQL connections terminated (pg_terminate_backend): the pools reconnect', async () => {
  const outcomes = await load(6000, 40, allInstances, async () => {
    await new Promise((r) => setTimeout(r, 2000));
    const c = new Client({ connectionString: db.url });
    await c.connect();
    await c.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND application_name LIKE 'ruleperf%'`,
      [db.name]
    );
    await c.end();
  });
  const r = summarize('PostgreSQL backends terminated', outcomes, 2000, (o) => o.status === 200);
  assert.ok(r.failed <= outcomes.length * 0.1, `${r.failed} failed`);
  assert.ok(r.recoveryMs <= 5000);
  assert.ok(
    outcomes.slice(-20).every((o) => o.status === 200),
    'healthy at the end'
  );
});

test('PostgreSQL down 5 s, then back: cached answers still served (marked stale), uncached fail fast with 503, recovery within 5 s', async () => {
  const outcomes = await load(11_000, 40, allInstances, async () => {
    await new Promise((r) => setTimeout(r, 2000));
    await pgProxy.stop();
    await new Promise((r) => setTimeout(r, 5000));
    await pgProxy.start();
  });
  const r = summarize('PostgreSQL down 5 s', outcomes, 7000, (o) => o.status === 200);
  const down = outcomes.filter((o) => o.at > 2500 && o.at < 7000);
  assert.ok(
    down.some((o) => o.status === 200 && (o.cache === 'stale' || o.cache === 'hit')),
    `cached answers served while down; while down: ${JSON.stringify(
      Object.entries(
        down.reduce<Record<string, number>>((n, o) => {
          const k = `${o.status} ${o.cache ?? '-'}`;
          n[k] = (n[k] ?? 0) + 1;
          return n;
        }, {})
      )
    )}`
  );
  for (const o of down.filter((x) => x.status !== 200)) {
    assert.equal(o.status, 503);
    assert.ok(o.ms < 1000, `503 after ${Math.round(o.ms)} ms`);
  }
  assert.ok(r.recoveryMs <= 5000, `recovered in ${r.recoveryMs} ms`);
});

test('refresh interrupted during load: rollups stay consistent, the next refresh completes them', async () => {
  await db.pool.query(
    `INSERT INTO metrics (time, metric_type, rule_id, status, execution_time_ms)
     SELECT now() - interval '50 minutes' + (g * interval '10 milliseconds'), 'RULE_EXECUTION', 'rule-00' || (10 + g % 40), 'SUCCESS', 1 + (g % 500)
     FROM generate_series(1, 200000) g`
  );
  let interrupted = false;
  const outcomes = await load(5000, 40, allInstances, async () => {
    const victim = new Client({ connectionString: db.url });
    await victim.connect();
    victim.on('error', () => undefined);
    const pid = (await victim.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;
    const running = victim.query("SELECT * FROM ruleperf_refresh(NULL, now() + interval '2 hours')").then(
      () => false,
      () => true
    );
    await new Promise((r) => setTimeout(r, 150));
    await db.pool.query('SELECT pg_terminate_backend($1)', [pid]);
    interrupted = await running;
  });
  const r = summarize('refresh terminated mid-way', outcomes, 0, (o) => o.status === 200);
  assert.equal(r.failed, 0);
  await assertRollupsMatchRaw(db.pool);
  await refreshRollups(db.pool, 'postgres', { until: new Date(Date.now() + 2 * HOUR) });
  await assertRollupsMatchRaw(db.pool);
  console.log(`refresh ${interrupted ? 'was' : 'was not'} interrupted before it finished`);
});

test('heavy queries under dashboard load: over-budget requests refused at once, a burst of uncached ones answered or refused as busy, dashboards keep being served', async () => {
  const attacker = instances[0];
  const attacks: Array<Promise<{ status: number; ms: number; error?: string }>> = [];
  const heavy = async (body: unknown) => {
    const t = performance.now();
    try {
      const r = await post(`${attacker.url}/api/v1/query`, body);
      return { status: r.status, ms: performance.now() - t, error: r.body?.error };
    } catch {
      return { status: 0, ms: performance.now() - t };
    }
  };
  const outcomes = await load(8000, 40, allInstances, async () => {
    await new Promise((r) => setTimeout(r, 1000));
    const now = Date.now();
    for (let i = 0; i < 5; i++) {
      // The request that once crashed an instance (issue 15): refused before any work.
      attacks.push(heavy(crashProbe(now, ['executionCount', 'p95ExecutionTimeMs'])));
    }
    // 150 distinct uncached questions at once, each a month long.
    for (let i = 0; i < 150; i++) {
      attacks.push(
        heavy({
          range: { from: now - 30 * DAY - i * 60_000, to: now - i * 60_000 },
          queries: [{ refId: 'A', kind: 'topRules', limit: 50 + i }],
        })
      );
    }
  });
  const results = await Promise.all(attacks);
  const r = summarize('heavy queries under dashboard load', outcomes, 0, (o) => o.status === 200);
  const probes = results.slice(0, 5);
  assert.ok(
    probes.every((p) => p.status === 400),
    `probes refused: ${probes.map((p) => p.status)}`
  );
  for (const a of results.slice(5)) {
    assert.ok(
      a.status === 200 || (a.status === 503 && /busy/.test(a.error ?? '')),
      `a heavy request ended ${a.status} ${a.error}`
    );
  }
  for (const o of outcomes.filter((x) => x.status !== 200)) {
    assert.equal(o.status, 503, `dashboard request ${o.status}`);
  }
  const health = await Promise.all(
    instances.filter((s) => s.child.exitCode === null).map((s) => fetch(`${s.url}/healthz`).then((res) => res.status))
  );
  assert.deepEqual([...new Set(health)], [200]);
  console.log(
    `heavy: ${results.slice(5).filter((a) => a.status === 200).length} answered, ${results.slice(5).filter((a) => a.status === 503).length} busy; dashboard failures ${r.failed}`
  );
});

test('an instance sent SIGTERM under load: its in-flight requests complete, the other carries on', async () => {
  const victim = instances[1];
  const inflight = Array.from({ length: 20 }, () => {
    const now = Date.now();
    return post(`${victim.url}/api/v1/query`, {
      range: { from: now - 30 * DAY, to: now },
      queries: [{ refId: 'A', kind: 'topRules', limit: 50 }],
    }).then(
      (res) => res.status,
      () => 0
    );
  });
  await new Promise((r) => setTimeout(r, 20));
  const stopped = victim.stop();
  const outcomes = await load(3000, 40, () => [0]);
  const statuses = await Promise.all(inflight);
  await stopped;
  const r = summarize('one instance SIGTERM', outcomes, 0, (o) => o.status === 200);
  assert.deepEqual([...new Set(statuses)], [200], `in-flight requests on the stopped instance: ${statuses.join(',')}`);
  assert.equal(r.failed, 0);
  assert.notEqual(victim.child.exitCode, null, 'it exited');
  assert.equal(victim.child.exitCode, 0, 'cleanly');
});

test('after the faults every rollup still equals the raw table', async () => {
  await refreshRollups(db.pool, 'postgres', { until: new Date(Date.now() + 2 * HOUR) });
  await assertRollupsMatchRaw(db.pool);
});
