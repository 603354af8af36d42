/**
 * PROBE_PORT: the service's /healthz and /readyz on a port of their own, answered by a worker
 * thread from the readiness the service computes each second (startup/probe-port.ts).
 */
import assert from 'node:assert/strict';
import { test, before, after } from 'node:test';
import { startTestService, type TestDatabase } from '../support/services';
import { historyDatabase } from '../support/fixture';
import type { RunningService } from '../../server/main';

let db: TestDatabase;
let svc: RunningService;

before(async () => {
  db = await historyDatabase({ days: 1, rowsPerHour: 50 });
  // The compose stack's published token: the service warns, and only token holders read the warning.
  svc = await startTestService({ DATABASE_URL: db.url, PROBE_PORT: '0', API_TOKEN: 'ruleperf-local-token' });
});
after(async () => {
  await svc?.stop();
  await db?.drop();
});

test("the probe port answers the service's health and readiness, warnings withheld as from a caller without the token", async () => {
  assert.ok(svc.probeUrl, 'PROBE_PORT set: a probe URL');
  assert.notEqual(svc.probeUrl, svc.url);
  const health = await fetch(`${svc.probeUrl}/healthz`);
  assert.deepEqual([health.status, await health.json()], [200, { status: 'ok' }]);
  const main = await (await fetch(`${svc.url}/readyz`)).json(); // without the token
  let probe = await fetch(`${svc.probeUrl}/readyz`);
  for (let i = 0; i < 30 && probe.status !== 200; i++) {
    await new Promise((r) => setTimeout(r, 100));
    probe = await fetch(`${svc.probeUrl}/readyz`);
  }
  assert.equal(probe.status, 200);
  const body = await probe.json();
  assert.deepEqual(body, main);
  assert.equal(body.status, 'ready');
  assert.match(JSON.stringify(body.warnings), /call \/readyz with the API token to read them/);
  const holder = await (
    await fetch(`${svc.url}/readyz`, { headers: { authorization: 'Bearer ruleperf-local-token' } })
  ).json();
  assert.match(
    JSON.stringify(holder.warnings),
    /SECURITY WARNING|default/i,
    'a token holder reads it on the service port'
  );
  // Nothing else there: no query, no metrics.
  assert.equal((await fetch(`${svc.probeUrl}/api/v1/query`, { method: 'POST' })).status, 404);
  assert.equal((await fetch(`${svc.probeUrl}/metrics`)).status, 404);
});
