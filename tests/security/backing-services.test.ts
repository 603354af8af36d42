/**
 * TLS and credentials to the backing services, against real servers this test starts:
 * Redis over TLS (`rediss://` with a password, the CA from REDIS_TLS_CA_FILE) and a
 * PostgreSQL that accepts only TLS with a scram password (`sslmode` in DATABASE_URL). Each
 * refusal (wrong CA, wrong password, no TLS) is the server's, and the service says so
 * without the secret. Finally the real `npm start` process runs with every secret set, at
 * trace level: no secret appears in its output or in any answer.
 */
import assert from 'node:assert/strict';
import { test, before, after } from 'node:test';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Client } from 'pg';
import Redis from 'ioredis';
import pino from 'pino';
import { loadConfig } from '../../server/config';
import { startService, type RunningService } from '../../server/main';
import { freshDatabase, postJson, uniqueName, type TestDatabase } from '../support/services';
import {
  freePort,
  makeCertificates,
  startTlsPostgres,
  startTlsRedis,
  type Certificates,
  type PrivateServer,
} from './private-servers';

const REDIS_PASSWORD = 'redis-pw-Zq81x';
const PG_PASSWORD = 'pg-pw-Lw27c';
const READ_TOKEN = 'read-token-Hh55k';
const ADMIN_TOKEN = 'admin-token-Pp03m';
const SECRETS = [REDIS_PASSWORD, PG_PASSWORD, READ_TOKEN, ADMIN_TOKEN];
const ROOT = join(__dirname, '..', '..');

let dir: string;
let certs: Certificates | string;
let redis: PrivateServer | string = 'not started';
let pg: PrivateServer | string = 'not started';
let db: TestDatabase;
const running: RunningService[] = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ruleperf-tls-'));
  certs = makeCertificates(dir);
  if (typeof certs === 'string') {
    return;
  }
  [redis, pg] = await Promise.all([startTlsRedis(certs, REDIS_PASSWORD), startTlsPostgres(certs, PG_PASSWORD)]);
  db = await freshDatabase();
});
after(async () => {
  await Promise.all(running.map((s) => s.stop()));
  if (typeof redis !== 'string') {
    await redis.stop();
  }
  if (typeof pg !== 'string') {
    await pg.stop();
  }
  await db?.drop();
  rmSync(dir, { recursive: true, force: true });
});

const skipReason = (...servers: Array<PrivateServer | string>) =>
  typeof certs === 'string' ? certs : servers.find((s): s is string => typeof s === 'string');
const redisUrl = (password: string, scheme = 'rediss') =>
  `${scheme}://:${password}@127.0.0.1:${(redis as PrivateServer).port}`;
const pgUrl = (params: string, password = PG_PASSWORD) =>
  `postgres://postgres:${password}@127.0.0.1:${(pg as PrivateServer).port}/postgres?${params}`;

/** An in-process service; `log` collects its lines. */
async function serve(env: Record<string, string>, log: string[] = []): Promise<RunningService> {
  const config = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    CACHE_PREFIX: uniqueName('t').replace(/_/g, '-'),
    WARM_ON_START: 'false',
    WARM_INTERVAL_SECONDS: '0',
    REFRESH_SCHEDULER: 'off',
    ...env,
  });
  const sink = new Writable({
    write(chunk, _enc, done) {
      log.push(String(chunk));
      done();
    },
  });
  const svc = await startService(config, pino({ level: 'trace' }, sink));
  running.push(svc);
  return svc;
}

/** The last hour as of `at` (pass one instant to ask the same question twice, whatever minute it is by then). */
const ask = async (svc: RunningService, at = Date.now()) => {
  const r = await postJson(`${svc.url}/api/v1/query`, {
    range: { from: at - 3_600_000, to: at },
    queries: [{ refId: 'A' }],
  });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body.results.A.frames[0].schema.meta.custom.cache as string;
};

test('Redis over TLS with a password (rediss://, REDIS_TLS_CA_FILE): the cache works', async (t) => {
  const reason = skipReason(redis);
  if (reason) {
    return t.skip(reason);
  }
  const svc = await serve({
    DATABASE_URL: db.url,
    REDIS_URL: redisUrl(REDIS_PASSWORD),
    REDIS_TLS_CA_FILE: (certs as Certificates).ca,
  });
  assert.equal(svc.cache!.state(), 'up');
  const at = Date.now();
  assert.equal(await ask(svc, at), 'miss');
  assert.equal(await ask(svc, at), 'hit');
  // The entry is in that Redis, reached the same way from here.
  const client = new Redis(redisUrl(REDIS_PASSWORD), {
    tls: { ca: readFileSync((certs as Certificates).ca) },
    maxRetriesPerRequest: 1,
  });
  try {
    assert.ok((await client.dbsize()) > 0);
  } finally {
    client.disconnect();
  }
});

test('Redis refusals (unknown CA, wrong password, no TLS) leave the cache bypassed, never a failed query', async (t) => {
  const reason = skipReason(redis);
  if (reason) {
    return t.skip(reason);
  }
  const refusals: Array<Record<string, string>> = [
    { REDIS_URL: redisUrl(REDIS_PASSWORD) }, // the system CAs do not know this one
    { REDIS_URL: redisUrl('wrong-password'), REDIS_TLS_CA_FILE: (certs as Certificates).ca },
    { REDIS_URL: redisUrl(REDIS_PASSWORD, 'redis') }, // plain text to a TLS port
  ];
  // Each named in the log by its cause (a wrong password was logged as "not answering" alone).
  const causes = [/certificate/i, /WRONGPASS|invalid username-password/, /ECONNRESET|EPIPE|closed/i]; // the last: TLS spoken to in plain text
  for (const [i, env] of refusals.entries()) {
    const log: string[] = [];
    const svc = await serve({ DATABASE_URL: db.url, ...env }, log);
    assert.equal(await ask(svc), 'bypass', JSON.stringify(Object.keys(env)));
    const said = log.filter((line) => line.includes("the cache's Redis:"));
    assert.ok(
      said.some((line) => causes[i].test(line)),
      `refusal ${i}: ${said.join('') || log.filter((l) => /redis/i.test(l)).join('')}`
    );
  }
  assert.throws(
    () => loadConfig({ REDIS_URL: redisUrl(REDIS_PASSWORD, 'redis'), REDIS_TLS_CA_FILE: (certs as Certificates).ca }),
    /REDIS_TLS_CA_FILE: applies to a rediss:\/\/ REDIS_URL only/
  );
  assert.throws(
    () => loadConfig({ REDIS_URL: redisUrl(REDIS_PASSWORD), REDIS_TLS_CA_FILE: join(dir, 'missing.pem') }),
    /REDIS_TLS_CA_FILE: no such file/
  );
});

test('PostgreSQL with sslmode in DATABASE_URL: verify-full with the CA works (every connection encrypted); refusals say why without the password', async (t) => {
  const reason = skipReason(pg);
  if (reason) {
    return t.skip(reason);
  }
  const ca = (certs as Certificates).ca;
  const svc = await serve({ DATABASE_URL: pgUrl(`sslmode=verify-full&sslrootcert=${ca}`), CACHE_ENABLED: 'false' });
  assert.equal((await fetch(`${svc.url}/readyz`)).status, 200);
  assert.equal(await ask(svc), 'bypass');
  const check = new Client({ connectionString: pgUrl(`sslmode=verify-full&sslrootcert=${ca}`) });
  await check.connect();
  const { rows } = await check.query(
    "SELECT a.application_name, s.ssl FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) WHERE a.application_name LIKE 'ruleperf%'"
  );
  await check.end();
  assert.ok(rows.length > 0 && rows.every((r) => r.ssl === true), JSON.stringify(rows));
  // libpq's meaning of sslmode=require (encrypted, certificate not checked) is available explicitly.
  const libpq = await serve({ DATABASE_URL: pgUrl('uselibpqcompat=true&sslmode=require'), CACHE_ENABLED: 'false' });
  assert.equal((await fetch(`${libpq.url}/readyz`)).status, 200);

  for (const [params, password, expected] of [
    ['sslmode=verify-full', PG_PASSWORD, /certificate/i],
    ['sslmode=disable', PG_PASSWORD, /no pg_hba\.conf entry.*no encryption/],
    [`sslmode=verify-full&sslrootcert=${ca}`, 'wrong-password', /password authentication failed/],
  ] as const) {
    await assert.rejects(serve({ DATABASE_URL: pgUrl(params, password), CACHE_ENABLED: 'false' }), (err: Error) => {
      assert.match(err.message, expected, params);
      assert.ok(!err.message.includes(PG_PASSWORD), 'the password is not in the error');
      return true;
    });
  }
});

/** Runs `npm start`'s entry point until it is ready (or exits); all output is kept. */
function startProcess(env: Record<string, string>) {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'server', 'main.ts')], {
    env: { ...process.env, API_TOKEN: '', API_ADMIN_TOKEN: '', HOST: '127.0.0.1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const ready = new Promise<string | null>((resolve) => {
    const timer = setInterval(() => {
      const m = /ruleperf answers at (http:\/\/\S+)/.exec(output);
      if (m || child.exitCode !== null) {
        clearInterval(timer);
        resolve(m ? m[1] : null);
      }
    }, 100);
  });
  return { child, ready, exited, output: () => output };
}

test('no secret (passwords in URLs, tokens) appears in the log, the printed banner or any answer', async (t) => {
  const reason = skipReason(redis, pg);
  if (reason) {
    return t.skip(reason);
  }
  const ca = (certs as Certificates).ca;
  const port = await freePort();
  const env = {
    PORT: String(port),
    DATABASE_URL: pgUrl(`sslmode=verify-full&sslrootcert=${ca}`),
    REDIS_URL: redisUrl(REDIS_PASSWORD),
    REDIS_TLS_CA_FILE: ca,
    API_TOKEN: READ_TOKEN,
    API_ADMIN_TOKEN: ADMIN_TOKEN,
    LOG_LEVEL: 'trace',
    CACHE_PREFIX: uniqueName('t').replace(/_/g, '-'),
    REFRESH_SCHEDULER: 'on',
  };
  const proc = startProcess(env);
  const url = await proc.ready;
  assert.ok(url, proc.output());
  const answers: string[] = [];
  const call = async (path: string, init: RequestInit = {}) => {
    const res = await fetch(url + path, init);
    res.headers.forEach((value, name) => answers.push(`${name}: ${value}`));
    answers.push(await res.text());
  };
  const json = (token: string | null, body: unknown): RequestInit => ({
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  const query = { range: { from: 'now-1h', to: 'now' }, queries: [{ refId: 'A' }] };
  await call('/api/v1/query', json(READ_TOKEN, query));
  await call('/api/v1/query', json(READ_TOKEN, query));
  await call('/api/v1/query', json('wrong', query));
  await call('/api/v1/query', json(READ_TOKEN, { range: { from: 1, to: 'later' }, queries: [{ rule: 1 }] }));
  await call('/api/v1/invalidate', json(READ_TOKEN, { all: true }));
  await call('/api/v1/invalidate', json(ADMIN_TOKEN, { all: true }));
  await call('/api/v1/variables/rules', { headers: { authorization: `Bearer ${READ_TOKEN}` } });
  await call('/api/v1/cache/stats', { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  for (const open of ['/readyz', '/metrics', '/healthz']) {
    await call(open);
  }
  await call('/readyz', { headers: { authorization: `Bearer ${READ_TOKEN}` } });
  // The cache goes away and comes back: the reconnect paths log too.
  await (redis as PrivateServer).stop();
  await call('/api/v1/query', json(READ_TOKEN, query));
  await call('/api/v1/invalidate', json(ADMIN_TOKEN, { ruleId: 'rule-0001' }));
  redis = await startTlsRedis(certs as Certificates, REDIS_PASSWORD);
  proc.child.kill('SIGTERM');
  assert.equal(await proc.exited, 0, proc.output());
  const everything = proc.output() + answers.join('\n');
  assert.match(proc.output(), /"msg":"request"/, 'the log was written at trace level');
  for (const secret of SECRETS) {
    assert.ok(
      !everything.includes(secret),
      `a secret appears:\n${everything.slice(Math.max(0, everything.indexOf(secret) - 300), everything.indexOf(secret) + 50)}`
    );
  }

  // Failed starts say what is wrong, without the secret either.
  const badPassword = startProcess({
    ...env,
    DATABASE_URL: pgUrl(`sslmode=verify-full&sslrootcert=${ca}`, 'another-pw-Qx1'),
  });
  assert.equal(await badPassword.exited, 1);
  assert.match(badPassword.output(), /password authentication failed/);
  assert.ok(!badPassword.output().includes('another-pw-Qx1'));
  const malformed = startProcess({ ...env, DATABASE_URL: `postgres://postgres:${PG_PASSWORD}@[broken/x` });
  assert.equal(await malformed.exited, 2);
  assert.match(
    malformed.output(),
    /DATABASE_URL: must be a URL such as postgres:\/\/user:password@host:5432\/database/
  );
  for (const secret of SECRETS) {
    assert.ok(!malformed.output().includes(secret));
  }
});
