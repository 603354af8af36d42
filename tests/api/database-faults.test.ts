/** Database down → 503 JSON fast, and recovery without a restart; runaway queries are cut. */
import assert from 'node:assert/strict';
import { test, before, after } from 'node:test';
import { Client } from 'pg';
import { postJson, startTestService, PG_HOST, PG_PORT, type TestDatabase } from '../support/services';
import { historyDatabase, DAY } from '../support/fixture';
import { TcpProxy } from '../support/tcp-proxy';
import type { RunningService } from '../../server/main';
import { createPools, isReadDeadline, READ_DEADLINE_MARGIN_MS } from '../../server/db/pools';
import { loadConfig } from '../../server/config';
import { VARIABLES_MAX_AGE_MS } from '../../server/http/variables';

let db: TestDatabase;
let proxy: TcpProxy;
let svc: RunningService;
const body = () => ({ range: { from: Date.now() - DAY, to: Date.now() }, queries: [{ refId: 'A', kind: 'stats' }] });

before(async () => {
  db = await historyDatabase({ days: 2, rowsPerHour: 200 });
  proxy = new TcpProxy(PG_HOST, PG_PORT);
  const port = await proxy.start();
  svc = await startTestService({
    DATABASE_URL: db.url.replace(`:${PG_PORT}/`, `:${port}/`),
    CACHE_ENABLED: 'false',
    DB_STATEMENT_TIMEOUT_MS: '400',
  });
});
after(async () => {
  await svc?.stop();
  await proxy?.stop();
  await db?.drop();
});

test('database down: 503 JSON within 1 s, readyz says so, and it recovers without a restart', async () => {
  assert.equal((await postJson(`${svc.url}/api/v1/query`, body())).status, 200);
  await proxy.stop();
  for (let i = 0; i < 3; i++) {
    const started = performance.now();
    const r = await postJson(`${svc.url}/api/v1/query`, body());
    const ms = performance.now() - started;
    assert.equal(r.status, 503, JSON.stringify(r.body));
    assert.match(r.body.error, /database is unavailable/);
    assert.ok(ms < 1000, `answered in ${ms.toFixed(0)} ms`);
  }
  // Every route that reads the database says when to retry.
  const variables = await fetch(`${svc.url}/api/v1/variables/rules`);
  assert.equal(variables.status, 503);
  assert.equal(variables.headers.get('retry-after'), '5');
  assert.match((await variables.json()).error, /database is unavailable/);
  const ready = await fetch(`${svc.url}/readyz`);
  assert.equal(ready.status, 503);
  assert.equal((await ready.json()).database.ok, false);

  await proxy.start();
  let status = 0;
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline && status !== 200) {
    status = (await postJson(`${svc.url}/api/v1/query`, body())).status;
    if (status !== 200) {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  assert.equal(status, 200, 'recovered');
  assert.equal((await fetch(`${svc.url}/readyz`)).status, 200);
});

test('a variable list read before is served, marked stale, while the database cannot give one; a list never read is a 503', async () => {
  const fresh = await fetch(`${svc.url}/api/v1/variables/parsers`);
  assert.equal(fresh.status, 200);
  const listed = await fresh.json();
  assert.ok(listed.values.length > 0);
  assert.equal(listed.stale, undefined, 'a fresh list is not marked');
  const readAt = Date.now();
  await proxy.stop();
  try {
    // Past the lists' age limit (VARIABLES_MAX_AGE_MS): the list is read again, and that read fails.
    await new Promise((r) => setTimeout(r, Math.max(0, readAt + VARIABLES_MAX_AGE_MS + 200 - Date.now())));
    for (let i = 0; i < 2; i++) {
      const r = await fetch(`${svc.url}/api/v1/variables/parsers`);
      assert.equal(r.status, 200);
      const stale = await r.json();
      assert.deepEqual(stale.values, listed.values);
      assert.equal(stale.stale, true);
      assert.ok(Math.abs(Date.parse(stale.listedAt) - readAt) < 2000, stale.listedAt);
    }
    // No test of this file reads the source types' list (nor answers one with an unknown value).
    const never = await fetch(`${svc.url}/api/v1/variables/sourceTypes`);
    assert.equal(never.status, 503, 'nothing to fall back on');
  } finally {
    await proxy.start();
  }
});

test('a query kept waiting for a lock is cancelled before its statement timeout, saying so (503 with Retry-After, not a hang, not "narrow the range")', async () => {
  const locker = new Client({ connectionString: db.url });
  await locker.connect();
  try {
    await locker.query('BEGIN');
    // Every answer reads the raw live edge: holding the table makes the query wait.
    await locker.query('LOCK TABLE metrics IN ACCESS EXCLUSIVE MODE');
    const started = performance.now();
    const r = await postJson(`${svc.url}/api/v1/query`, body());
    const ms = performance.now() - started;
    assert.equal(r.status, 503, JSON.stringify(r.body));
    assert.match(
      JSON.stringify(r.body),
      /waiting for a lock held by other work .*\(canceling statement due to lock timeout\); retry in a few seconds/
    );
    assert.doesNotMatch(JSON.stringify(r.body), /narrow the range/);
    assert.ok(ms < 2000, `cut after ${ms.toFixed(0)} ms`);
    const again = await fetch(`${svc.url}/api/v1/query`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body()),
    });
    assert.equal(again.status, 503);
    assert.equal(again.headers.get('retry-after'), '5');
  } finally {
    await locker.query('ROLLBACK');
    await locker.end();
  }
  assert.equal((await postJson(`${svc.url}/api/v1/query`, body())).status, 200);
});

test("a connection lost while lent out (a refresh's backend terminated) fails its statement, not the process", async () => {
  const pools = createPools(loadConfig({ DATABASE_URL: db.url }), db.url);
  try {
    for (const pool of [pools.write, pools.read]) {
      const client = await pool.connect();
      const { rows } = await client.query('SELECT pg_backend_pid() AS pid');
      const running = client.query('SELECT pg_sleep(5)').then(
        () => 'finished',
        (err: Error) => err.message
      );
      const admin = new Client({ connectionString: db.url });
      await admin.connect();
      await admin.query('SELECT pg_terminate_backend($1)', [rows[0].pid]);
      await admin.end();
      assert.match(await running, /terminat/i, 'the statement fails');
      // Idle but still lent out: the end of its connection reaches no query at all.
      await new Promise((r) => setTimeout(r, 200));
      client.release(true);
      assert.equal((await pool.query('SELECT 1 AS one')).rows[0].one, 1, 'the pool carries on');
    }
  } finally {
    await pools.end();
  }
});

test('a database that stops answering (its connections silent, no FIN, no RST): a read gives up soon after the statement timeout, and the service answers 503, not a hang', async () => {
  // The read pool itself, on a connection it holds idle: the deadline is the client's own.
  // On a proxy of its own: silencing the service's proxy here would silence its idle connections too.
  const own = new TcpProxy(PG_HOST, PG_PORT);
  const url = db.url.replace(`:${PG_PORT}/`, `:${await own.start()}/`);
  const pools = createPools(loadConfig({ DATABASE_URL: url, DB_STATEMENT_TIMEOUT_MS: '400' }), url);
  try {
    await pools.read.query('SELECT 1');
    own.silenceOpen();
    const started = performance.now();
    const outcome = await Promise.race([
      pools.read.query('SELECT 1').then(
        () => 'answered',
        (err: Error) => err
      ),
      new Promise<string>((resolve) => setTimeout(() => resolve('still waiting after 10 s'), 10_000)),
    ]);
    const ms = performance.now() - started;
    assert.ok(outcome instanceof Error && isReadDeadline(outcome), String(outcome));
    assert.ok(ms < 400 + READ_DEADLINE_MARGIN_MS + 1500, `gave up after ${ms.toFixed(0)} ms`);
  } finally {
    void pools.end().catch(() => undefined);
    await own.stop();
  }
  // The service, its open connections silenced: answered within seconds, and it recovers.
  assert.equal((await postJson(`${svc.url}/api/v1/query`, body())).status, 200, 'connections open and idle');
  proxy.silenceOpen();
  const started = performance.now();
  const r = await Promise.race([
    postJson(`${svc.url}/api/v1/query`, body()),
    new Promise<null>((resolve) => setTimeout(() => resolve(null), 10_000)),
  ]);
  const ms = performance.now() - started;
  assert.ok(r, 'answered within 10 s');
  // 200 when it happened to take a new connection (new ones pass): what matters is no hang.
  assert.ok(r.status === 200 || r.status === 503, JSON.stringify(r.body).slice(0, 300));
  if (r.status === 503) {
    assert.match(r.body.error, /did not answer in time|database is unavailable/);
  }
  assert.ok(ms < 400 + READ_DEADLINE_MARGIN_MS + 1500, `answered after ${ms.toFixed(0)} ms`);
  let status = 0;
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline && status !== 200) {
    status = (await postJson(`${svc.url}/api/v1/query`, body())).status;
  }
  assert.equal(status, 200, 'recovered');
});
