/**
 * The query fast path answers ordinary dashboard queries without Express and hands every
 * other request to Express. Both must give the same answers and the same errors.
 */
import assert from 'node:assert/strict';
import { test, before, after } from 'node:test';
import http, { type IncomingMessage } from 'node:http';
import { gunzipSync } from 'node:zlib';
import { authorizationCheck, isOrdinary, QUERY_PATH } from '../../server/http/query-fast-path';
import { startTestService, type TestDatabase } from '../support/services';
import { historyDatabase, HOUR } from '../support/fixture';
import type { RunningService } from '../../server/main';
import { loopTurns } from '../../server/query/turns';

let db: TestDatabase;
let svc: RunningService;
const TOKEN = 'fast-path-token';

before(async () => {
  db = await historyDatabase({ days: 1, rowsPerHour: 200 });
  svc = await startTestService({ DATABASE_URL: db.url, CACHE_ENABLED: 'false', API_TOKEN: TOKEN });
});
after(async () => {
  await svc?.stop();
  await db?.drop();
});

const request = (headers: Record<string, string>, method = 'POST', url = QUERY_PATH) =>
  ({ method, url, headers }) as unknown as IncomingMessage;
const withToken = authorizationCheck({ read: TOKEN });
const ordinary = { 'content-type': 'application/json', 'content-length': '100', authorization: `Bearer ${TOKEN}` };

test('only ordinary requests take the fast path', () => {
  assert.equal(isOrdinary(request(ordinary), withToken), true);
  assert.equal(
    isOrdinary(request({ ...ordinary, 'content-type': 'application/json; charset=utf-8' }), withToken),
    true
  );
  assert.equal(
    isOrdinary(request({ ...ordinary, authorization: 'bearer  fast-path-token ' }), withToken),
    true,
    'scheme case and spaces as in Express'
  );
  assert.equal(
    isOrdinary(request({ ...ordinary, authorization: 'Bearer wrong' }), withToken),
    false,
    'Express answers 401'
  );
  assert.equal(
    isOrdinary(request({ 'content-type': 'application/json', 'content-length': '100' }), withToken),
    false,
    'no token'
  );
  assert.equal(
    isOrdinary(request({ 'content-type': 'application/json', 'content-length': '100' }), authorizationCheck({})),
    true,
    'no token needed'
  );
  assert.equal(
    isOrdinary(request({ ...ordinary, 'content-type': 'text/plain' }), withToken),
    false,
    'Express answers 415'
  );
  assert.equal(
    isOrdinary(request({ ...ordinary, 'content-type': 'application/json; charset=latin1' }), withToken),
    false
  );
  assert.equal(isOrdinary(request({ ...ordinary, 'content-encoding': 'gzip' }), withToken), false);
  assert.equal(
    isOrdinary(request({ ...ordinary, 'content-length': String(2 * 1024 * 1024) }), withToken),
    false,
    'Express answers 413'
  );
  assert.equal(isOrdinary(request({ ...ordinary, 'transfer-encoding': 'chunked' }), withToken), false);
  assert.equal(isOrdinary(request(ordinary, 'GET'), withToken), false);
  assert.equal(isOrdinary(request(ordinary, 'POST', `${QUERY_PATH}?debug=1`), withToken), false);
  assert.equal(isOrdinary(request(ordinary, 'POST', '/api/v1/invalidate'), withToken), false);
});

/** Sends a body with a declared length (fast path) or chunked (Express). */
function send(
  body: string,
  chunked: boolean,
  extraHeaders: Record<string, string> = {},
  path = QUERY_PATH
): Promise<{ status: number; type: string; requestId: string; body: any }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${svc.url}${path}`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: `Bearer ${TOKEN}`,
        ...(chunked ? { 'transfer-encoding': 'chunked' } : { 'content-length': Buffer.byteLength(body) }),
        ...extraHeaders,
      },
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        resolve({
          status: res.statusCode!,
          type: String(res.headers['content-type']),
          requestId: String(res.headers['x-request-id']),
          body: JSON.parse(text),
        });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('the fast path and Express answer alike: data, validation errors, bad JSON, empty bodies', async () => {
  const at = Math.floor(Date.now() / HOUR) * HOUR - 30 * 60_000;
  const bodies = [
    JSON.stringify({
      range: { from: at - 6 * HOUR, to: at },
      queries: [
        { refId: 'A', kind: 'stats' },
        { refId: 'B', kind: 'topRules', limit: 3 },
      ],
    }),
    JSON.stringify({
      range: { from: at - 6 * HOUR, to: at },
      queries: [{ refId: 'A', kind: 'timeseries', metrics: ['executionCount'] }],
    }),
    JSON.stringify({ range: { from: at, to: at - HOUR }, queries: [{ refId: 'A', kind: 'stats' }] }),
    JSON.stringify({ range: { from: at - HOUR, to: at }, queries: [{ refId: 'A', kind: 'nope' }] }),
    // The mistakes the API names (unknown field, seconds, empty list, case, dates past 9999) and relative times.
    JSON.stringify({ range: { from: at - HOUR, to: at }, queries: [{ refId: 'A', rule: 'rule-0001' }] }),
    JSON.stringify({
      range: { from: Math.floor((at - HOUR) / 1000), to: Math.floor(at / 1000) },
      queries: [{ refId: 'A' }],
    }),
    JSON.stringify({ range: { from: at - HOUR, to: at }, queries: [{ refId: 'A', ruleId: [] }] }),
    JSON.stringify({ range: { from: at - HOUR, to: at }, queries: [{ refId: 'A', status: ['ERROR', 'timeout'] }] }),
    JSON.stringify({ range: { from: at - HOUR, to: 8.64e15 }, queries: [{ refId: 'A' }] }),
    JSON.stringify({
      range: { from: 'now-7d/d', to: 'now-1d/d' },
      queries: [{ refId: 'A', kind: 'timeseries', datasource: { uid: 'x' } }],
    }),
    '{"range": ',
    '"just a string"',
    '[]',
    '',
  ];
  for (const body of bodies) {
    const fast = await send(body, false);
    const viaExpress = await send(body, true);
    assert.equal(fast.status, viaExpress.status, body);
    assert.deepEqual(withoutComputedAt(fast.body), withoutComputedAt(viaExpress.body), body);
    assert.equal(fast.type, 'application/json; charset=utf-8');
    assert.match(fast.requestId, /^[\w-]+$/);
  }
});

test('a large body is parsed in a loop turn weighing a KB by either path (a query string, a chunked body)', async () => {
  // Parsed by body-parser as its last byte came, 40 bodies of 234 KB at once held the loop
  // 250 ms on the Express path (a query string on the URL was enough to take it).
  const at = Math.floor(Date.now() / HOUR) * HOUR - 30 * 60_000;
  const ruleId = Array.from({ length: 500 }, (_, i) => `rule-${String(i).padStart(4, '0')}`);
  const body =
    JSON.stringify({ range: { from: at - HOUR, to: at }, queries: [{ refId: 'A', kind: 'stats', ruleId }] }) +
    ' '.repeat(80_000);
  const weight = Math.ceil(Buffer.byteLength(body) / 1024);
  const next = loopTurns.next;
  const weights: number[] = [];
  loopTurns.next = function (this: typeof loopTurns, lane, w = 1) {
    weights.push(w);
    return next.call(this, lane, w);
  };
  try {
    for (const [label, chunked, path] of [
      ['fast path', false, QUERY_PATH],
      ['a query string', false, `${QUERY_PATH}?x=1`],
      ['chunked', true, QUERY_PATH],
    ] as const) {
      weights.length = 0;
      const r = await send(body, chunked, {}, path);
      assert.equal(r.status, 200, `${label}: ${JSON.stringify(r.body).slice(0, 200)}`);
      assert.ok(weights.includes(weight), `${label}: a turn weighing ${weight} (asked: ${weights.join(', ')})`);
    }
  } finally {
    loopTurns.next = next;
  }
});

test('a wrong query is refused on its own: the other queries of the request are answered (by either path), a request of only wrong queries is 400', async () => {
  const to = Math.floor(Date.now() / HOUR) * HOUR - 30 * 60_000;
  const range = { from: to - 6 * HOUR, to };
  const good = { refId: 'A', kind: 'stats' };
  const alone = await send(JSON.stringify({ range, queries: [good] }), false);
  assert.equal(alone.status, 200);
  const count = (body: any) => body.results.A.frames[0].data.values[0][0];
  assert.ok(count(alone.body) > 0);
  for (const chunked of [false, true]) {
    const mixed = await send(
      JSON.stringify({
        range,
        queries: [good, { refId: 'B', kind: 'stats', status: 'FAILED' }, { refId: 'C', kind: 'topRules', limit: 0 }],
      }),
      chunked
    );
    assert.equal(mixed.status, 200, `chunked ${chunked}`);
    assert.equal(count(mixed.body), count(alone.body), 'A is answered as when sent alone');
    assert.deepEqual(mixed.body.results.B.frames, []);
    assert.equal(mixed.body.results.B.status, 400);
    assert.match(
      mixed.body.results.B.error,
      /^invalid request: queries\.1\.status: must be one of SUCCESS, ERROR, TIMEOUT/
    );
    assert.equal(mixed.body.results.C.status, 400);
    assert.match(mixed.body.results.C.error, /^invalid request: queries\.2\.limit: /);
  }
  const unknownFields = await send(
    JSON.stringify({
      range,
      queries: [
        good,
        { refId: 'B', kind: 'stats', rule: 'x', parser: 'y' },
        { refId: 'C', status: 'FAILED', hide: true },
      ],
    }),
    false
  );
  assert.equal(unknownFields.status, 200, 'a query with two unknown fields fails on its own too');
  assert.equal(count(unknownFields.body), count(alone.body));
  assert.match(unknownFields.body.results.B.error, /unknown fields "rule" \(did you mean "ruleId"\?\), "parser"/);
  assert.equal(unknownFields.body.results.C, undefined, 'a hidden query has no result, wrong or not');
  // Nothing to answer, or no refId of its own to report under: the request is refused whole.
  const allWrong = await send(
    JSON.stringify({ range, queries: [{ refId: 'B', kind: 'stats', status: 'FAILED' }] }),
    false
  );
  assert.equal(allWrong.status, 400);
  assert.match(allWrong.body.error, /queries\.0\.status/);
  const sameRefId = await send(
    JSON.stringify({ range, queries: [good, { refId: 'A', kind: 'stats', status: 'FAILED' }] }),
    false
  );
  assert.equal(sameRefId.status, 400, "a wrong query whose refId is another query's");
  const badRange = await send(
    JSON.stringify({ range: { from: to, to: to - HOUR }, queries: [good, { refId: 'B', status: 'FAILED' }] }),
    false
  );
  assert.equal(badRange.status, 400, 'the request itself is wrong');
  assert.equal(badRange.body.results, undefined);
});

test('compressed bodies and other charsets: the same 415 whether or not the length is declared', async () => {
  const body = JSON.stringify({ range: { from: 'now-1h', to: 'now' }, queries: [{ refId: 'A' }] });
  const cases: Array<Record<string, string>> = [
    { 'content-encoding': 'br' },
    { 'content-encoding': 'gzip' },
    { 'content-type': 'application/json; charset=utf-16' },
  ];
  for (const headers of cases) {
    const fast = await send(body, false, headers);
    const viaExpress = await send(body, true, headers);
    assert.equal(fast.status, 415, JSON.stringify(headers));
    assert.deepEqual(fast.body, viaExpress.body);
    assert.equal(viaExpress.status, 415);
  }
});

/** Sends a query by either path, asking for gzip; the raw bytes and the headers as they came. */
function sendAcceptingGzip(body: string, chunked: boolean) {
  return new Promise<{ status: number; headers: http.IncomingHttpHeaders; bytes: Buffer }>((resolve, reject) => {
    const req = http.request(`${svc.url}${QUERY_PATH}`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'accept-encoding': 'gzip, deflate, br',
        authorization: `Bearer ${TOKEN}`,
        ...(chunked ? { 'transfer-encoding': 'chunked' } : { 'content-length': Buffer.byteLength(body) }),
      },
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, bytes: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('a client that accepts gzip gets answers gzipped by either path, the same JSON once decoded; small errors stay plain', async () => {
  const at = Math.floor(Date.now() / HOUR) * HOUR - 30 * 60_000;
  const body = JSON.stringify({
    range: { from: at - 6 * HOUR, to: at },
    queries: [{ refId: 'A', kind: 'timeseries', metrics: ['executionCount', 'p95ExecutionTimeMs'] }],
  });
  const plain = await send(body, false);
  for (const chunked of [false, true]) {
    const r = await sendAcceptingGzip(body, chunked);
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-encoding'], 'gzip', chunked ? 'Express' : 'fast path');
    assert.equal(r.headers.vary, 'Accept-Encoding');
    assert.equal(Number(r.headers['content-length']), r.bytes.length);
    const decoded = JSON.parse(gunzipSync(r.bytes).toString());
    assert.deepEqual(withoutComputedAt(decoded), withoutComputedAt(plain.body));
    assert.ok(r.bytes.length < Buffer.byteLength(JSON.stringify(decoded)) / 2, `${r.bytes.length} bytes on the wire`);
  }
  const refused = await sendAcceptingGzip(JSON.stringify({ range: { from: at, to: at - HOUR }, queries: [] }), false);
  assert.equal(refused.status, 400);
  assert.equal(refused.headers['content-encoding'], undefined);
  assert.match(refused.bytes.toString(), /"error"/);
});

/** The instant an answer was computed differs between two computations of it. */
/** The body without when it was computed: the two paths' answers may be computed a second apart (notices name that second). */
function withoutComputedAt(body: unknown): unknown {
  return JSON.parse(
    JSON.stringify(body, (k, v) =>
      k === 'computedAt'
        ? undefined
        : k === 'text' && typeof v === 'string'
          ? v.replace(/\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d+)? UTC, when this answer was computed/, '<computedAt>')
          : v
    )
  );
}

test('Express answers a query with the same headers as the fast path: JSON in UTF-8, a length, Vary', async () => {
  const body = JSON.stringify({ range: { from: 'now-1h', to: 'now' }, queries: [{ refId: 'A', kind: 'stats' }] });
  const heads = await Promise.all(
    [false, true].map(
      (chunked) =>
        new Promise<http.IncomingHttpHeaders>((resolve, reject) => {
          const req = http.request(`${svc.url}${QUERY_PATH}`, {
            method: 'POST',
            headers: {
              'content-type': 'application/json',
              authorization: `Bearer ${TOKEN}`,
              ...(chunked ? { 'transfer-encoding': 'chunked' } : { 'content-length': Buffer.byteLength(body) }),
            },
          });
          req.on('response', (res) => {
            res.resume();
            res.on('end', () => resolve(res.headers));
          });
          req.on('error', reject);
          req.end(body);
        })
    )
  );
  for (const h of heads) {
    assert.equal(h['content-type'], 'application/json; charset=utf-8');
    assert.equal(h.vary, 'Accept-Encoding');
    assert.ok(Number(h['content-length']) > 100);
    assert.match(String(h['server-timing']), /^app;dur=[\d.]+$/);
  }
});
