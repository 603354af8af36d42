/**
 * Bounded work per request, and honest answers under overload (real PostgreSQL and Redis):
 * - requests that could return more than the budget are refused before any work, with a 400
 *   naming the limit, the estimate and how to narrow it; the instance stays healthy;
 * - a saturated pool answers "busy" (503 + Retry-After), never "unavailable"; cached answers,
 *   /healthz and /readyz do not wait behind the uncached work;
 * - work queued for a client that has gone (Grafana cancelling a panel's request) is given up.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { test, before, after } from 'node:test';
import { Client } from 'pg';
import Redis from 'ioredis';
import { postJson, startTestService, uniqueName, REDIS_URL, type TestDatabase } from '../support/services';
import { historyDatabase, DAY, HOUR } from '../support/fixture';
import type { RunningService } from '../../server/main';
import { crashProbe } from '../../testkit/probes';
import { SERIES_METRICS, GROUP_BY_FIELDS, QUERY_KINDS } from '../../server/contract';

let db: TestDatabase;
const services: RunningService[] = [];

before(async () => {
  db = await historyDatabase({ days: 3, rowsPerHour: 200 });
});
after(async () => {
  await Promise.all(services.map((s) => s.stop()));
  await db?.drop();
});

async function start(env: Record<string, string> = {}) {
  const svc = await startTestService({
    DATABASE_URL: db.url,
    CACHE_PREFIX: uniqueName('ovl').replace(/_/g, '-'),
    ...env,
  });
  services.push(svc);
  return svc;
}

test('the crash probe is refused before any work, with the limit, the estimate and how to narrow it', async () => {
  const svc = await start();
  const dbBefore = (await svc.metrics.dbQueries.get()).values.reduce((n, v) => n + v.value, 0);
  const r = await postJson(`${svc.url}/api/v1/query`, crashProbe());
  assert.equal(r.status, 400, JSON.stringify(r.body).slice(0, 300));
  assert.match(r.body.error, /limit/);
  assert.match(r.body.error, /coarser interval|filter|limit on groups/);
  assert.equal(r.body.details.length, 10);
  assert.match(r.body.details[0].message, /timeseries: up to [\d,]+ points/);
  const dbAfter = (await svc.metrics.dbQueries.get()).values.reduce((n, v) => n + v.value, 0);
  assert.equal(dbAfter, dbBefore, 'no database work');
  assert.equal((await fetch(`${svc.url}/healthz`)).status, 200);
});

test('variations of the probe: every kind and grouping, huge maxDataPoints, tiny intervals — a fast 400 or an answer within budget, never a 500', async () => {
  const svc = await start();
  const now = Date.now();
  const cases: Array<Record<string, unknown>> = [];
  for (const kind of QUERY_KINDS) {
    for (const groupBy of [undefined, ...GROUP_BY_FIELDS]) {
      for (const [span, intervalMs, maxDataPoints] of [
        [400 * DAY, 1, 10_000],
        [2 * DAY, 1, 10_000],
        [HOUR, 60_000, 50],
      ] as const) {
        cases.push({
          range: { from: now - span, to: now },
          intervalMs,
          maxDataPoints,
          queries: [
            {
              refId: 'A',
              kind,
              ...(groupBy && kind !== 'stats' && kind !== 'topRules' ? { groupBy, limit: 1000 } : {}),
              ...(kind === 'timeseries' ? { metrics: [...SERIES_METRICS] } : {}),
            },
          ],
        });
      }
    }
  }
  cases.push({
    ...crashProbe(),
    queries: Array.from({ length: 50 }, (_, i) => ({
      refId: `S${i}`,
      kind: 'timeseries',
      metrics: [...SERIES_METRICS],
    })),
  });
  let refused = 0;
  let answered = 0;
  for (const body of cases) {
    const r = await postJson(`${svc.url}/api/v1/query`, body);
    assert.ok(r.status === 200 || r.status === 400, `${r.status}: ${JSON.stringify(r.body).slice(0, 200)}`);
    if (r.status === 400) {
      refused++;
      assert.match(r.body.error, /limit/);
    } else {
      answered++;
      const values = Object.values(
        r.body.results as Record<string, { frames: Array<{ data: { values: unknown[][] } }> }>
      ).reduce(
        (n, res) => n + res.frames.reduce((m, f) => m + f.data.values.reduce((k, col) => k + col.length, 0), 0),
        0
      );
      assert.ok(values <= 1_000_000, `an accepted answer holds ${values} values`);
    }
  }
  assert.ok(refused > 0 && answered > 0, `refused ${refused}, answered ${answered}`);
  assert.equal((await fetch(`${svc.url}/healthz`)).status, 200);
});

test('a grouped timeseries keeps the busiest groups and sums the rest into "(other)"', async () => {
  const svc = await start({ CACHE_ENABLED: 'false' });
  const range = { from: Date.now() - DAY, to: Date.now() };
  const r = await postJson(`${svc.url}/api/v1/query`, {
    range,
    intervalMs: HOUR,
    queries: [{ refId: 'A', kind: 'timeseries', groupBy: 'ruleId', limit: 5, metrics: ['executionCount'] }],
  });
  assert.equal(r.status, 200);
  const frames = r.body.results.A.frames;
  assert.equal(frames.length, 6);
  assert.equal(frames[5].schema.name, '(other)');
  const total = frames.reduce(
    (n: number, f: { data: { values: number[][] } }) => n + f.data.values[1].reduce((a, b) => a + b, 0),
    0
  );
  const { rows } = await db.pool.query('SELECT count(*)::int AS n FROM metrics WHERE time >= $1 AND time < $2', [
    new Date(r.body.results.A.frames[0].schema.meta.custom.coveredRange.from),
    new Date(r.body.results.A.frames[0].schema.meta.custom.coveredRange.to),
  ]);
  assert.equal(total, rows[0].n, 'every execution is in a series');
});

test('a saturated pool answers busy with Retry-After; cached answers, /healthz and /readyz are unaffected; nothing says unavailable', async () => {
  const svc = await start({
    DB_POOL_MAX: '2',
    DB_QUEUE_MAX: '2',
    DB_QUEUE_WAIT_MS: '400',
    DB_STATEMENT_TIMEOUT_MS: '30000',
  });
  const range = () => ({ from: Date.now() - 2 * HOUR, to: Date.now() });
  // One asked range: asked again, it is the same cache entry even if a minute begins meanwhile.
  const cachedRange = range();
  const cachedBody = () => ({ range: cachedRange, queries: [{ refId: 'A', kind: 'stats', ruleId: 'rule-0001' }] });
  assert.equal((await postJson(`${svc.url}/api/v1/query`, cachedBody())).status, 200);
  const locker = new Client({ connectionString: db.url });
  await locker.connect();
  await locker.query('BEGIN');
  // Every uncached answer reads the raw live edge: holding the table keeps the pool busy.
  await locker.query('LOCK TABLE metrics IN ACCESS EXCLUSIVE MODE');
  let released = false;
  try {
    const uncached = Array.from({ length: 12 }, (_, i) =>
      postJson(`${svc.url}/api/v1/query`, {
        range: range(),
        queries: [{ refId: 'A', kind: 'stats', ruleId: `busy-${i}` }],
      }).then((r) => r)
    );
    const withHeaders = fetch(`${svc.url}/api/v1/query`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ range: range(), queries: [{ refId: 'A', kind: 'stats', ruleId: 'busy-x' }] }),
    });
    await new Promise((r) => setTimeout(r, 100));
    const started = performance.now();
    const cached = await postJson(`${svc.url}/api/v1/query`, cachedBody());
    assert.equal(cached.status, 200);
    assert.equal(cached.body.results.A.frames[0].schema.meta.custom.cache, 'hit');
    assert.equal((await fetch(`${svc.url}/healthz`)).status, 200);
    const ready = await fetch(`${svc.url}/readyz`);
    assert.equal(ready.status, 200, 'the database is reachable, only busy');
    const metrics = await (await fetch(`${svc.url}/metrics`)).text();
    assert.match(metrics, /ruleperf_db_admission_active\{pool="read"\} 2\n/, 'both slots held, in /metrics');
    assert.match(metrics, /ruleperf_db_admission_waiting\{pool="read"\} [0-2]\n/);
    assert.ok(performance.now() - started < 1000);
    const refusedFast = await withHeaders;
    assert.equal(refusedFast.status, 503);
    assert.ok(Number(refusedFast.headers.get('retry-after')) >= 1, 'Retry-After');
    const body = await refusedFast.json();
    assert.match(body.error, /busy/);
    // Let the two running queries finish.
    setTimeout(() => void locker.query('ROLLBACK').then(() => (released = true)), 600);
    const results = await Promise.all(uncached);
    const statuses = results.map((r) => r.status);
    assert.ok(statuses.filter((s) => s === 503).length >= 8, `most refused: ${statuses}`);
    assert.ok(statuses.filter((s) => s === 200).length >= 2, `the running ones answered: ${statuses}`);
    for (const r of results) {
      assert.doesNotMatch(JSON.stringify(r.body), /unavailable/, 'busy is not reported as unavailable');
      if (r.status === 503) {
        assert.match(r.body.error, /busy/);
      }
    }
  } finally {
    if (!released) {
      await locker.query('ROLLBACK').catch(() => undefined);
    }
    await locker.end();
  }
});

test('work the database could not take is refused before any cache lock is taken or given back', async () => {
  const prefix = uniqueName('ovl-lock').replace(/_/g, '-');
  const svc = await start({
    DB_POOL_MAX: '1',
    DB_QUEUE_MAX: '0',
    CACHE_PREFIX: prefix,
    DB_STATEMENT_TIMEOUT_MS: '30000',
  });
  const range = () => ({ from: Date.now() - 2 * HOUR, to: Date.now() });
  const locker = new Client({ connectionString: db.url });
  // Every command Redis runs on this service's lock keys (MONITOR sees them all).
  const client = new Redis(REDIS_URL);
  const monitor = await client.monitor();
  const lockCommands: string[] = [];
  monitor.on('monitor', (_time: string, args: string[]) => {
    if (args.some((a) => a.startsWith(`{${prefix}}`) && a.endsWith(':lock'))) {
      lockCommands.push(args[0].toLowerCase());
    }
  });
  await locker.connect();
  await locker.query('BEGIN');
  await locker.query('LOCK TABLE metrics IN ACCESS EXCLUSIVE MODE');
  try {
    const running = postJson(`${svc.url}/api/v1/query`, {
      range: range(),
      queries: [{ refId: 'A', kind: 'stats', ruleId: 'lock-running' }],
    });
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(lockCommands, ['set'], 'the running answer took its lock');
    const refused = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        postJson(`${svc.url}/api/v1/query`, {
          range: range(),
          queries: [{ refId: 'A', kind: 'stats', ruleId: `lock-${i}` }],
        })
      )
    );
    for (const r of refused) {
      assert.equal(r.status, 503);
      assert.match(r.body.error, /busy/);
    }
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(lockCommands, ['set'], 'twenty refusals, no lock taken or given back');
    await locker.query('ROLLBACK');
    assert.equal((await running).status, 200);
  } finally {
    await locker.query('ROLLBACK').catch(() => undefined);
    await locker.end();
    monitor.disconnect();
    client.disconnect();
  }
});

/** A figure of the service's /metrics: the sum of every series of `name`. */
async function metricSum(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let sum = 0;
  for (const m of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))) {
    sum += Number(m[1]);
  }
  return sum;
}

async function until(check: () => Promise<boolean>, what: string, ms = 5000): Promise<void> {
  for (const deadline = Date.now() + ms; !(await check());) {
    assert.ok(Date.now() < deadline, `not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

test('requests whose clients went while they waited for the database are given up: they leave the queue at once and never run', async () => {
  const svc = await start({
    DB_POOL_MAX: '1',
    DB_QUEUE_WAIT_MS: '20000',
    DB_STATEMENT_TIMEOUT_MS: '30000',
    WARM_ON_START: 'false',
  });
  const body = (ruleId: string) => ({
    range: { from: Date.now() - 2 * HOUR, to: Date.now() },
    queries: [{ refId: 'A', kind: 'stats', ruleId }],
  });
  const waiting = () => metricSum(svc.url, 'ruleperf_db_admission_waiting');
  const locker = new Client({ connectionString: db.url });
  await locker.connect();
  await locker.query('BEGIN');
  await locker.query('LOCK TABLE metrics IN ACCESS EXCLUSIVE MODE');
  let released = false;
  try {
    const running = postJson(`${svc.url}/api/v1/query`, body('rule-0001'));
    await until(
      async () => (await metricSum(svc.url, 'ruleperf_db_admission_active')) === 1,
      'the first holds the slot'
    );
    // As Grafana's data proxy does when a panel's range changes: the connection closed, unanswered.
    // Half through Express (a query string on the URL), half on the fast path.
    const gone = Array.from({ length: 10 }, (_, i) => {
      const req = request(`${svc.url}/api/v1/query${i % 2 ? '?via=express' : ''}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        agent: false,
      });
      req.on('error', () => undefined);
      req.end(JSON.stringify(body(`rule-001${i}`)));
      return req;
    });
    await until(async () => (await waiting()) === 10, 'ten requests wait for the slot');
    const statements = await metricSum(svc.url, 'ruleperf_db_queries_total');
    for (const req of gone) {
      req.destroy();
    }
    await until(async () => (await waiting()) === 0, 'the ten left the queue while the slot was still held');
    const live = postJson(`${svc.url}/api/v1/query`, body('rule-0002'));
    await until(async () => (await waiting()) === 1, 'the next request waits first in line');
    await locker.query('ROLLBACK');
    released = true;
    assert.equal((await running).status, 200);
    const answered = await live;
    assert.equal(answered.status, 200);
    assert.equal(answered.body.results.A.frames[0].schema.meta.custom.cache, 'miss');
    // Two answers of one statement each; the ten would have added ten more.
    const ran = (await metricSum(svc.url, 'ruleperf_db_queries_total')) - statements;
    assert.ok(ran <= 4, `${ran} statements after the ten went`);
    // Nothing of them was left behind (a lock, a failure): asked again, answered.
    const again = await postJson(`${svc.url}/api/v1/query`, body('rule-0003'));
    assert.equal(again.status, 200);
    assert.equal(again.body.results.A.frames[0].schema.meta.custom.cache, 'miss');
  } finally {
    if (!released) {
      await locker.query('ROLLBACK').catch(() => undefined);
    }
    await locker.end();
  }
});

test('/readyz says not ready while the first warming pass runs, ready once it is done, and at the latest after READY_WAITS_FOR_WARMING_SECONDS', async () => {
  const locker = new Client({ connectionString: db.url });
  await locker.connect();
  await locker.query('BEGIN');
  // Every dashboard answer reads raw rows at the live edge: holding the table holds warming.
  await locker.query('LOCK TABLE metrics IN ACCESS EXCLUSIVE MODE');
  try {
    const warming = await start({ WARM_ON_START: 'true', DB_STATEMENT_TIMEOUT_MS: '30000' });
    const patient = await start({ WARM_ON_START: 'true', READY_WAITS_FOR_WARMING_SECONDS: '1' });
    const held = await fetch(`${warming.url}/readyz`);
    assert.equal(held.status, 503);
    const body = await held.json();
    assert.equal(body.status, 'not_ready');
    assert.equal(body.database.ok, true, 'the database is fine');
    assert.equal(body.cache.warmed, false);
    await new Promise((r) => setTimeout(r, 1200));
    const late = await fetch(`${patient.url}/readyz`);
    assert.equal(late.status, 200, 'ready after its 1 s wait although warming still runs');
    assert.equal((await late.json()).cache.warmed, false);
    assert.equal((await fetch(`${warming.url}/readyz`)).status, 503, 'the other still waits (60 s by default)');
    await locker.query('ROLLBACK');
    let ready: Response | null = null;
    for (let i = 0; i < 100 && ready?.status !== 200; i++) {
      await new Promise((r) => setTimeout(r, 100));
      ready = await fetch(`${warming.url}/readyz`);
    }
    assert.equal(ready!.status, 200, 'ready once the first pass is done');
    assert.equal((await ready!.json()).cache.warmed, true);
  } finally {
    await locker.query('ROLLBACK').catch(() => undefined);
    await locker.end();
  }
});

test('a flood of variable requests shares one read in turn with the answers: never "unavailable", and the lists are served again once the database answers', async () => {
  const svc = await start({ DB_POOL_MAX: '2', DB_CONNECT_TIMEOUT_MS: '300', DB_STATEMENT_TIMEOUT_MS: '1500' });
  const locker = new Client({ connectionString: db.url });
  await locker.connect();
  await locker.query('BEGIN');
  // The categories list (not read at start, as rules and parsers are for the cache's
  // generations) waits on this lock: read per request, the waiting requests ran out of the
  // pool's connect timeout and were told the database is unavailable.
  await locker.query('LOCK TABLE rules IN ACCESS EXCLUSIVE MODE');
  let released = false;
  try {
    const replies = await Promise.all(
      Array.from({ length: 40 }, () =>
        fetch(`${svc.url}/api/v1/variables/categories`).then(async (r) => ({
          status: r.status,
          retryAfter: r.headers.get('retry-after'),
          text: await r.text(),
        }))
      )
    );
    await locker.query('ROLLBACK');
    released = true;
    for (const r of replies) {
      assert.doesNotMatch(r.text, /unavailable/, r.text);
      assert.equal(r.status, 503, r.text);
      assert.ok(r.retryAfter, 'with Retry-After');
    }
    const names = await fetch(`${svc.url}/api/v1/variables/categories`);
    assert.equal(names.status, 200, 'a failed read is not kept');
    assert.ok((await names.json()).values.length > 0);
  } finally {
    if (!released) {
      await locker.query('ROLLBACK');
    }
    await locker.end();
  }
});
