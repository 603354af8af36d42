/**
 * Answers a client never reads are bounded: past HTTP_UNSENT_MAX_BYTES of them waiting, the
 * connections holding the most are closed until the rest fit (API requests answered busy only in
 * the moment before), and a connection whose answer waits past HTTP_SEND_TIMEOUT_MS is closed. Before, 8 connections each
 * asking for a large answer and reading nothing held 830 MB for as long as they stayed open.
 */
import assert from 'node:assert/strict';
import { test, before, after } from 'node:test';
import net from 'node:net';
import { postJson, startTestService, type TestDatabase } from '../support/services';
import { historyDatabase, HOUR } from '../support/fixture';
import type { RunningService } from '../../server/main';

let db: TestDatabase;
let svc: RunningService;

before(async () => {
  db = await historyDatabase({ days: 1, rowsPerHour: 400 });
  svc = await startTestService({
    DATABASE_URL: db.url,
    HTTP_UNSENT_MAX_BYTES: String(256 * 1024),
    HTTP_SEND_TIMEOUT_MS: '1500',
  });
});
after(async () => {
  await svc?.stop();
  await db?.drop();
});

const hour = Math.floor(Date.now() / HOUR) * HOUR - 6 * HOUR;
// About 5 MB, more than the kernel's socket buffers take: 1,440 one-minute points for each of the
// fixture's 40 rules, ten figures each, times sent whole.
const LARGE = JSON.stringify({
  range: { from: hour - 24 * HOUR, to: hour },
  intervalMs: 60_000,
  maxDataPoints: 1440,
  compactTime: false,
  queries: [
    {
      refId: 'A',
      kind: 'timeseries',
      groupBy: 'ruleId',
      limit: 60,
      metrics: [
        'executionCount',
        'throughputPerSecond',
        'avgExecutionTimeMs',
        'p50ExecutionTimeMs',
        'p95ExecutionTimeMs',
        'p99ExecutionTimeMs',
        'maxExecutionTimeMs',
        'errorCount',
        'timeoutCount',
        'errorRate',
      ],
    },
  ],
});

const unsentBytes = async () => {
  const text = await (await fetch(`${svc.url}/metrics`)).text();
  return Number(/^ruleperf_http_unsent_bytes (\S+)$/m.exec(text)?.[1]);
};

test('answers left unread: past the limit the connections holding the most are closed, and API requests keep being answered', async () => {
  const one = await postJson(`${svc.url}/api/v1/query`, LARGE);
  assert.equal(one.status, 200);
  const size = Buffer.byteLength(JSON.stringify(one.body));
  assert.ok(size > 3_000_000, `a large answer: ${size} bytes`);

  // Ten connections that never read, three large requests each: two answers queued behind the first.
  const request = `POST /api/v1/query HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(LARGE)}\r\n\r\n${LARGE}`;
  const readers = Array.from({ length: 10 }, () => {
    const reader = net.connect(Number(new URL(svc.url).port), '127.0.0.1');
    reader.pause();
    reader.on('error', () => undefined);
    reader.write(request.repeat(3));
    return { reader, closed: new Promise<void>((resolve) => reader.once('close', () => resolve())) };
  });

  // Meanwhile others are answered: at most a request or two refused busy in the moment between
  // the answers piling up and the next look at the connections (a quarter of a second).
  const statuses: number[] = [];
  for (let i = 0; i < 40; i++) {
    await new Promise((r) => setTimeout(r, 25));
    const r = await postJson(`${svc.url}/api/v1/query`, {
      range: { from: hour - HOUR, to: hour },
      queries: [{ refId: 'A', kind: 'stats' }],
    });
    statuses.push(r.status);
  }
  assert.ok(statuses.filter((s) => s === 200).length >= 36, `answered meanwhile: ${statuses.join(' ')}`);
  assert.equal((await fetch(`${svc.url}/healthz`)).status, 200, 'health checks still answer');

  for (let i = 0; i < 100 && (await unsentBytes()) > 0; i++) {
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(await unsentBytes(), 0);
  for (const { reader, closed } of readers) {
    reader.resume(); // reads what the kernel holds, then finds the connection closed by the service
    await closed;
  }
  const again = await postJson(`${svc.url}/api/v1/query`, LARGE);
  assert.equal(again.status, 200);
});

test('answers to clients gone before they were ready are not counted: API requests keep being answered', async () => {
  for (let i = 0; i < 6; i++) {
    // A different range each time: an answer computed after its client left.
    const body = JSON.parse(LARGE);
    body.range.from -= (i + 1) * 60_000;
    const text = JSON.stringify(body);
    const socket = net.connect(Number(new URL(svc.url).port), '127.0.0.1');
    socket.on('error', () => undefined);
    socket.write(
      `POST /api/v1/query HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`
    );
    await new Promise((r) => setTimeout(r, 5));
    socket.destroy();
  }
  await new Promise((r) => setTimeout(r, 1500)); // the answers computed meanwhile
  assert.equal(await unsentBytes(), 0);
  const r = await postJson(`${svc.url}/api/v1/query`, {
    range: { from: hour - HOUR, to: hour },
    queries: [{ refId: 'A', kind: 'stats' }],
  });
  assert.equal(r.status, 200, JSON.stringify(r.body));
});
