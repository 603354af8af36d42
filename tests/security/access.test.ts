/**
 * Secure by default: who may do what with which token, starts that are refused, the
 * warning for the compose stack's published token, the rate of "invalidate all", and the
 * example command printed at start.
 */
import assert from 'node:assert/strict';
import { test, before, after } from 'node:test';
import { spawnSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { request } from 'node:http';
import pino from 'pino';
import { ConfigError, loadConfig } from '../../server/config';
import { startService, type RunningService } from '../../server/main';
import { COMPOSE_DEFAULT_TOKEN, exampleCurl } from '../../server/http/security';
import { SCRAPES_RENDERED_PER_SECOND } from '../../server/http/app';
import { freshDatabase, postJson, REDIS_URL, uniqueName, type TestDatabase } from '../support/services';
import { hasRedisServer, startPrivateRedis } from '../support/private-redis';

const READ = 'read-token-for-access-tests';
const ADMIN = 'admin-token-for-access-tests';
const ROOT = join(__dirname, '..', '..');
let db: TestDatabase;
const running: RunningService[] = [];

before(async () => {
  db = await freshDatabase();
});
after(async () => {
  await Promise.all(running.map((s) => s.stop()));
  await db?.drop();
});

/** A service on the test database with `env`; its log lines are collected in `log`. */
async function serve(env: Record<string, string>, log: Array<Record<string, unknown>> = []): Promise<RunningService> {
  const config = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    REDIS_URL,
    CACHE_PREFIX: uniqueName('t').replace(/_/g, '-'),
    WARM_ON_START: 'false',
    WARM_INTERVAL_SECONDS: '0',
    REFRESH_SCHEDULER: 'off',
    DATABASE_URL: db.url,
    CACHE_NEAR_LEASE_MS: '0',
    ...env,
  });
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) {
        log.push(JSON.parse(line));
      }
      done();
    },
  });
  const svc = await startService(config, pino({ level: 'info' }, sink));
  running.push(svc);
  return svc;
}

const bearer = (token?: string): Record<string, string> => (token ? { authorization: `Bearer ${token}` } : {});
const queryBody = { range: { from: 'now-1h', to: 'now' }, queries: [{ refId: 'A', kind: 'stats' }] };

/** The status of each endpoint for a caller with `token`. */
async function statuses(svc: RunningService, token?: string) {
  const h = bearer(token);
  return {
    query: (await postJson(`${svc.url}/api/v1/query`, queryBody, h)).status,
    variables: (await fetch(`${svc.url}/api/v1/variables/statuses`, { headers: h })).status,
    stats: (await fetch(`${svc.url}/api/v1/cache/stats`, { headers: h })).status,
    invalidate: (await postJson(`${svc.url}/api/v1/invalidate`, { ruleId: 'rule-0001' }, h)).status,
    open: await Promise.all(['/healthz', '/readyz', '/metrics'].map(async (p) => (await fetch(svc.url + p)).status)),
  };
}

test('read and admin tokens: the read token reads, only the admin token invalidates', async () => {
  const svc = await serve({ API_TOKEN: READ, API_ADMIN_TOKEN: ADMIN });
  const open = [200, 200, 200];
  assert.deepEqual(await statuses(svc), { query: 401, variables: 401, stats: 401, invalidate: 401, open });
  assert.deepEqual(await statuses(svc, 'wrong'), { query: 401, variables: 401, stats: 401, invalidate: 401, open });
  assert.deepEqual(await statuses(svc, READ), { query: 200, variables: 200, stats: 200, invalidate: 403, open });
  assert.deepEqual(await statuses(svc, ADMIN), { query: 200, variables: 200, stats: 200, invalidate: 200, open });
  const refused = await postJson(`${svc.url}/api/v1/invalidate`, { all: true }, bearer(READ));
  assert.equal(refused.status, 403);
  assert.match(refused.body.error, /this token may only read: this endpoint needs the admin token \(API_ADMIN_TOKEN\)/);
});

test('with API_TOKEN alone nobody invalidates over HTTP; with API_ADMIN_TOKEN alone reads are open', async () => {
  const readOnly = await serve({ API_TOKEN: READ });
  assert.deepEqual(await statuses(readOnly, READ), {
    query: 200,
    variables: 200,
    stats: 200,
    invalidate: 403,
    open: [200, 200, 200],
  });
  const r = await postJson(`${readOnly.url}/api/v1/invalidate`, { ruleId: 'x' }, bearer(READ));
  assert.match(r.body.error, /set API_ADMIN_TOKEN on the service/);
  assert.equal(
    (await postJson(`${readOnly.url}/api/v1/invalidate`, { ruleId: 'x' })).status,
    401,
    'no token: authenticate first'
  );

  const adminOnly = await serve({ API_ADMIN_TOKEN: ADMIN });
  assert.deepEqual(await statuses(adminOnly), {
    query: 200,
    variables: 200,
    stats: 200,
    invalidate: 401,
    open: [200, 200, 200],
  });
  assert.equal((await statuses(adminOnly, 'wrong')).invalidate, 401);
  assert.equal((await statuses(adminOnly, ADMIN)).invalidate, 200);

  const none = await serve({});
  assert.deepEqual(await statuses(none), {
    query: 200,
    variables: 200,
    stats: 200,
    invalidate: 200,
    open: [200, 200, 200],
  });
});

test('a non-loopback HOST without API_TOKEN is refused at start, naming the settings; ALLOW_UNAUTHENTICATED=true allows it', () => {
  for (const host of ['0.0.0.0', '::', '192.168.1.20', 'ruleperf.internal']) {
    assert.throws(
      () => loadConfig({ HOST: host }),
      (err: Error) => {
        assert.ok(err instanceof ConfigError);
        assert.match(
          err.message,
          new RegExp(
            `HOST: ${host.replace(/\./g, '\\.')} accepts connections from other machines, but API_TOKEN is not set`
          )
        );
        assert.match(err.message, /ALLOW_UNAUTHENTICATED=true/);
        return true;
      }
    );
  }
  assert.throws(
    () => loadConfig({ HOST: '0.0.0.0', API_ADMIN_TOKEN: ADMIN }),
    /could query it\. Set API_TOKEN/,
    'reads would be open'
  );
  for (const host of ['127.0.0.1', '127.0.0.2', 'localhost', '::1', '[::1]']) {
    assert.equal(loadConfig({ HOST: host }).HOST, host);
  }
  assert.equal(loadConfig({ HOST: '0.0.0.0', API_TOKEN: READ }).API_TOKEN, READ);
  assert.equal(loadConfig({ HOST: '0.0.0.0', ALLOW_UNAUTHENTICATED: 'true' }).ALLOW_UNAUTHENTICATED, true);
  assert.throws(
    () => loadConfig({ API_TOKEN: READ, API_ADMIN_TOKEN: READ }),
    /API_ADMIN_TOKEN: must differ from API_TOKEN/
  );
});

test('`npm start` refuses the unsafe start with exit code 2 and says which setting to change', () => {
  const env = {
    ...process.env,
    HOST: '0.0.0.0',
    PORT: '0',
    API_TOKEN: '',
    API_ADMIN_TOKEN: '',
    ALLOW_UNAUTHENTICATED: '',
  };
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'server', 'main.ts')], {
    env,
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.equal(r.status, 2, r.stderr);
  assert.match(
    r.stderr,
    /^error: invalid configuration: HOST: 0\.0\.0\.0 accepts connections from other machines, but API_TOKEN is not set/
  );
  assert.doesNotMatch(r.stderr, /\s+at \S+ \(/, 'no stack trace');
});

test("the compose stack's published token works, with a warning in the log and on /readyz (in full only for token holders)", async () => {
  const log: Array<Record<string, unknown>> = [];
  const svc = await serve({ API_TOKEN: COMPOSE_DEFAULT_TOKEN, API_ADMIN_TOKEN: ADMIN }, log);
  assert.ok(
    log.some(
      (l) =>
        l.level === 40 &&
        /SECURITY WARNING: API_TOKEN is the published default of docker-compose\.yml/.test(String(l.msg))
    ),
    JSON.stringify(log)
  );
  assert.equal((await postJson(`${svc.url}/api/v1/query`, queryBody, bearer(COMPOSE_DEFAULT_TOKEN))).status, 200);
  const anonymous = await (await fetch(`${svc.url}/readyz`)).json();
  assert.equal(anonymous.status, 'ready');
  assert.equal(anonymous.warnings.length, 1);
  assert.match(anonymous.warnings[0], /reports security warnings; call \/readyz with the API token/);
  assert.ok(
    !JSON.stringify(anonymous).includes(COMPOSE_DEFAULT_TOKEN) && !JSON.stringify(anonymous).includes('docker-compose')
  );
  for (const token of [COMPOSE_DEFAULT_TOKEN, ADMIN]) {
    const holder = await (await fetch(`${svc.url}/readyz`, { headers: bearer(token) })).json();
    assert.equal(holder.warnings.length, 1);
    assert.match(
      holder.warnings[0],
      /API_TOKEN is the published default of docker-compose\.yml: anyone who has read that file can query this service/
    );
  }
  const clean = await serve({ API_TOKEN: READ });
  assert.deepEqual((await (await fetch(`${clean.url}/readyz`)).json()).warnings, []);
});

test('eleven "invalidate all" in a second: one applied, ten 429 with Retry-After; one rule is not limited', async () => {
  const svc = await serve({ API_ADMIN_TOKEN: ADMIN });
  const started = Date.now();
  const answers = await Promise.all(
    Array.from({ length: 11 }, () => postJson(`${svc.url}/api/v1/invalidate`, { all: true }, bearer(ADMIN)))
  );
  assert.ok(Date.now() - started < 1000, 'all eleven were answered within a second');
  assert.deepEqual(answers.map((a) => a.status).sort(), [200, ...Array(10).fill(429)]);
  const limited = await fetch(`${svc.url}/api/v1/invalidate`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...bearer(ADMIN) },
    body: '{"all": true}',
  });
  assert.equal(limited.status, 429);
  const retry = Number(limited.headers.get('retry-after'));
  assert.ok(retry >= 1 && retry <= 10, `Retry-After ${retry}`);
  assert.match(
    (await limited.json()).error,
    /invalidated less than 10 s ago on this instance; try again in \d+ s, or invalidate one rule or parser/
  );
  for (let i = 0; i < 3; i++) {
    assert.equal(
      (await postJson(`${svc.url}/api/v1/invalidate`, { ruleId: `rule-000${i}` }, bearer(ADMIN))).status,
      200
    );
  }

  // The applied one really was applied: an answer cached before it is a miss after the next "all".
  const unlimited = await serve({ API_ADMIN_TOKEN: ADMIN, INVALIDATE_ALL_INTERVAL_SECONDS: '0' });
  // One asked range: the same cache entry each time, even if a minute begins meanwhile.
  const askedAt = Date.now();
  const ask = async () =>
    (
      await postJson(`${unlimited.url}/api/v1/query`, {
        range: { from: askedAt - 7_200_000, to: askedAt },
        queries: [{ refId: 'A' }],
      })
    ).body.results.A.frames[0].schema.meta.custom.cache;
  await ask();
  assert.equal(await ask(), 'hit');
  for (let i = 0; i < 2; i++) {
    assert.equal(
      (await postJson(`${unlimited.url}/api/v1/invalidate`, { all: true }, bearer(ADMIN))).status,
      200,
      'INVALIDATE_ALL_INTERVAL_SECONDS=0: no limit'
    );
  }
  assert.equal(await ask(), 'miss');
});

test('an "invalidate all" that could not be applied does not use up the interval', async () => {
  // Nothing listens on port 1: the cache is unreachable, so invalidations answer 503.
  const svc = await serve({ API_ADMIN_TOKEN: ADMIN, REDIS_URL: 'redis://127.0.0.1:1' });
  for (let i = 0; i < 2; i++) {
    const r = await postJson(`${svc.url}/api/v1/invalidate`, { all: true }, bearer(ADMIN));
    assert.equal(r.status, 503, `attempt ${i + 1}: ${JSON.stringify(r.body)}`);
    assert.match(r.body.error, /may not have been applied/);
  }
});

test('the example printed at start works when API_TOKEN is exported, and says what to do when it is not', async () => {
  const svc = await serve({ API_TOKEN: READ });
  const command = exampleCurl(svc.url, { API_TOKEN: READ });
  assert.ok(!command.includes(READ), 'the token is never printed');
  const run = (env: Record<string, string | undefined>) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn('bash', ['-c', command], { env: { PATH: process.env.PATH, ...env } });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });
  const ok = await run({ API_TOKEN: READ });
  assert.equal(ok.code, 0, ok.stderr);
  const body = JSON.parse(ok.stdout);
  assert.equal(body.results.A.frames[0].schema.meta.custom.cache !== undefined, true, ok.stdout.slice(0, 200));
  const missing = await run({});
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /API_TOKEN: export API_TOKEN=<the token the service was started with>/);
  assert.equal(exampleCurl(svc.url, {}).includes('Authorization'), false, 'no header when the service has no token');
});

test('an invalidation that is not one: 400 naming what to send, a long array refused before validation', async () => {
  const svc = await serve({ API_ADMIN_TOKEN: ADMIN });
  const wrong = await postJson(`${svc.url}/api/v1/invalidate`, { ruleId: 5 }, bearer(ADMIN));
  assert.equal(wrong.status, 400);
  assert.match(wrong.body.error, /send \{"ruleId": "…"\}, \{"parserId": "…"\} or \{"all": true\}/);
  assert.equal(wrong.body.details[0].path, 'ruleId');
  const long = await postJson(
    `${svc.url}/api/v1/invalidate`,
    { ruleId: Array.from({ length: 5000 }, (_, i) => `rule-${i}`) },
    bearer(ADMIN)
  );
  assert.equal(long.status, 400);
  assert.match(long.body.error, /ruleId: has 5,000 items; at most \d+ are accepted anywhere/);
});

test('settings that cannot work are refused at start, each named: a token with spaces around it, a Redis URL that is none, a header timeout past the request timeout', () => {
  const refused = (env: Record<string, string>, message: RegExp) =>
    assert.throws(
      () => loadConfig(env),
      (err: Error) => err instanceof ConfigError && message.test(err.message)
    );
  refused({ API_TOKEN: 'tok ' }, /API_TOKEN: must not begin or end with spaces/);
  refused({ API_TOKEN: 'tok', API_ADMIN_TOKEN: '\tadmin' }, /API_ADMIN_TOKEN: must not begin or end with spaces/);
  refused({ REDIS_URL: 'garbage' }, /REDIS_URL: must be a redis:\/\/ or rediss:\/\/ URL/);
  refused(
    { HTTP_HEADERS_TIMEOUT_MS: '20000', HTTP_REQUEST_TIMEOUT_MS: '5000' },
    /HTTP_HEADERS_TIMEOUT_MS: 20000 is more than HTTP_REQUEST_TIMEOUT_MS \(5000\)/
  );
  for (const url of [
    'redis://127.0.0.1:6379',
    'rediss://u:p@cache.internal:6380',
    'REDIS://h',
    '/run/redis.sock',
    'redis:6379',
  ]) {
    assert.equal(loadConfig({ REDIS_URL: url }).REDIS_URL, url);
  }
  assert.equal(loadConfig({ API_TOKEN: 'a b' }).API_TOKEN, 'a b', 'spaces inside are a token like any other');
});

/** A request with a Host header of our choosing (fetch sets its own). */
function withHost(url: string, path: string, host: string, headers: Record<string, string> = {}): Promise<number> {
  const { port } = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: 'POST',
        headers: { host, 'content-type': 'application/json', ...headers },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      }
    );
    req.on('error', reject);
    req.end(JSON.stringify(path.endsWith('invalidate') ? { all: true } : queryBody));
  });
}

test('served without a token on loopback, requests addressed to another name (DNS rebinding from a web page) are refused; with a token the name does not matter', async () => {
  const open = await serve({});
  const port = new URL(open.url).port;
  for (const path of ['/api/v1/query', '/api/v1/invalidate']) {
    assert.equal(await withHost(open.url, path, `attacker.example:${port}`), 403, path);
    assert.equal(await withHost(open.url, path, 'attacker.example'), 403, path);
  }
  for (const host of [
    `localhost:${port}`,
    `127.0.0.1:${port}`,
    `[::1]:${port}`,
    'LOCALHOST',
    'localhost.',
    `grafana.localhost:${port}`,
  ]) {
    assert.equal(await withHost(open.url, '/api/v1/query', host), 200, host);
  }
  const tokened = await serve({ API_TOKEN: READ });
  assert.equal(await withHost(tokened.url, '/api/v1/query', 'ruleperf.internal', bearer(READ)), 200);
});

test('a cache Redis that does not evict is named in a warning at start (distinct past ranges would fill it); one with maxmemory and an evicting policy is not', async (t) => {
  if (!hasRedisServer) {
    return t.skip('redis-server is not installed: no private Redis to configure');
  }
  const bounded = await startPrivateRedis(['--maxmemory', '64mb', '--maxmemory-policy', 'allkeys-lru']);
  const unbounded = await startPrivateRedis(['--maxmemory', '64mb', '--maxmemory-policy', 'noeviction']);
  try {
    const warned = (log: Array<Record<string, unknown>>) =>
      log.some((l) => l.level === 40 && /the cache Redis does not evict/.test(String(l.msg)));
    const quiet: Array<Record<string, unknown>> = [];
    const loud: Array<Record<string, unknown>> = [];
    await serve({ REDIS_URL: bounded.url }, quiet);
    await serve({ REDIS_URL: unbounded.url }, loud);
    for (let i = 0; i < 50 && !warned(loud); i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(warned(loud), 'noeviction: warned');
    assert.ok(!warned(quiet), 'allkeys-lru with maxmemory: no warning');
  } finally {
    await Promise.all(running.splice(-2).map((s) => s.stop()));
    await bounded.stop();
    await unbounded.stop();
  }
});

test('/metrics needs no token, so a flood of scrapes shares renderings (at most 10 a second); one scrape after another is fresh', async () => {
  const svc = await serve({ API_TOKEN: 'metrics-flood-token' });
  const count = (text: string) =>
    Number(/ruleperf_http_requests_total\{route="\/metrics",status="200"\} (\d+)/.exec(text)?.[1] ?? 0);
  const first = await (await fetch(`${svc.url}/metrics`)).text();
  const second = await (await fetch(`${svc.url}/metrics`)).text();
  assert.equal(count(second), count(first) + 1, 'the next scrape counts the one before: rendered afresh');
  const started = performance.now();
  const flood = await Promise.all(Array.from({ length: 200 }, () => fetch(`${svc.url}/metrics`).then((r) => r.text())));
  const seconds = Math.ceil((performance.now() - started) / 1000) + 1;
  const renderings = new Set(flood).size;
  assert.ok(
    renderings <= SCRAPES_RENDERED_PER_SECOND * seconds,
    `${renderings} renderings for 200 scrapes in under ${seconds} s`
  );
  assert.ok(flood.every((t) => t.includes('ruleperf_http_requests_total')));
});

test('the cache stats need the read token every Grafana viewer sends, so a flood of them shares renderings: Redis gets at most 10 sets of INFO calls a second', async (t) => {
  if (!hasRedisServer) {
    return t.skip('redis-server is not installed: no private Redis whose INFO calls can be counted alone');
  }
  const redis = await startPrivateRedis();
  try {
    const svc = await serve({ REDIS_URL: redis.url, API_TOKEN: 'stats-flood-token' });
    const infoCalls = async () => {
      const res = spawnSync('redis-cli', ['-u', redis.url, 'INFO', 'commandstats'], { encoding: 'utf8' });
      return Number(/cmdstat_info:calls=(\d+)/.exec(res.stdout)?.[1] ?? 0);
    };
    const ask = () =>
      fetch(`${svc.url}/api/v1/cache/stats`, { headers: { authorization: 'Bearer stats-flood-token' } }).then((r) =>
        r.json()
      );
    const one = (await ask()) as { state: string };
    assert.equal(one.state, 'up');
    const before = await infoCalls();
    const started = performance.now();
    const flood = await Promise.all(Array.from({ length: 200 }, ask));
    const seconds = Math.ceil((performance.now() - started) / 1000) + 1;
    const calls = (await infoCalls()) - before - 1; // less this count's own INFO
    assert.ok(flood.every((s) => (s as { state: string }).state === 'up'));
    // Three INFO calls a rendering, and the service's own memory read (every 15 s) at most once.
    assert.ok(
      calls <= 3 * SCRAPES_RENDERED_PER_SECOND * seconds + 3,
      `${calls} INFO calls for 200 requests in under ${seconds} s`
    );
  } finally {
    await Promise.all(running.splice(-1).map((s) => s.stop()));
    await redis.stop();
  }
});

test('requests refused before routing (a body declared over the limit) count in ruleperf_http_requests_total', async () => {
  const svc = await serve({});
  const tooLarge = (text: string) =>
    Number(/ruleperf_http_requests_total\{route="\/api\/v1\/query",status="413"\} (\d+)/.exec(text)?.[1] ?? 0);
  const before = tooLarge(await (await fetch(`${svc.url}/metrics`)).text());
  const status = await new Promise<number>((resolve, reject) => {
    const req = request(`${svc.url}/api/v1/query`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-length': String(2 * 1024 * 1024) },
    });
    req.on('response', (res) => {
      res.resume();
      resolve(res.statusCode!);
    });
    req.on('error', reject);
    req.write('{');
  });
  assert.equal(status, 413);
  let after = before;
  for (let i = 0; i < 20 && after === before; i++) {
    await new Promise((r) => setTimeout(r, 150)); // /metrics renders at most 10 times a second
    after = tooLarge(await (await fetch(`${svc.url}/metrics`)).text());
  }
  assert.equal(after, before + 1);
});

test('a route is counted under its own spelling, whatever case the client wrote it in', async () => {
  // Express matches paths in any case: the label took the client's (`/API`, `/Api`, …).
  const svc = await serve({});
  for (const path of ['/API/v1/cache/stats', '/Api/v1/cache/stats', '/api/v1/cache/stats']) {
    assert.equal((await fetch(`${svc.url}${path}`)).status, 200, path);
  }
  let text = '';
  for (let i = 0; i < 20 && !/cache\/stats",status="200"\} 3\n/.test(text); i++) {
    await new Promise((r) => setTimeout(r, 150)); // /metrics renders at most 10 times a second
    text = await (await fetch(`${svc.url}/metrics`)).text();
  }
  const routes = [...text.matchAll(/ruleperf_http_requests_total\{route="([^"]*cache\/stats)"/gi)].map((m) => m[1]);
  assert.deepEqual(routes, ['/api/v1/cache/stats']);
  assert.match(text, /route="\/api\/v1\/cache\/stats",status="200"\} 3\n/);
});

test('a request line keeps the first 200 characters of the path: a client without a token cannot write 15 KB of log a request', async () => {
  const log: Array<Record<string, unknown>> = [];
  const svc = await serve({ API_TOKEN: 'path-token' }, log);
  const res = await fetch(`${svc.url}/api/${'a'.repeat(15_000)}`);
  assert.equal(res.status, 401);
  let line: Record<string, unknown> | undefined;
  for (let i = 0; i < 50 && !line; i++) {
    line = log.find((l) => l.msg === 'request' && l.status === 401);
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.ok(line, 'the request is logged');
  assert.equal(line.path, `/api/${'a'.repeat(195)}… (15005 chars)`);
});

test('/healthz and /readyz are answered before Express: no log line each (load balancers ask every few seconds), HEAD without a body, a query string ignored, counted in /metrics', async () => {
  const log: Array<Record<string, unknown>> = [];
  const svc = await serve({ API_TOKEN: 'probe-token' }, log);
  for (const path of ['/readyz', '/readyz?verbose=1', '/healthz']) {
    const res = await fetch(svc.url + path);
    assert.equal(res.status, 200, path);
    assert.equal(res.headers.get('content-type'), 'application/json; charset=utf-8');
    assert.ok((await res.json()).status, path);
  }
  const head = await fetch(`${svc.url}/readyz`, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(await head.text(), '');
  assert.equal((await fetch(`${svc.url}/readyz`, { method: 'POST' })).status, 405, 'other methods as before');
  assert.deepEqual(
    log.filter((l) => l.msg === 'request' && l.method !== 'POST' && /^\/(readyz|healthz)/.test(String(l.path))),
    [],
    'no request log lines for them'
  );
  const metrics = await (await fetch(`${svc.url}/metrics`)).text();
  assert.match(metrics, /ruleperf_http_requests_total\{route="\/readyz",status="200"\} 3\n/);
});
