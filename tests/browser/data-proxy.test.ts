/**
 * The data-proxy emulator (data-proxy.ts) against a recording upstream: first what it
 * reproduces of Grafana (so the browser tests stand on it), then plugin.json's routes
 * through it for each Grafana role — who reaches which service path with which token.
 *
 *   node --import tsx --test tests/browser/data-proxy.test.ts
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http, { type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';

import {
  AUTH_FAILED,
  createDataProxy,
  type GrafanaUser,
  interpolate,
  matchRoute,
  type PluginRoute,
  type ProxiedDataSource,
  ROUTE_DENIED,
  type UpstreamRequest,
} from './data-proxy';

const PLUGIN_ROUTES: PluginRoute[] = JSON.parse(
  fs.readFileSync(path.resolve(__dirname, '..', '..', 'plugin.json'), 'utf8')
).routes;

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** An upstream that records every request and answers from `reply` (default: 200 JSON echo). */
async function startUpstream() {
  const seen: Seen[] = [];
  let reply: (req: Seen, res: http.ServerResponse) => void = (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"ok":true}');
  };
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const entry = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body };
      seen.push(entry);
      reply(entry, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    answer(fn: typeof reply) {
      reply = fn;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

type Upstream = Awaited<ReturnType<typeof startUpstream>>;

/** A Grafana stand-in serving only the data proxy, with settings and user changeable per test. */
async function startProxy(
  routes: PluginRoute[],
  state: { ds: ProxiedDataSource; user: GrafanaUser },
  timeoutMs?: number
) {
  const forwarded: UpstreamRequest[] = [];
  const handle = createDataProxy({
    routes,
    datasource: () => state.ds,
    user: () => state.user,
    timeoutMs,
    onUpstreamRequest: (r) => forwarded.push(r),
  });
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      if (!(await handle(req, res, Buffer.concat(chunks)))) {
        res.writeHead(404).end();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    forwarded,
    /** Any method, path and headers (fetch refuses hop-by-hop ones); the path is sent as is. */
    send(method: string, proxyPath: string, headers: Record<string, string> = {}, body = '') {
      return new Promise<{ status: number; headers: IncomingHttpHeaders; body: string }>((resolve, reject) => {
        const req = http.request(
          { host: '127.0.0.1', port, method, path: `/api/datasources/proxy/uid/ruleperf/${proxyPath}`, headers },
          (res) => {
            let text = '';
            res.on('data', (c) => (text += c));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
          }
        );
        req.on('error', reject);
        req.end(body);
      });
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

type Proxy = Awaited<ReturnType<typeof startProxy>>;

const viewer: GrafanaUser = { login: 'viewer', role: 'Viewer' };
const editor: GrafanaUser = { login: 'editor', role: 'Editor' };
const admin: GrafanaUser = { login: 'admin', role: 'Admin' };

describe('the emulator reproduces Grafana', () => {
  let upstream: Upstream;
  let proxy: Proxy;
  const state = {
    ds: { uid: 'ruleperf', jsonData: {}, secureJsonData: {} } as ProxiedDataSource,
    user: viewer,
  };
  const ROUTES: PluginRoute[] = [
    { path: 'open', url: '{{ .JsonData.url }}/o', headers: [{ name: 'X-Key', content: '{{ .SecureJsonData.key }}' }] },
    { path: 'plain', url: '{{ .JsonData.url }}/p' },
    { path: 'slow', url: '{{ .JsonData.url }}/slow' },
  ];

  before(async () => {
    upstream = await startUpstream();
    proxy = await startProxy(ROUTES, state, 500);
  });
  beforeEach(() => {
    state.ds = {
      uid: 'ruleperf',
      jsonData: { url: upstream.url, keepCookies: ['keep'] },
      secureJsonData: { key: 's3' },
    };
    state.user = viewer;
    upstream.seen.length = 0;
    upstream.answer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"ok":true}');
    });
  });
  after(async () => {
    await proxy.close();
    await upstream.close();
  });

  test('rewrites an upstream 401 into 400 "Authentication to data source failed", dropping its headers', async () => {
    upstream.answer((_req, res) => {
      res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Bearer', 'x-service': 'ruleperf' });
      res.end('{"error":"unauthorized"}');
    });
    const res = await proxy.send('GET', 'open/x');
    assert.equal(res.status, 400);
    assert.equal(res.body, AUTH_FAILED);
    assert.equal(res.headers['content-type'], 'text/plain; charset=utf-8');
    assert.equal(res.headers['www-authenticate'], undefined);
    assert.equal(res.headers['x-service'], undefined);
  });

  test('passes other statuses and bodies through, without Set-Cookie and with a sandbox CSP', async () => {
    upstream.answer((_req, res) => {
      res.writeHead(503, { 'content-type': 'application/json', 'set-cookie': 'session=1', 'x-service': 'ruleperf' });
      res.end('{"error":"database unavailable"}');
    });
    const res = await proxy.send('GET', 'open/x');
    assert.equal(res.status, 503);
    assert.equal(res.body, '{"error":"database unavailable"}');
    assert.equal(res.headers['set-cookie'], undefined);
    assert.equal(res.headers['content-security-policy'], 'sandbox');
    assert.equal(res.headers['x-service'], 'ruleperf');
  });

  test("strips hop-by-hop headers, cookies, Origin and Referer; sets route headers over the browser's", async () => {
    await proxy.send(
      'POST',
      'open/a/b?q=1&r=2',
      {
        Connection: 'X-Secret',
        'X-Secret': 'hop',
        'Keep-Alive': 'timeout=5',
        'Proxy-Authorization': 'Basic eA==',
        'X-Key': 'from-the-browser',
        Cookie: 'grafana_session=abc; keep=1; other=2',
        Origin: 'http://grafana',
        Referer: 'http://grafana/d/x',
        'X-Forwarded-Host': 'evil',
        'Content-Type': 'application/json',
      },
      '{"a":1}'
    );
    const [req] = upstream.seen;
    assert.equal(req.url, '/o/a/b?q=1&r=2');
    assert.equal(req.body, '{"a":1}');
    assert.equal(req.headers['x-key'], 's3');
    for (const h of ['x-secret', 'keep-alive', 'proxy-authorization', 'origin', 'referer', 'x-forwarded-host']) {
      assert.equal(req.headers[h], undefined, h);
    }
    assert.equal(req.headers.cookie, 'keep=1');
    assert.equal(req.headers['x-grafana-referer'], 'http://grafana/d/x');
    assert.match(String(req.headers['user-agent']), /^Grafana\//);
    assert.equal(req.headers['content-type'], 'application/json');
  });

  test('turns X-DS-Authorization into Authorization', async () => {
    await proxy.send('GET', 'plain', { 'X-DS-Authorization': 'Bearer from-ds' });
    assert.equal(upstream.seen[0].headers.authorization, 'Bearer from-ds');
    assert.equal(upstream.seen[0].headers['x-ds-authorization'], undefined);
  });

  test('sends nothing upstream for a path no route matches (the data source has no URL of its own): 502', async () => {
    const res = await proxy.send('GET', 'elsewhere/x');
    assert.equal(res.status, 502);
    assert.equal(upstream.seen.length, 0);
    assert.equal(proxy.forwarded.at(-1)?.route, null);
  });

  test('answers 502 when the upstream is down and 504 when it does not answer in time', async () => {
    state.ds.jsonData.url = 'http://127.0.0.1:9';
    assert.equal((await proxy.send('GET', 'open')).status, 502);
    state.ds.jsonData.url = upstream.url;
    upstream.answer(() => undefined); // never answers; the proxy's 500 ms timeout ends it
    assert.equal((await proxy.send('GET', 'slow')).status, 504);
  });

  test('answers 404 for another data source uid', async () => {
    state.ds.uid = 'other';
    const res = await proxy.send('GET', 'open');
    assert.equal(res.status, 404);
    assert.equal(JSON.parse(res.body).message, 'Unable to find datasource');
  });
});

describe('route matching, roles and templates', () => {
  test('the FIRST route in plugin.json order wins, so an open prefix listed first shadows a guarded path', () => {
    const broad: PluginRoute = { path: 'api', url: 'x' };
    const guarded: PluginRoute = { path: 'api/v1/invalidate', method: 'POST', reqRole: 'Admin', url: 'x' };
    assert.equal(matchRoute([broad, guarded], 'POST', 'api/v1/invalidate'), broad);
    assert.equal(matchRoute([guarded, broad], 'POST', 'api/v1/invalidate'), guarded);
    // Paths are cleaned before matching, and matched as string prefixes.
    assert.equal(matchRoute([guarded, broad], 'POST', 'api/v1/query/../invalidate'), guarded);
    assert.equal(matchRoute([guarded], 'POST', 'api/v1/invalidateX'), guarded);
    // A route's method must match; an empty route path matches everything.
    assert.equal(matchRoute([guarded], 'GET', 'api/v1/invalidate'), undefined);
    const all: PluginRoute = { path: '' };
    assert.equal(matchRoute([all], 'GET', 'anything'), all);
  });

  test('templates: JsonData and SecureJsonData, missing keys as Go prints them, if/else, orEmpty', () => {
    const data = { JsonData: { url: 'http://s:1', port: 8080 }, SecureJsonData: { token: 't' } };
    assert.equal(interpolate('{{ .JsonData.url }}/api', data), 'http://s:1/api');
    assert.equal(interpolate('{{.JsonData.port}}', data), '8080');
    assert.equal(interpolate('[{{ .JsonData.missing }}]', data), '[<no value>]');
    assert.equal(interpolate('[{{ .JsonData.missing | orEmpty }}]', data), '[]');
    assert.equal(interpolate('[{{ .SecureJsonData.missing }}]', data), '[]');
    const pick =
      'Bearer {{ if .SecureJsonData.admin }}{{ .SecureJsonData.admin }}{{ else }}{{ .SecureJsonData.token }}{{ end }}';
    assert.equal(interpolate(pick, data), 'Bearer t');
    assert.equal(interpolate(pick, { ...data, SecureJsonData: { token: 't', admin: 'a' } }), 'Bearer a');
    assert.equal(interpolate(pick, { ...data, SecureJsonData: { token: 't', admin: '' } }), 'Bearer t');
    assert.throws(() => interpolate('{{ printf "%s" .JsonData.url }}', data), /unsupported template action/);
  });
});

describe("plugin.json's routes through the emulator, per Grafana role", () => {
  let upstream: Upstream;
  let proxy: Proxy;
  const state = {
    ds: { uid: 'ruleperf', jsonData: {}, secureJsonData: {} } as ProxiedDataSource,
    user: viewer,
  };

  before(async () => {
    upstream = await startUpstream();
    proxy = await startProxy(PLUGIN_ROUTES, state);
  });
  beforeEach(() => {
    state.ds = { uid: 'ruleperf', jsonData: { serviceUrl: upstream.url }, secureJsonData: { apiToken: 'read-token' } };
    upstream.seen.length = 0;
  });
  after(async () => {
    await proxy.close();
    await upstream.close();
  });

  for (const user of [viewer, editor, admin]) {
    test(`${user.role}: queries, variables and readiness reach the service, with the read token where needed`, async () => {
      state.user = user;
      const query = '{"range":{"from":0,"to":1},"queries":[{"refId":"A"}]}';
      assert.equal(
        (await proxy.send('POST', 'api/v1/query', { 'Content-Type': 'application/json' }, query)).status,
        200
      );
      assert.equal((await proxy.send('GET', 'api/v1/variables/rules')).status, 200);
      assert.equal((await proxy.send('GET', 'readyz')).status, 200);
      assert.deepEqual(
        upstream.seen.map((r) => [r.method, r.url, r.headers.authorization]),
        [
          ['POST', '/api/v1/query', 'Bearer read-token'],
          ['GET', '/api/v1/variables/rules', 'Bearer read-token'],
          ['GET', '/readyz', undefined],
        ]
      );
      assert.equal(upstream.seen[0].body, query);
    });
  }

  for (const user of [viewer, editor]) {
    test(`${user.role}: invalidation is refused by Grafana and never reaches the service`, async () => {
      state.user = user;
      state.ds.secureJsonData.adminToken = 'admin-token';
      for (const p of ['api/v1/invalidate', 'api/v1/query/../invalidate', 'api/v1/invalidate?all=true']) {
        const res = await proxy.send('POST', p, { 'Content-Type': 'application/json' }, '{"all":true}');
        assert.equal(res.status, 403, p);
        assert.deepEqual(JSON.parse(res.body), { message: ROUTE_DENIED });
      }
      assert.equal(upstream.seen.length, 0);
    });
  }

  test('Admin: invalidation reaches the service with the admin token, or the read token when none is set', async () => {
    state.user = admin;
    const all = '{"all":true}';
    assert.equal(
      (await proxy.send('POST', 'api/v1/invalidate', { 'Content-Type': 'application/json' }, all)).status,
      200
    );
    state.ds.secureJsonData.adminToken = 'admin-token';
    assert.equal(
      (await proxy.send('POST', 'api/v1/invalidate', { 'Content-Type': 'application/json' }, all)).status,
      200
    );
    assert.deepEqual(
      upstream.seen.map((r) => [r.url, r.headers.authorization, r.body]),
      [
        ['/api/v1/invalidate', 'Bearer read-token', all],
        ['/api/v1/invalidate', 'Bearer admin-token', all],
      ]
    );
  });

  test('reqAction decides where Grafana evaluates it: datasources:write on this data source, not the role', async () => {
    // A Viewer granted edit rights on this very data source (Enterprise data source permissions) may flush it ...
    state.user = {
      login: 'owner',
      role: 'Viewer',
      permissions: [{ action: 'datasources:write', scope: 'datasources:uid:ruleperf' }],
    };
    assert.equal((await proxy.send('POST', 'api/v1/invalidate', {}, '{"all":true}')).status, 200);
    // ... but not with rights on another one.
    state.user = {
      login: 'other',
      role: 'Admin',
      permissions: [{ action: 'datasources:write', scope: 'datasources:uid:other' }],
    };
    assert.equal((await proxy.send('POST', 'api/v1/invalidate', {}, '{"all":true}')).status, 403);
  });

  test('nothing else under the service is reachable through Grafana, whatever the role', async () => {
    state.user = admin;
    for (const [method, p] of [
      ['GET', 'api/v1/cache/stats'],
      ['GET', 'api/v1/invalidate'],
      ['POST', 'api/v1/variables/rules'],
      ['GET', 'metrics'],
      ['GET', 'healthz'],
    ]) {
      const res = await proxy.send(method, p);
      assert.equal(res.status, 502, `${method} ${p}`);
    }
    assert.equal(upstream.seen.length, 0);
  });
});
