/** The probe port answers from its own thread: at once while the service's loop is busy, "stalled" once it is stuck. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { publishReadiness, startProbePort } from './probe-port';

const silent = { error: () => undefined };

test('health and readiness as published; 503 starting before the first readiness; 404 and 405 otherwise', async () => {
  const probes = await startProbePort('127.0.0.1', 0, silent);
  const url = `http://127.0.0.1:${probes.port}`;
  try {
    const health = await fetch(`${url}/healthz`);
    assert.deepEqual([health.status, await health.json()], [200, { status: 'ok' }]);
    const starting = await fetch(`${url}/readyz`);
    assert.equal(starting.status, 503);
    assert.equal(starting.headers.get('retry-after'), '5');
    assert.equal((await starting.json()).status, 'starting');
    probes.publish(200, JSON.stringify({ status: 'ready', warnings: [] }));
    let ready = await fetch(`${url}/readyz`);
    for (let i = 0; i < 50 && ready.status !== 200; i++) {
      await new Promise((r) => setTimeout(r, 10));
      ready = await fetch(`${url}/readyz`);
    }
    assert.deepEqual([ready.status, await ready.json()], [200, { status: 'ready', warnings: [] }]);
    assert.equal((await fetch(`${url}/readyz`, { method: 'HEAD' })).status, 200);
    assert.equal((await fetch(`${url}/readyz`, { method: 'POST' })).status, 405);
    assert.equal((await fetch(`${url}/api/v1/query`)).status, 404);
  } finally {
    await probes.stop();
  }
  await assert.rejects(fetch(`${url}/healthz`), 'closed once stopped');
});

test("a probe is answered while the service's thread is busy, and says stalled once it has been for the limit", async () => {
  // A process whose main thread, after starting the probe port, spins for 5 s without turning its loop.
  const script = `
    const { startProbePort } = require(${JSON.stringify(join(__dirname, 'probe-port.ts'))});
    startProbePort('127.0.0.1', 0, { error: () => undefined }, 1000).then((p) => {
      p.publish(200, '{"status":"ready"}');
      // Stopped when the test closes stdin (which keeps this process alive until then).
      process.stdin.on('data', () => undefined).on('end', () => p.stop());
      setTimeout(() => {
        process.stdout.write(p.port + '\\n');
        const until = Date.now() + 5000;
        while (Date.now() < until) {}
      }, 100);
    });`;
  const child = spawn(process.execPath, ['--import', 'tsx', '-e', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.stdout.once('data', (d) => resolve(Number(String(d).trim())));
      child.once('exit', () => reject(new Error('exited before listening')));
    });
    const spinning = performance.now();
    const url = `http://127.0.0.1:${port}`;
    // Answered while the thread spins (on its port, the service's own could not even accept).
    const early = await fetch(`${url}/healthz`);
    assert.ok(
      performance.now() - spinning < 2500,
      `answered ${(performance.now() - spinning).toFixed(0)} ms into the spin`
    );
    assert.ok([200, 503].includes(early.status));
    // Past the stall limit, still spinning: stalled, for liveness and readiness.
    await new Promise((r) => setTimeout(r, Math.max(0, spinning + 2500 - performance.now())));
    const stuck = await fetch(`${url}/healthz`);
    assert.equal(stuck.status, 503);
    assert.match((await stuck.json()).reason, /has not turned its event loop for \d+ s/);
    assert.equal((await fetch(`${url}/readyz`)).status, 503, 'not ready either');
    // The thread turns again: alive.
    await new Promise((r) => setTimeout(r, Math.max(0, spinning + 6000 - performance.now())));
    assert.equal((await fetch(`${url}/healthz`)).status, 200);
  } finally {
    child.stdin.end();
    child.kill();
  }
});

test('idle connections cannot keep a probe out: past 64, a new one closes the oldest; the absolute form is read', async () => {
  const probes = await startProbePort('127.0.0.1', 0, silent);
  const idle: net.Socket[] = [];
  try {
    for (let i = 0; i < 70; i++) {
      const socket = net.connect(probes.port, '127.0.0.1');
      socket.on('error', () => undefined);
      await new Promise((r) => socket.once('connect', r));
      idle.push(socket);
    }
    const health = await fetch(`http://127.0.0.1:${probes.port}/healthz`);
    assert.equal(health.status, 200, 'answered with 70 idle connections held');
    const absolute = await new Promise<string>((resolve) => {
      const socket = net.connect(probes.port, '127.0.0.1', () =>
        socket.write(`GET http://127.0.0.1:${probes.port}/healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`)
      );
      let text = '';
      socket.on('data', (d) => (text += d));
      socket.on('end', () => resolve(text));
    });
    assert.match(absolute, /^HTTP\/1\.1 200/);
  } finally {
    idle.forEach((s) => s.destroy());
    await probes.stop();
  }
});

test('a readiness look still running when publishing stops publishes nothing: the port says stopping', async () => {
  const published: Array<[number, string]> = [];
  let answer = (_: unknown) => undefined as void;
  const publishing = publishReadiness(
    { publish: (status, body) => published.push([status, body]) },
    () => new Promise((resolve) => (answer = resolve as (_: unknown) => void)),
    (r) => r
  );
  publishing.stop();
  answer({ status: 'ready', database: { ok: true } });
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(published, [[503, '{"status":"stopping"}']]);
});
