/**
 * The port is bound first: while the service starts (its database, migrations, demo) it answers
 * "starting" — liveness 200, readiness and the API 503 with Retry-After — and a port already in
 * use stops the start at once, naming PORT, before any database work.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { freshDatabase, PG_HOST, PG_PORT, startTestService } from '../support/services';
import { freePort } from '../support/private-redis';
import { TcpProxy } from '../support/tcp-proxy';
import { StartupError } from '../../server/main';

test('while the database is slow to migrate, the port answers "starting"; then the service is ready', async () => {
  const db = await freshDatabase({ migrate: false });
  const proxy = new TcpProxy(PG_HOST, PG_PORT);
  const proxied = db.url.replace(`:${PG_PORT}/`, `:${await proxy.start()}/`);
  proxy.delayMs = 40; // every round trip of the migration 80 ms slower: seconds in all
  const port = await freePort();
  const starting = startTestService({ DATABASE_URL: proxied, PORT: String(port), CACHE_ENABLED: 'false' });
  try {
    const url = `http://127.0.0.1:${port}`;
    let health: Response | null = null;
    for (let i = 0; i < 50 && !health; i++) {
      health = await fetch(`${url}/healthz`).catch(() => null);
      if (!health) {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    assert.ok(health, 'the port answers within 5 s');
    assert.equal(health.status, 200);
    assert.equal((await health.json()).status, 'starting');
    const ready = await fetch(`${url}/readyz`);
    assert.equal(ready.status, 503);
    assert.equal((await ready.json()).status, 'starting');
    const query = await fetch(`${url}/api/v1/query`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ range: { from: 'now-1h', to: 'now' }, queries: [{ refId: 'A' }] }),
    });
    assert.equal(query.status, 503);
    assert.equal(query.headers.get('retry-after'), '5');
    assert.match((await query.json()).error, /the service is starting \(\d+ s so far/);
    proxy.delayMs = 0;
    const svc = await starting;
    assert.equal(svc.port, port);
    assert.equal((await fetch(`${url}/healthz`)).status, 200);
    assert.equal((await (await fetch(`${url}/healthz`)).json()).status, 'ok');
    await svc.stop();
  } finally {
    proxy.delayMs = 0;
    await starting.then((s) => s.stop()).catch(() => undefined);
    await proxy.stop();
    await db.drop();
  }
});

test('a port in use stops the start at once, naming PORT, before any database work', async () => {
  const taken = net.createServer();
  await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
  const port = (taken.address() as net.AddressInfo).port;
  try {
    const started = performance.now();
    await assert.rejects(
      startTestService({ DATABASE_URL: 'postgres://postgres@127.0.0.1:1/none', PORT: String(port) }),
      (err: Error) =>
        err instanceof StartupError &&
        new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port} .*set PORT`).test(err.message)
    );
    assert.ok(performance.now() - started < 2000);
  } finally {
    taken.close();
  }
});
