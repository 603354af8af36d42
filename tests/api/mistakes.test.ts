/**
 * A user's mistakes over HTTP get an answer that says what is wrong and what to do:
 * 405 with Allow for a wrong method, 415 naming the encoding or charset, 400 naming the
 * field (never PostgreSQL's error text); relative times work end to end; the request
 * log shows the full path.
 */
import assert from 'node:assert/strict';
import { test, before, after } from 'node:test';
import { gzipSync } from 'node:zlib';
import { Writable } from 'node:stream';
import pino from 'pino';
import { loadConfig } from '../../server/config';
import { startService, type RunningService } from '../../server/main';
import { ROUTES } from '../../server/http/app';
import { MOVING_WITHIN_MS } from '../../server/query/range';
import { historyDatabase, DAY } from '../support/fixture';
import { postJson, REDIS_URL, uniqueName, type TestDatabase } from '../support/services';

const TOKEN = 'mistakes-read-token';
const auth = { authorization: `Bearer ${TOKEN}` };
const ADMIN_TOKEN = 'mistakes-admin-token';
let db: TestDatabase;
let svc: RunningService;
const logLines: Array<Record<string, unknown>> = [];

before(async () => {
  db = await historyDatabase({ days: 3, rowsPerHour: 100 });
  const config = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    REDIS_URL,
    CACHE_ENABLED: 'false',
    CACHE_PREFIX: uniqueName('t').replace(/_/g, '-'),
    WARM_ON_START: 'false',
    WARM_INTERVAL_SECONDS: '0',
    REFRESH_SCHEDULER: 'off',
    DATABASE_URL: db.url,
    API_TOKEN: TOKEN,
    API_ADMIN_TOKEN: ADMIN_TOKEN,
  });
  // The service's own logger, writing into this test: the request lines are checked below.
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) {
        logLines.push(JSON.parse(line));
      }
      done();
    },
  });
  svc = await startService(config, pino({ level: 'info' }, sink));
});
after(async () => {
  await svc?.stop();
  await db?.drop();
});

const query = (range: Record<string, unknown>, q: Record<string, unknown> = {}) => ({
  range,
  queries: [{ refId: 'A', kind: 'stats', ...q }],
});

test('a wrong method on a known path is a 405 with Allow; OPTIONS lists the methods; unknown paths stay 404', async () => {
  const wrong: Record<string, string> = { POST: 'GET', GET: 'POST', HEAD: 'PUT' };
  for (const [route, methods] of Object.entries(ROUTES)) {
    const path = route.replace(':name', 'rules');
    const method = wrong[methods[0]];
    const res = await fetch(svc.url + path, { method, headers: auth });
    assert.equal(res.status, 405, `${method} ${path}`);
    assert.equal(res.headers.get('allow'), methods.join(', '), path);
    const body = await res.json();
    assert.match(
      body.error,
      new RegExp(`method ${method} is not allowed on ${path.replace(/\//g, '\\/')}; use ${methods[0]}`)
    );
    const options = await fetch(svc.url + path, { method: 'OPTIONS', headers: auth });
    assert.equal(options.status, 204, `OPTIONS ${path}`);
    assert.equal(options.headers.get('allow'), methods.join(', '));
  }
  const get = await fetch(`${svc.url}/api/v1/query`, { headers: auth });
  assert.equal(get.status, 405);
  assert.equal(get.headers.get('allow'), 'POST');
  assert.equal((await fetch(`${svc.url}/api/v1/query`)).status, 401, 'without the token, the API says nothing more');
  assert.equal((await fetch(`${svc.url}/api/v1/nope`, { headers: auth })).status, 404);
  assert.equal((await fetch(`${svc.url}/nope`, { method: 'DELETE' })).status, 404);
  // The port opened in a browser, or a path guessed: the routes there are.
  const root = await fetch(`${svc.url}/`);
  assert.equal(root.status, 404);
  const { routes } = await root.json();
  assert.ok(routes.includes('POST /api/v1/query') && routes.includes('GET /healthz'), routes.join(', '));
});

test('a 401 says what was wrong with the token: none, not a bearer token, or not the token', async () => {
  const token = auth.authorization.replace(/^Bearer /, '');
  const errorFor = async (headers: Record<string, string>) => {
    const res = await fetch(`${svc.url}/api/v1/variables/rules`, { headers });
    assert.equal(res.status, 401);
    return (await res.json()).error as string;
  };
  assert.match(await errorFor({}), /^missing API token: send Authorization: Bearer <token>/);
  assert.match(
    await errorFor({ authorization: token }),
    /^the Authorization header is not a bearer token: send Authorization: Bearer <token>/
  );
  assert.match(await errorFor({ authorization: 'Bearer nope' }), /^invalid API token/);
});

test('compressed bodies and charsets other than UTF-8 get a 415 that names the header', async () => {
  const body = JSON.stringify(query({ from: 'now-1h', to: 'now' }));
  const cases: Array<[Record<string, string>, Buffer | string, RegExp]> = [
    [{ 'content-encoding': 'br' }, body, /unsupported Content-Encoding "br": send the body uncompressed/],
    [{ 'content-encoding': 'gzip' }, gzipSync(body), /unsupported Content-Encoding "gzip"/],
    [{ 'content-encoding': 'deflate' }, body, /unsupported Content-Encoding "deflate"/],
    [
      { 'content-type': 'application/json; charset=utf-16' },
      Buffer.from(body, 'utf16le'),
      /unsupported charset utf-16: send the body as UTF-8/,
    ],
    [{ 'content-type': 'application/json; charset=latin1' }, body, /unsupported charset latin1/],
    [{ 'content-type': 'text/plain' }, body, /send the body as application\/json/],
  ];
  for (const path of ['/api/v1/query', '/api/v1/invalidate']) {
    for (const [headers, payload, message] of cases) {
      const res = await fetch(svc.url + path, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...auth, ...headers },
        body: typeof payload === 'string' ? payload : new Uint8Array(payload),
      });
      const answer = await res.json();
      assert.equal(
        res.status,
        path.endsWith('invalidate') ? 403 : 415,
        `${path} ${JSON.stringify(headers)}: ${JSON.stringify(answer)}`
      );
      if (path.endsWith('query')) {
        assert.match(answer.error, message);
      }
    }
  }
  const identity = await fetch(`${svc.url}/api/v1/query`, {
    method: 'POST',
    headers: { 'content-type': 'application/json; charset="UTF-8"', 'content-encoding': 'identity', ...auth },
    body,
  });
  assert.equal(identity.status, 200, 'identity and a quoted UTF-8 charset are fine');
});

test('dates past 9999 are a 400 naming the limit, never the database error text', async () => {
  const now = Date.now();
  for (const range of [
    { from: now - DAY, to: 8.64e15 },
    { from: 8.64e15 - DAY, to: 8.64e15 },
    { from: '275760-09-12T00:00:00Z', to: 'now' },
    { from: 'now', to: 'now+8000y' },
  ]) {
    const r = await postJson(
      `${svc.url}/api/v1/query`,
      query(range, { kind: 'timeseries', granularity: 'daily' }),
      auth
    );
    assert.equal(r.status, 400, JSON.stringify(range));
    assert.doesNotMatch(JSON.stringify(r.body), /NaN|syntax for type|timestamp/);
  }
  const r = await postJson(`${svc.url}/api/v1/query`, query({ from: now - DAY, to: 8.64e15 }), auth);
  assert.match(r.body.error, /range\.to: must not be after 9999-12-31/);
  // The last accepted instant is answered (aligned to daily buckets past it without overflowing).
  const edge = await postJson(
    `${svc.url}/api/v1/query`,
    query(
      { from: '9999-12-30T00:00:00Z', to: '9999-12-31T23:59:59.999Z' },
      { kind: 'timeseries', granularity: 'daily' }
    ),
    auth
  );
  assert.equal(edge.status, 200, JSON.stringify(edge.body));
});

test('seconds, empty lists, misspelt fields and lowercase enums are refused over HTTP with the fix', async () => {
  const now = Date.now();
  const ask = (body: unknown) => postJson(`${svc.url}/api/v1/query`, body, auth);
  let r = await ask(query({ from: Math.floor(now / 1000) - 86_400, to: Math.floor(now / 1000) }));
  assert.equal(r.status, 400);
  assert.match(r.body.error, /is epoch seconds .* send \d{13}/);
  r = await ask(query({ from: now - DAY, to: now }, { ruleId: [] }));
  assert.equal(r.status, 400);
  assert.match(r.body.error, /queries\.0\.ruleId: an empty list matches nothing: omit ruleId/);
  r = await ask(query({ from: now - DAY, to: now }, { rule: 'rule-0001' }));
  assert.equal(r.status, 400);
  assert.match(r.body.error, /queries\.0\.rule: unknown field "rule" \(did you mean "ruleId"\?\)/);
  r = await ask(query({ from: now - DAY, to: now }, { status: 'error' }));
  assert.equal(r.status, 400);
  assert.match(
    r.body.error,
    /must be one of SUCCESS, ERROR, TIMEOUT; got "error" \(values are case-sensitive: "ERROR"\)/
  );
  r = await ask(query({ from: now - DAY, to: now }, { ruleId: ['rule-0001', '$__all'] }));
  assert.equal(r.status, 400);
  assert.match(r.body.error, /queries\.0\.ruleId\.1: is Grafana's "All" value \(\$__all\).*omit the filter for all/);
  r = await ask(
    query({ from: 'now-24h', to: 'now' }, { status: 'ERROR', datasource: { uid: 'ruleperf' }, key: 'Q-1' })
  );
  assert.equal(r.status, 200, 'a relative range and Grafana-only fields are accepted');
});

test('an option the kind does not use is refused with the options it does use; both paths (fast and Express) agree', async () => {
  const now = Date.now();
  const range = { from: now - DAY, to: now };
  const refused: Array<[Record<string, unknown>, RegExp]> = [
    [
      { kind: 'topRules', groupBy: 'parserId' },
      /queries\.0\.groupBy: a topRules query does not use groupBy \(its options are limit, sortBy\): remove it/,
    ],
    [{ kind: 'stats', limit: 5 }, /queries\.0\.limit: a stats query does not use limit/],
    [{ groupBy: 'ruleId' }, /queries\.0\.groupBy: a stats query does not use groupBy/],
    [
      { kind: 'errorBreakdown', sortBy: 'errorRate' },
      /queries\.0\.sortBy: an errorBreakdown query does not use sortBy \(its options are groupBy, limit\)/,
    ],
    [{ kind: 'timeseries', sortBy: 'errorRate' }, /queries\.0\.sortBy: a timeseries query does not use sortBy/],
  ];
  for (const [q, message] of refused) {
    // The fast path takes an ordinary JSON body; `?x` sends the same body through Express.
    for (const path of ['/api/v1/query', '/api/v1/query?x']) {
      const r = await postJson(`${svc.url}${path}`, query(range, q), auth);
      assert.equal(r.status, 400, `${JSON.stringify(q)} via ${path}`);
      assert.match(r.body.error, message);
    }
  }
  for (const q of [
    { kind: 'timeseries', limit: 3 },
    { kind: 'timeseries', groupBy: 'ruleId', limit: 3, metrics: ['executionCount'] },
    { kind: 'errorBreakdown', groupBy: 'ruleId', limit: 3 },
    { kind: 'topRules', limit: 3, sortBy: 'errorRate' },
  ]) {
    const r = await postJson(`${svc.url}/api/v1/query`, query(range, q), auth);
    assert.equal(r.status, 200, `${JSON.stringify(q)}: ${JSON.stringify(r.body).slice(0, 300)}`);
  }
});

test('a relative range answers exactly as the same range in epoch milliseconds (Grafana\'s "Yesterday", UTC)', async () => {
  // In the first minute of a day, yesterday's last millisecond is still "moving" (range.ts:
  // covered to the next whole minute, as documented); the exact-coverage case starts after it.
  const intoDay = Date.now() % DAY;
  if (intoDay < MOVING_WITHIN_MS + 2000) {
    await new Promise((resolve) => setTimeout(resolve, MOVING_WITHIN_MS + 2000 - intoDay));
  }
  const now = Date.now();
  const today = Math.floor(now / DAY) * DAY;
  // As in Grafana, the rounded `to` bound is the end of its day, inclusive: the range ends at midnight.
  const relative = await postJson(
    `${svc.url}/api/v1/query`,
    query({ from: 'now-1d/d', to: 'now-1d/d' }, { kind: 'timeseries', granularity: 'hourly' }),
    auth
  );
  const absolute = await postJson(
    `${svc.url}/api/v1/query`,
    query({ from: today - DAY, to: today }, { kind: 'timeseries', granularity: 'hourly' }),
    auth
  );
  if (Math.floor(Date.now() / DAY) * DAY !== today) {
    return;
  } // midnight passed between the two requests
  assert.equal(relative.status, 200, JSON.stringify(relative.body));
  const [a, b] = [relative.body.results.A.frames[0], absolute.body.results.A.frames[0]];
  assert.deepEqual(a.data, b.data);
  assert.deepEqual(
    a.schema.meta.custom.coveredRange,
    { from: today - DAY, to: today },
    'exactly the asked day, its last millisecond included'
  );
  assert.equal(a.data.values[0].length, 24, 'one point per hour of that day');
  assert.ok(
    a.data.values[1].some((v: number) => v > 0),
    'with data'
  );
});

test('the request log shows the full path, without the query string', async () => {
  await fetch(`${svc.url}/api/v1/variables/rules?x=secret-looking`, { headers: auth });
  await postJson(`${svc.url}/api/v1/invalidate`, { all: true }, auth);
  await postJson(`${svc.url}/api/v1/query`, query({ from: 'now-1h', to: 'now' }), auth);
  const paths = logLines.filter((l) => l.msg === 'request').map((l) => l.path);
  assert.ok(paths.includes('/api/v1/variables/rules'), JSON.stringify(paths));
  assert.ok(paths.includes('/api/v1/invalidate'));
  assert.ok(paths.includes('/api/v1/query'));
  assert.ok(!JSON.stringify(logLines).includes('secret-looking'));
});

test('an invalidation naming two targets, none, an unknown field or all: false is told which, once', async () => {
  const refusal = async (body: unknown) => {
    const r = await postJson(`${svc.url}/api/v1/invalidate`, body, { authorization: `Bearer ${ADMIN_TOKEN}` });
    assert.equal(r.status, 400, JSON.stringify(r.body));
    assert.match(r.body.error, /send \{"ruleId": "…"\}, \{"parserId": "…"\} or \{"all": true\}/);
    return r.body.details as Array<{ path: string; message: string }>;
  };
  // zod's union answered these with every branch's complaint ("all: Invalid input: expected true").
  assert.deepEqual(await refusal({ ruleId: 'rule-0001', parserId: 'parser-01' }), [
    { path: '(body)', message: 'names ruleId and parserId: one target per request (send one request for each)' },
  ]);
  assert.deepEqual(await refusal({}), [{ path: '(body)', message: 'names nothing to invalidate' }]);
  assert.deepEqual(await refusal({ rule: 'rule-0001' }), [
    { path: '(body)', message: 'unknown field "rule" (did you mean "ruleId"?); send one of ruleId, parserId or all' },
  ]);
  assert.deepEqual(await refusal({ all: false }), [
    { path: 'all', message: 'must be true (it invalidates every cached answer)' },
  ]);
  assert.deepEqual(await refusal({ ruleId: 5 }), [{ path: 'ruleId', message: 'must be a string, not a number' }]);
  assert.deepEqual(await refusal([]), [{ path: '(body)', message: 'must be a JSON object' }]);
});

test("a target copied from a dashboard, Grafana's intervalMs and maxDataPoints inside it, gets the points it asks for", async () => {
  // /api/ds/query's shape: they were ignored, and a day at 1 h came back as 1,440 one-minute points.
  const today = Math.floor(Date.now() / DAY) * DAY;
  const r = await postJson(
    `${svc.url}/api/v1/query`,
    query({ from: today - DAY, to: today }, { kind: 'timeseries', intervalMs: 3_600_000, maxDataPoints: 24 }),
    auth
  );
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const frame = r.body.results.A.frames[0];
  assert.equal(frame.data.values[0].length, 24, 'one point per hour');
  const notices = (frame.schema.meta.notices ?? []).map((n: { text: string }) => n.text);
  assert.ok(
    !notices.some((t: string) => /apart/.test(t)),
    `as asked, nothing said of the width: ${notices.join(' | ')}`
  );
});

test("points wider than the range, the first starting before it, are said to lie off the panel; their counts are the range's", async () => {
  // A "min interval" of a year on a panel of two days: one point, placed where its 365 days begin,
  // months before the panel's left edge: the panel showed nothing, and no notice said why.
  const YEAR = 365 * DAY;
  const to = Math.floor(Date.now() / DAY) * DAY - 3 * 3_600_000;
  const from = to - 2 * DAY;
  const r = await postJson(
    `${svc.url}/api/v1/query`,
    query({ from, to }, { kind: 'timeseries', intervalMs: YEAR, maxDataPoints: 100, metrics: ['executionCount'] }),
    auth
  );
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const frame = r.body.results.A.frames[0];
  const [times, counts] = frame.data.values as number[][];
  const first = Math.floor(from / YEAR) * YEAR;
  assert.ok(first < from, 'the fixture: the year containing the range starts before it');
  assert.equal(times[0], first);
  const { rows } = await db.pool.query('SELECT count(*)::int AS n FROM metrics WHERE time >= $1 AND time < $2', [
    new Date(from),
    new Date(to),
  ]);
  assert.equal(
    counts.reduce((a, b) => a + b, 0),
    rows[0].n,
    "the points' counts are the range's"
  );
  const texts = (frame.schema.meta.notices ?? []).map((n: { text: string }) => n.text).join(' | ');
  assert.match(texts, /Points are 365 days apart, wider than the range/, texts);
  assert.ok(texts.includes(new Date(first).toISOString().slice(0, 10)), `names where the first point is: ${texts}`);

  // Points within the range, or starting where it starts, need no such word.
  const aligned = Math.floor(from / (4 * DAY)) * 4 * DAY;
  for (const [f, t, interval] of [
    [from, to, 3_600_000],
    [aligned, aligned + 2 * DAY, 4 * DAY],
  ] as const) {
    const ok = await postJson(
      `${svc.url}/api/v1/query`,
      query({ from: f, to: t }, { kind: 'timeseries', intervalMs: interval, maxDataPoints: 1000 }),
      auth
    );
    const said = (ok.body.results.A.frames[0].schema.meta.notices ?? []).map((n: { text: string }) => n.text);
    assert.ok(!said.some((t: string) => /wider than the range/.test(t)), said.join(' | '));
  }
});

test('with the cache turned off, its stats say so and give no hit rate (it was 0, as if every answer missed)', async () => {
  assert.equal((await postJson(`${svc.url}/api/v1/query`, query({ from: 'now-1h', to: 'now' }), auth)).status, 200);
  const stats = await (await fetch(`${svc.url}/api/v1/cache/stats`, { headers: auth })).json();
  assert.equal(stats.state, 'disabled');
  assert.ok(stats.bypassed > 0);
  assert.equal(stats.hitRate, null);
});
