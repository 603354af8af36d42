/**
 * Hostile and malformed input: never a 500, never a stack trace; 400 naming the field,
 * 401 without the token, 413 for oversized bodies; filter values are only values.
 */
import assert from 'node:assert/strict';
import { test, before, after } from 'node:test';
import fc from 'fast-check';
import http from 'node:http';
import { gunzipSync } from 'node:zlib';
import { postJson, startTestService, type TestDatabase } from '../support/services';
import { historyDatabase, DAY } from '../support/fixture';
import type { RunningService } from '../../server/main';
import { variableValues } from '../../server/http/variables';
import { loadRollupCatalog } from '../../server/query/catalog';
import { VARIABLE_NAMES } from '../../server/contract';
import { refreshRollups } from '../../server/db/refresh';

const TOKEN = 's3cret-token-for-tests';
let db: TestDatabase;
let svc: RunningService;
const now = Date.now();
const auth = { authorization: `Bearer ${TOKEN}` };

before(async () => {
  db = await historyDatabase({ days: 2, rowsPerHour: 200 });
  svc = await startTestService({ DATABASE_URL: db.url, API_TOKEN: TOKEN });
});
after(async () => {
  await svc?.stop();
  await db?.drop();
});

const query = (q: Record<string, unknown>, range = { from: now - DAY, to: now }) => ({
  range,
  queries: [{ refId: 'A', kind: 'stats', ...q }],
});

test('auth: missing, wrong, empty and differently cased tokens are 401; the right one passes', async () => {
  const url = `${svc.url}/api/v1/query`;
  for (const headers of [
    {},
    { authorization: 'Bearer wrong' },
    { authorization: 'Bearer ' },
    { authorization: `Bearer ${TOKEN.toUpperCase()}` },
    { authorization: TOKEN },
    { authorization: `Basic ${TOKEN}` },
  ]) {
    const r = await postJson(url, query({}), headers as Record<string, string>);
    assert.equal(r.status, 401, JSON.stringify(headers));
    assert.match(r.body.error, /token/);
  }
  assert.equal(
    (await postJson(url, query({}), { authorization: `bearer ${TOKEN}` })).status,
    200,
    'the scheme is case-insensitive'
  );
  assert.equal((await fetch(`${svc.url}/api/v1/variables/rules`)).status, 401);
  for (const open of ['/healthz', '/metrics', '/readyz']) {
    const res = await fetch(svc.url + open);
    assert.equal(res.status, 200, open);
    assert.ok(!(await res.text()).includes(TOKEN), `${open} does not reveal the token`);
  }
});

test('fuzzed request bodies never produce a 500 or a stack trace; 400s name the field', async () => {
  const anyJson = fc.jsonValue({ maxDepth: 4 });
  const nearlyValid = fc.record(
    {
      range: fc.oneof(
        anyJson,
        fc.record({
          from: fc.oneof(fc.integer(), fc.string(), fc.double()),
          to: fc.oneof(fc.integer(), fc.string(), fc.constant(now)),
        })
      ),
      intervalMs: fc.oneof(fc.integer(), fc.string(), fc.constant(undefined)),
      queries: fc.oneof(
        anyJson,
        fc.array(
          fc.record(
            {
              refId: fc.oneof(fc.string(), fc.integer()),
              kind: fc.oneof(fc.constantFrom('stats', 'timeseries', 'topRules', 'errorBreakdown'), fc.string()),
              ruleId: fc.oneof(fc.string(), fc.array(fc.string()), anyJson),
              limit: fc.oneof(fc.integer(), fc.double()),
              groupBy: fc.string(),
              granularity: fc.string(),
              metrics: anyJson,
            },
            { requiredKeys: [] }
          ),
          { maxLength: 3 }
        )
      ),
    },
    { requiredKeys: [] }
  );
  await fc.assert(
    fc.asyncProperty(fc.oneof(anyJson, nearlyValid), async (body) => {
      const r = await postJson(`${svc.url}/api/v1/query`, body === undefined ? 'null' : JSON.stringify(body), auth);
      assert.ok(
        [200, 400].includes(r.status),
        `status ${r.status} for ${JSON.stringify(body)}: ${JSON.stringify(r.body)}`
      );
      assert.equal(typeof r.body, 'object');
      assert.doesNotMatch(JSON.stringify(r.body), /\s+at \S+ \(|node_modules/);
      if (r.status === 400) {
        assert.ok(
          Array.isArray(r.body.details) && r.body.details.length > 0 && typeof r.body.details[0].path === 'string'
        );
      }
    }),
    { numRuns: Number(process.env.FUZZ_RUNS ?? 1500) }
  );
});

test('SQL-injection and unicode strings in every filter are only values', async () => {
  const hostile = [
    "' OR 1=1 --",
    "'; DROP TABLE metrics; --",
    "rule-0001') UNION SELECT 1 --",
    '"; SELECT pg_sleep(5); --',
    '\u0000',
    'ü🙂\u202e',
    '$1',
    '%',
    'rule-0001\\',
  ];
  for (const field of ['metricType', 'ruleId', 'parserId', 'ruleCategory', 'sourceType']) {
    for (const value of hostile) {
      for (const kind of ['stats', 'timeseries', 'topRules', 'errorBreakdown']) {
        const r = await postJson(`${svc.url}/api/v1/query`, query({ kind, [field]: [value] }), auth);
        if (value === '\u0000') {
          assert.ok([200, 400].includes(r.status));
          continue;
        }
        assert.equal(r.status, 200, `${field}=${JSON.stringify(value)} ${kind}: ${JSON.stringify(r.body)}`);
        const frame = r.body.results.A.frames[0];
        if (kind === 'stats') {
          assert.equal(frame.data.values[0][0], 0, 'matched nothing');
        }
      }
    }
  }
  const { rows } = await db.pool.query('SELECT count(*)::int AS n FROM metrics');
  assert.ok(rows[0].n > 0, 'the table is still there');
});

test('limits: range over 400 days, limit over 1,000, too many values, body over 1 MB, wrong content type', async () => {
  const url = `${svc.url}/api/v1/query`;
  let r = await postJson(url, query({}, { from: now - 401 * DAY, to: now }), auth);
  assert.equal(r.status, 400);
  assert.match(r.body.error, /range.*400 days/);
  r = await postJson(url, query({ kind: 'topRules', limit: 1001 }), auth);
  assert.equal(r.status, 400);
  assert.equal(r.body.details[0].path, 'queries.0.limit');
  r = await postJson(url, query({ ruleId: Array.from({ length: 501 }, (_, i) => `r${i}`) }), auth);
  assert.equal(r.status, 400);
  assert.equal(r.body.details[0].path, 'queries.0.ruleId');
  r = await postJson(url, query({ ruleId: 'x'.repeat(1_100_000) }), auth);
  assert.equal(r.status, 413);
  r = await postJson(url, { range: { from: now, to: now - 1 }, queries: [{ refId: 'A' }] }, auth);
  assert.equal(r.status, 400);
  assert.equal(r.body.details[0].path, 'range.to');
  const text = await fetch(url, { method: 'POST', headers: { 'content-type': 'text/plain', ...auth }, body: 'hello' });
  assert.equal(text.status, 415);
  const broken = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...auth },
    body: '{"range": ',
  });
  assert.equal(broken.status, 400);
  const brokenBody = await broken.json();
  assert.equal(brokenBody.error, 'request body is not valid JSON');
  // Where it stopped: V8's words, cut.
  assert.match(brokenBody.details[0].message, /^does not parse: .*(end of JSON input|position)/);
  for (const path of ['', '?via=express']) {
    for (const body of ['null', '"x"', '5']) {
      // Valid JSON, but not a request: the error says what it is not, on both paths.
      const r = await fetch(`${url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...auth },
        body,
      });
      assert.equal(r.status, 400, body);
      assert.equal((await r.json()).error, 'request body is not a JSON object', `${body} ${path}`);
    }
    const r = await fetch(`${url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...auth },
      body: '{"range": ',
    });
    const refused = await r.json();
    assert.equal(refused.error, 'request body is not valid JSON', path);
    assert.match(refused.details[0].message, /^does not parse: ./, path);
  }
  // Many unknown fields (up to the 100 members an object may have, below): the error names ten
  // (each cut to 64 characters) and counts the rest, so its size does not grow with the body.
  const padded = `{"range":{"from":${now - 3_600_000},"to":${now}},"queries":[{"refId":"A","kind":"stats",${Array.from(
    { length: 95 },
    (_, i) => `"k${i}${i === 0 ? 'x'.repeat(200) : ''}":1`
  ).join(',')}}]}`;
  const many = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...auth },
    body: padded,
  });
  assert.equal(many.status, 400);
  const manyText = await many.text();
  assert.ok(manyText.length < 4096, `a ${manyText.length}-byte error`);
  const manyBody = JSON.parse(manyText);
  assert.match(manyBody.details[0].message, /^unknown fields "k0x{62}"…, "k1".* and 85 more; a query's fields are/);
  // Bytes that are not UTF-8 (Latin-1 "é" after a genuine U+FFFD): the body is refused with the
  // first bad byte's offset, on both paths (the query string sends it through Express).
  const head = `{"range":{"from":${now - 3_600_000},"to":${now}},"queries":[{"refId":"A","ruleId":"r\ufffd`;
  const latin1 = Buffer.concat([Buffer.from(head), Buffer.from([0xe9]), Buffer.from('"}]}')]);
  for (const path of ['', '?via=express']) {
    const r = await fetch(`${url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...auth },
      body: latin1,
    });
    assert.equal(r.status, 400, path);
    const body = await r.json();
    assert.equal(
      body.error,
      `request body is not valid UTF-8: byte ${Buffer.byteLength(head)} (0xe9) does not begin a whole UTF-8 character`,
      path
    );
    assert.match(body.details[0].message, /follow ".*\\"ruleId\\":\\"r\ufffd"/, path);
  }
  // A U+FFFD the client did send (as UTF-8 or escaped) is a character like any other: answered.
  for (const ruleId of ['r\ufffd', 'r\\ufffd']) {
    const r = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...auth },
      body: `{"range":{"from":${now - 3_600_000},"to":${now}},"queries":[{"refId":"A","kind":"stats","ruleId":"${ruleId}"}]}`,
    });
    assert.equal(r.status, 200, `${ruleId}: ${await r.clone().text()}`);
  }
  // Prototype keys are unknown fields like any other: refused by name, and nothing is polluted.
  const proto = await postJson(
    url,
    '{"__proto__": {"polluted": true}, "constructor": {"prototype": {"x": 1}}, "range": {"from": 1, "to": 2}, "queries": [{"refId": "A", "__proto__": {"kind": "x"}}]}',
    auth
  );
  assert.equal(proto.status, 400);
  assert.deepEqual(proto.body.details.map((d: { path: string }) => d.path).sort(), ['(body)', 'queries.0.__proto__']);
  assert.match(
    proto.body.details.find((d: { path: string }) => d.path === '(body)').message,
    /unknown fields "__proto__", "constructor"/
  );
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});

test('hostile shapes are refused before parsing or validation walks them, on both paths, naming where', async () => {
  const url = `${svc.url}/api/v1/query`;
  const send = (path: string, body: string) =>
    fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...auth }, body });
  const range = `"range":{"from":${now - 3_600_000},"to":${now}}`;
  for (const path of ['', '?via=express']) {
    // 250,000 numbers in a filter list: zod checked each before the list's length (1.3 s, 270 MB).
    let r = await send(path, `{${range},"queries":[{"refId":"A","ruleId":[${Array(250_000).fill(1).join(',')}]}]}`);
    assert.equal(r.status, 400, path);
    let body = await r.json();
    assert.equal(body.details[0].path, 'queries.0.ruleId', path);
    assert.match(body.details[0].message, /has 250,000 items; at most 500/);
    r = await send(path, `{${range},"queries":[${Array(40_000).fill('{}').join(',')}]}`);
    body = await r.json();
    assert.equal(body.details[0].path, 'queries', path);
    // 200,000 levels of nesting: JSON.parse alone took 190 ms for 1 MB of them.
    r = await send(path, `{${range},"queries":${'['.repeat(200_000)}${']'.repeat(200_000)}}`);
    assert.equal(r.status, 400, path);
    assert.match((await r.json()).error, /nests deeper than 8 levels/, path);
    // 90,000 keys in one object (1 MB): 55-125 ms to parse, 125-240 ms to validate; 10,000 small
    // objects of 10 keys, 93-184 ms to parse. Refused past 2,000 object members in all; colons
    // inside strings are not members.
    const keys = (n: number) => Array.from({ length: n }, (_, i) => `"k${i}":1`).join(',');
    for (const hostile of [
      `{${range},"queries":[{"refId":"A"}],${keys(90_000)}}`,
      `{${range},"queries":[{"refId":"A","ruleId":"x"}],"pad":[${Array(10_000)
        .fill(`{${keys(10)}}`)
        .join(',')}]}`,
    ]) {
      r = await send(path, hostile);
      assert.equal(r.status, 400, path);
      assert.match(
        (await r.json()).error,
        /the body's objects have more than 2000 members in all \(a query has at most 21 fields, a request at most 50 queries\)/,
        path
      );
    }
    // 50 queries with every filter and option: well within.
    const full = Array.from(
      { length: 50 },
      (_, i) =>
        `{"refId":"Q${i}","kind":"stats","granularity":"auto","metricType":"RULE_EXECUTION","ruleId":"r","parserId":"p","ruleCategory":"c","sourceType":"s","status":"ERROR","hide":false,"datasource":{"type":"t","uid":"u"},"key":"k","queryType":"q","datasourceId":1,"intervalMs":1000,"maxDataPoints":100,"queryCachingTTL":0}`
    ).join(',');
    r = await send(path, `{${range},"intervalMs":1000,"maxDataPoints":100,"queries":[${full}]}`);
    assert.equal(r.status, 200, `${path} ${(await r.text()).slice(0, 300)}`);
    r = await send(path, `{${range},"queries":[{"refId":"A","ruleId":"${':'.repeat(150)}"}]}`);
    assert.equal(r.status, 200, `${path} ${await r.text()}`);
    // Brackets inside strings (escaped quotes too) are not nesting: an ordinary request.
    r = await send(path, `{${range},"queries":[{"refId":"A","ruleId":"\\\"[[[[[[[[[[[[{{{{{{{{"}]}`);
    assert.equal(r.status, 200, `${path} ${await r.text()}`);
  }
});

test('variables: names from a fixed list; anything else, including path traversal, is a 404', async () => {
  const r = await fetch(`${svc.url}/api/v1/variables/rules`, { headers: auth });
  assert.equal(r.status, 200);
  const body = await r.json();
  assert.ok(
    body.values.length === 40 && body.values[0].value === 'rule-0001' && body.values[0].text.includes('rule-0001')
  );
  // Warming asks for one value past its limit only: the same first values, in order.
  for (const name of VARIABLE_NAMES) {
    const rollups = await loadRollupCatalog(db.pool);
    const all = await variableValues(db.pool, name, rollups);
    assert.deepEqual(await variableValues(db.pool, name, rollups, 3), all.slice(0, 3), name);
  }
  for (const name of ['..%2F..%2Fetc%2Fpasswd', 'metrics', '%00', 'rules%3B', '%', '%E0%A4%A']) {
    const res = await fetch(`${svc.url}/api/v1/variables/${name}`, { headers: auth });
    assert.equal(res.status, 404, name);
    assert.match((await res.json()).error, /unknown variable|not found/);
  }
});

test('a variable list is one body for every request until read again, gzipped for clients that take it', async () => {
  const raw = (encoding?: string) =>
    new Promise<{ headers: http.IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
      const req = http.get(
        `${svc.url}/api/v1/variables/rules`,
        { headers: { ...auth, ...(encoding ? { 'accept-encoding': encoding } : {}) } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c) => chunks.push(c));
          res.on('end', () => resolve({ headers: res.headers, body: Buffer.concat(chunks) }));
        }
      );
      req.on('error', reject);
    });
  const plain = await raw();
  assert.equal(plain.headers['content-type'], 'application/json; charset=utf-8');
  assert.equal(plain.headers['content-encoding'], undefined);
  const zipped = await raw('gzip, deflate, br');
  assert.equal(zipped.headers['content-encoding'], 'gzip');
  assert.ok(zipped.body.length < plain.body.length / 2, `${zipped.body.length} of ${plain.body.length} bytes`);
  assert.deepEqual(gunzipSync(zipped.body), plain.body, 'the same list');
  assert.equal(JSON.parse(plain.body.toString()).values.length > 0, true);
});

test('text that is not valid Unicode, numbers read as Infinity and dates that do not exist: 400 saying which', async () => {
  const url = `${svc.url}/api/v1/query`;
  const send = (text: string) => postJson(url, text, auth);
  const lone = [
    // JSON escapes, as a client would send them: a lone half of a surrogate pair.
    `{"range":{"from":${now - DAY},"to":${now}},"queries":[{"refId":"A","kind":"stats","ruleId":"\\ud800abc"}]}`,
    `{"range":{"from":${now - DAY},"to":${now}},"queries":[{"refId":"A","kind":"stats","parserId":["p","\\udc00"]}]}`,
    `{"range":{"from":${now - DAY},"to":${now}},"queries":[{"refId":"\\ud800","kind":"stats"}]}`,
  ];
  for (const text of lone) {
    const r = await send(text);
    assert.equal(r.status, 400, text);
    assert.match(JSON.stringify(r.body), /must be valid Unicode/, text);
  }
  // A pair whose halves belong together is text like any other.
  const pair = await send(
    `{"range":{"from":${now - DAY},"to":${now}},"queries":[{"refId":"A","kind":"stats","ruleId":"\\ud83d\\ude00"}]}`
  );
  assert.equal(pair.status, 200, JSON.stringify(pair.body));

  const infinite = await send(
    `{"range":{"from":${now - DAY},"to":${now}},"queries":[{"refId":"A","kind":"topRules","limit":1e999}]}`
  );
  assert.equal(infinite.status, 400);
  assert.match(JSON.stringify(infinite.body), /must be a finite number/);

  const feb30 = await postJson(
    url,
    query({}, { from: '2026-02-30T00:00:00Z' as never, to: '2026-03-03T00:00:00Z' as never }),
    auth
  );
  assert.equal(feb30.status, 400);
  assert.match(JSON.stringify(feb30.body), /2026-02 has no day 30/);

  // fetch will not send an Expect header; node:http will.
  const expect = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = http.request(
      url,
      { method: 'POST', headers: { ...auth, 'content-type': 'application/json', expect: '200-ok' } },
      (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      }
    );
    req.on('error', reject);
    req.end(JSON.stringify(query({})));
  });
  assert.equal(expect.status, 417);
  assert.match(JSON.parse(expect.body).error, /Expect header is not supported/);
});

test('variables also list the values only the data holds: a rule deleted from `rules`, ids and names whose rows came first', async () => {
  // Changes this file's database (a rule deleted, rows added): kept last in the file.
  await db.pool.query(`DELETE FROM rules WHERE rule_id = 'rule-0040'`);
  await db.pool.query(
    `INSERT INTO metrics (time, metric_type, rule_id, parser_id, rule_category, source_type, status, execution_time_ms, records_processed, records_failed)
     SELECT now() - interval '3 hours' + g * interval '1 second', 'NEWTYPE', 'rule-9999', 'parser-999', 'ransomware', 's3', 'SUCCESS', 5, 1, 0
     FROM generate_series(1, 3) g`
  );
  await refreshRollups(db.pool, 'postgres');
  const rollups = await loadRollupCatalog(db.pool);
  const list = async (name: (typeof VARIABLE_NAMES)[number]) => {
    const values = await variableValues(db.pool, name, rollups);
    assert.equal(new Set(values.map((v) => v.value)).size, values.length, `${name}: each value once`);
    return values;
  };
  const rules = await list('rules');
  assert.equal(rules.length, 41);
  assert.deepEqual(
    rules.filter((r) => r.value === 'rule-0040' || r.value === 'rule-9999'),
    [
      { value: 'rule-0040', text: 'rule-0040' },
      { value: 'rule-9999', text: 'rule-9999' },
    ],
    'by id, having no name'
  );
  assert.ok(rules.find((r) => r.value === 'rule-0001')!.text.endsWith('(rule-0001)'), 'the others keep their names');
  assert.ok((await list('parsers')).some((p) => p.value === 'parser-999' && p.text === 'parser-999'));
  assert.ok((await list('categories')).some((c) => c.value === 'ransomware'));
  assert.ok((await list('sourceTypes')).some((c) => c.value === 's3'));
  assert.ok((await list('metricTypes')).some((c) => c.value === 'NEWTYPE'));
});
