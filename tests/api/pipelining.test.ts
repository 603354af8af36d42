/**
 * Requests pipelined on one connection: at most 16 queued behind the one answered, the next answered 503 busy at
 * once and the connection closed after the answers before it (1,000 cached requests in one
 * write held every other client's answers 290 ms). A client reading each answer never meets it.
 */
import assert from 'node:assert/strict';
import { test, before, after } from 'node:test';
import net from 'node:net';
import { startTestService, type TestDatabase } from '../support/services';
import { historyDatabase } from '../support/fixture';
import { PIPELINED_MAX } from '../../server/http/pipelining';
import type { RunningService } from '../../server/main';

let db: TestDatabase;
let svc: RunningService;

before(async () => {
  db = await historyDatabase({ days: 1, rowsPerHour: 100 });
  svc = await startTestService({ DATABASE_URL: db.url });
});
after(async () => {
  await svc?.stop();
  await db?.drop();
});

/** Writes `text` on one connection and returns all it receives until the service closes it (or 5 s). */
function exchange(text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(new URL(svc.url).port), '127.0.0.1');
    let received = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(received);
    }, 5000);
    socket.on('data', (c) => (received += c.toString('latin1')));
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(received);
    });
    socket.on('error', reject);
    socket.write(text);
  });
}

test('100 requests pipelined in one write: the first answered and 16 queued behind it, the next one busy, then the connection closed', async () => {
  const received = await exchange('GET /api/v1/cache/stats HTTP/1.1\r\nHost: localhost\r\n\r\n'.repeat(100));
  const statuses = [...received.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
  assert.deepEqual(statuses, [...Array(PIPELINED_MAX + 1).fill(200), 503], statuses.join(' '));
  assert.match(received, /more than 16 requests waiting on one connection/);
});

test('1,000 requests answered from memory, pipelined in one write: the same 17 answered, the next busy, the connection closed', async () => {
  // Answers that finish at once (health, the near cache) queue too: Node gives the next response
  // its socket only once the one before has been flushed.
  const health = await exchange('GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n'.repeat(1000));
  const statuses = [...health.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
  assert.deepEqual(statuses, [...Array(PIPELINED_MAX + 1).fill(200), 503], statuses.join(' '));

  // A dashboard query answered from the near cache, the case a flood of cached queries meets.
  const body = JSON.stringify({
    range: { from: Date.now() - 6 * 3600_000, to: Date.now() - 3600_000 },
    queries: [{ refId: 'A', kind: 'stats' }],
  });
  const post = `POST /api/v1/query HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
  const first = await exchange(post.replace('HTTP/1.1\r\n', 'HTTP/1.1\r\nConnection: close\r\n'));
  assert.match(first, /^HTTP\/1\.1 200 /);
  const cached = await exchange(post.repeat(1000));
  const cachedStatuses = [...cached.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
  assert.deepEqual(cachedStatuses, [...Array(PIPELINED_MAX + 1).fill(200), 503], cachedStatuses.join(' '));
  assert.match(cached, /more than 16 requests waiting on one connection/);
});

test('a client reading each answer before the next request is never refused', async () => {
  const url = `${svc.url}/api/v1/cache/stats`;
  for (let i = 0; i < 40; i++) {
    assert.equal((await fetch(url)).status, 200);
  }
});
