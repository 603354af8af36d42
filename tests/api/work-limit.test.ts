/**
 * Answers that would read too much are refused before they run (server/query/work.ts), on
 * real PostgreSQL: the estimate of the latency-histogram values a percentile answer merges
 * follows the data (checked against what the rollup really holds), an answer over
 * DB_MAX_HISTOGRAM_VALUES gets a 400 naming the estimate, the limit and how to narrow it,
 * without running its statement, and the same range without percentiles, or filtered to fewer
 * rules, is answered.
 */
import assert from 'node:assert/strict';
import { test, before, after } from 'node:test';
import { Client } from 'pg';
import { postJson, startTestService, uniqueName, type TestDatabase } from '../support/services';
import { historyDatabase, HOUR } from '../support/fixture';
import type { RunningService } from '../../server/main';

let db: TestDatabase;
const services: RunningService[] = [];
/** Two settled days of hourly buckets, ending at the newest complete bucket of the per-rule rollup. */
let range: { from: number; to: number };
/** What the per-rule hourly rollup really holds over `range`: histogram values of all rules, and the rules. */
let truth: { all: number; rules: number; rule: string };

before(async () => {
  db = await historyDatabase({ days: 4, rowsPerHour: 400 });
  const { rows } = await db.pool.query('SELECT max(bucket) AS newest FROM metrics_hourly_by_rule');
  const to = new Date(rows[0].newest).getTime() + HOUR;
  range = { from: to - 48 * HOUR, to };
  const held = await db.pool.query(
    `SELECT sum(cardinality(latency_sketch)) AS n, count(DISTINCT rule_id) AS rules, min(rule_id) AS rule
     FROM metrics_hourly_by_rule WHERE bucket >= $1 AND bucket < $2`,
    [new Date(range.from), new Date(range.to)]
  );
  truth = { all: Number(held.rows[0].n), rules: Number(held.rows[0].rules), rule: held.rows[0].rule };
});
after(async () => {
  await Promise.all(services.map((s) => s.stop()));
  await db?.drop();
});

async function start(limit: number, env: Record<string, string> = {}) {
  const svc = await startTestService({
    DATABASE_URL: db.url,
    CACHE_PREFIX: uniqueName('work').replace(/_/g, '-'),
    DB_MAX_HISTOGRAM_VALUES: String(limit),
    ...env,
  });
  services.push(svc);
  return svc;
}

const statementsRun = async (svc: RunningService) =>
  (await svc.metrics.dbQueries.get()).values.reduce((n, v) => n + v.value, 0);

const perRule = (metrics: string[], filter: Record<string, unknown> = {}) => ({
  range,
  intervalMs: HOUR,
  maxDataPoints: 1000,
  queries: [{ refId: 'A', kind: 'timeseries', groupBy: 'ruleId', limit: 5, metrics, ...filter }],
});

const estimateIn = (error: string) =>
  Number(/about ([\d,]+) latency-histogram values/.exec(error)![1].replace(/,/g, ''));

test("the estimate follows the data: within a quarter of the histogram values the rollup really holds; a one-rule filter keeps one rule's share", async () => {
  // A limit of 1 refuses every percentile answer, so each refusal tells its estimate.
  const svc = await start(1);
  assert.ok(truth.all > 1000 && truth.rules > 10, JSON.stringify(truth));
  const all = await postJson(`${svc.url}/api/v1/query`, perRule(['p95ExecutionTimeMs']));
  assert.equal(all.status, 400, JSON.stringify(all.body).slice(0, 300));
  const one = await postJson(`${svc.url}/api/v1/query`, perRule(['p95ExecutionTimeMs'], { ruleId: truth.rule }));
  assert.equal(one.status, 400);
  for (const [estimate, real] of [
    [estimateIn(all.body.error), truth.all],
    // Rules differ in volume; the estimate gives a filtered rule the average rule's share.
    [estimateIn(one.body.error), truth.all / truth.rules],
  ]) {
    assert.ok(estimate > 0.75 * real && estimate < 1.33 * real, `estimate ${estimate}, really ${real}`);
  }
});

test('over the limit: 400 naming the estimate, the limit and how to narrow it, with no statement run; without percentiles or filtered to one rule, answered', async () => {
  const limit = Math.round(truth.all / 2);
  const svc = await start(limit);
  const before = await statementsRun(svc);
  const refused = await postJson(`${svc.url}/api/v1/query`, perRule(['p95ExecutionTimeMs', 'executionCount']));
  assert.equal(refused.status, 400, JSON.stringify(refused.body).slice(0, 300));
  // Five of the rules named: the limit is the configured one over 1 + 4 × (5 / rules).
  const named = Math.round(limit / (1 + (4 * 5) / truth.rules)).toLocaleString('en-US');
  assert.match(
    refused.body.error,
    new RegExp(
      `limit ${named} with 5 named series of ${truth.rules} ruleId values; ${limit.toLocaleString('en-US')} for one series`
    )
  );
  assert.match(refused.body.error, /shorter range.*filter.*daily points.*Min interval 1d.*no percentile metrics/);
  assert.equal(refused.body.results.A.status, 400);
  assert.equal(await statementsRun(svc), before, 'the refused answer ran no statement');

  const counts = await postJson(`${svc.url}/api/v1/query`, perRule(['executionCount', 'errorCount']));
  assert.equal(counts.status, 200, JSON.stringify(counts.body).slice(0, 300));
  assert.ok(counts.body.results.A.frames.length > 1);
  const oneRule = await postJson(`${svc.url}/api/v1/query`, perRule(['p95ExecutionTimeMs'], { ruleId: truth.rule }));
  assert.equal(oneRule.status, 200, JSON.stringify(oneRule.body).slice(0, 300));
  assert.equal(oneRule.body.results.A.frames[0].schema.fields[1].labels.ruleId, truth.rule);
  assert.equal((await fetch(`${svc.url}/healthz`)).status, 200);
});

test('in a request of several queries, the one over the limit carries its 400 and the others are answered', async () => {
  const svc = await start(Math.round(truth.all / 2));
  const r = await postJson(`${svc.url}/api/v1/query`, {
    range,
    intervalMs: HOUR,
    maxDataPoints: 1000,
    queries: [
      { refId: 'A', kind: 'timeseries', groupBy: 'ruleId', limit: 5, metrics: ['p99ExecutionTimeMs'] },
      { refId: 'B', kind: 'stats' },
    ],
  });
  assert.equal(r.status, 200, JSON.stringify(r.body).slice(0, 300));
  assert.equal(r.body.results.A.status, 400);
  assert.match(r.body.results.A.error, /latency-histogram values/);
  assert.equal(r.body.results.B.error, undefined);
  assert.ok(r.body.results.B.frames[0].data.values[0][0] > 0);
});

test('answers the statement timeout cancelled lower the limit to what fits once they are typical: the same question is then refused at once as busy (retry), a smaller one answered', async () => {
  // Within the configured limit, but this database (its rollup locked) takes longer than the timeout.
  // (No lock timeout of its own: the lock stands in for a slow machine, so the statement timeout cancels.)
  const svc = await start(truth.all * 3, { DB_STATEMENT_TIMEOUT_MS: '300', DB_LOCK_TIMEOUT_MS: '0' });
  const locker = new Client({ connectionString: db.url });
  await locker.connect();
  const cancel = async () => {
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE metrics_hourly_by_rule IN ACCESS EXCLUSIVE MODE');
    const cancelled = await postJson(`${svc.url}/api/v1/query`, perRule(['p95ExecutionTimeMs']));
    assert.match(JSON.stringify(cancelled.body), /took too long and was cancelled/);
    await locker.query('ROLLBACK');
  };
  try {
    // One cancelled answer (a lock held a moment) says nothing of the machine: as large a question
    // is answered after it (another one: this one's answer is cached then).
    await cancel();
    const again = await postJson(`${svc.url}/api/v1/query`, perRule(['p99ExecutionTimeMs']));
    assert.equal(again.status, 200, JSON.stringify(again.body).slice(0, 300));
    // A second: now most of the recent large answers (two of three) were this slow.
    await cancel();
  } finally {
    await locker.end();
  }
  const before = await statementsRun(svc);
  const started = performance.now();
  const res = await fetch(`${svc.url}/api/v1/query`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(perRule(['p95ExecutionTimeMs'])),
  });
  const refused = { status: res.status, body: await res.json() };
  // Nothing is wrong with the question (it is within the configured limit): busy, not a 400.
  assert.equal(refused.status, 503, JSON.stringify(refused.body).slice(0, 300));
  assert.equal(res.headers.get('retry-after'), '60');
  assert.ok(performance.now() - started < 1000, 'refused without waiting for the database');
  assert.match(
    refused.body.error,
    /slower than usual now: recent large answers took about [\d.]+ µs per value of one series/
  );
  assert.match(refused.body.error, /more than 60 % of the 300 ms statement timeout/);
  assert.equal(await statementsRun(svc), before, 'the refused answer ran no statement');
  const oneRule = await postJson(`${svc.url}/api/v1/query`, perRule(['p95ExecutionTimeMs'], { ruleId: truth.rule }));
  assert.equal(oneRule.status, 200, JSON.stringify(oneRule.body).slice(0, 300));
});

test('DB_MAX_HISTOGRAM_VALUES=0 refuses nothing for its size', async () => {
  const svc = await start(0);
  const r = await postJson(`${svc.url}/api/v1/query`, perRule(['p95ExecutionTimeMs']));
  assert.equal(r.status, 200, JSON.stringify(r.body).slice(0, 300));
});

test('a range reaching back before the history is estimated from the stretch the rollups hold', async () => {
  const svc = await start(1);
  const ask = async (days: number) => {
    const r = await postJson(`${svc.url}/api/v1/query`, {
      ...perRule(['p95ExecutionTimeMs']),
      range: { from: range.to - days * 24 * HOUR, to: range.to },
    });
    assert.equal(r.status, 400, JSON.stringify(r.body).slice(0, 300));
    return estimateIn(r.body.error);
  };
  // The history holds 4 days: asking for 30 reads no more than asking for 5.
  const [thirty, five] = [await ask(30), await ask(5)];
  assert.ok(thirty <= five * 1.05, `30 days: ${thirty}, 5 days: ${five}`);
});
