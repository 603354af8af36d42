/**
 * Stopping drains: a request a client writes on a kept-alive connection just as the service
 * is told to stop, or on a connection opened then, is answered (and its connection closed),
 * not reset. Without the drain (SHUTDOWN_DRAIN_MS=0) the same request is lost: Node's
 * server.close() destroys the connections it counts as idle.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test, before, after } from 'node:test';
import { historyDatabase } from '../support/fixture';
import { startTestService, type TestDatabase } from '../support/services';

let db: TestDatabase;

before(async () => {
  db = await historyDatabase({ days: 1, rowsPerHour: 50 });
});
after(async () => db?.drop());

interface Response {
  status: number;
  headers: Record<string, string>;
}

/** Writes a keep-alive GET on the socket; the response, or null when the connection ends without one. */
function get(socket: net.Socket, path: string): Promise<Response | null> {
  return new Promise((resolve) => {
    let data = '';
    const done = (r: Response | null) => {
      socket.off('data', onData).off('close', onClose).off('error', onClose);
      resolve(r);
    };
    const onData = (chunk: Buffer) => {
      data += chunk.toString('latin1');
      const end = data.indexOf('\r\n\r\n');
      if (end < 0) {
        return;
      }
      const [statusLine, ...lines] = data.slice(0, end).split('\r\n');
      const headers = Object.fromEntries(
        lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()])
      );
      if (data.length - end - 4 >= Number(headers['content-length'] ?? 0)) {
        done({ status: Number(statusLine.split(' ')[1]), headers });
      }
    };
    const onClose = () => done(null);
    socket.on('data', onData).on('close', onClose).on('error', onClose);
    socket.write(`GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n`);
  });
}

async function connect(port: number): Promise<net.Socket> {
  const socket = net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  return socket;
}

test('a request written on a kept-alive connection as the stop begins is answered, with Connection: close', async () => {
  const svc = await startTestService({ DATABASE_URL: db.url, SHUTDOWN_DRAIN_MS: '1000' });
  const socket = await connect(svc.port);
  const first = await get(socket, '/healthz');
  assert.equal(first?.status, 200);
  assert.notEqual(first?.headers.connection, 'close', 'kept alive before the stop');
  // The stop begins; in the same turn the client sends its next request on the idle connection.
  const stopped = svc.stop();
  const second = await get(socket, '/healthz');
  assert.equal(second?.status, 200, 'answered during the drain');
  assert.equal(second?.headers.connection, 'close', 'and told to reconnect elsewhere');
  // A connection opened during the drain is served too.
  const late = await connect(svc.port);
  assert.equal((await get(late, '/healthz'))?.status, 200);
  late.destroy();
  socket.destroy();
  await stopped;
  await assert.rejects(connect(svc.port), /ECONNREFUSED/, 'the port is closed once stopped');
});

test('without the drain, the same request is lost (what the drain is for)', async () => {
  const svc = await startTestService({ DATABASE_URL: db.url, SHUTDOWN_DRAIN_MS: '0' });
  const socket = await connect(svc.port);
  assert.equal((await get(socket, '/healthz'))?.status, 200);
  const stopped = svc.stop();
  assert.equal(await get(socket, '/healthz'), null, 'the idle connection was closed under the request');
  socket.destroy();
  await stopped;
});

test('a connection that never sent a request does not hold the stop: closed once the drain is over', async () => {
  // Node counts it as busy: the stop waited for SHUTDOWN_GRACE_MS, then exited with an error.
  const svc = await startTestService({ DATABASE_URL: db.url, SHUTDOWN_DRAIN_MS: '200' });
  const silent = await connect(svc.port);
  const closed = new Promise<void>((resolve) => silent.once('close', () => resolve()));
  const stopped = svc.stop().then(() => 'stopped');
  const hung = new Promise((resolve) => setTimeout(() => resolve('still waiting after 5 s'), 5000).unref());
  assert.equal(await Promise.race([stopped, hung]), 'stopped');
  await closed;
  silent.destroy();
});

test('a request begun before the stop (its headers half sent) and finished after the drain is still answered', async () => {
  const svc = await startTestService({ DATABASE_URL: db.url, SHUTDOWN_DRAIN_MS: '200' });
  const socket = await connect(svc.port);
  let received = '';
  socket.on('data', (c) => (received += c.toString('latin1')));
  socket.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\n');
  await new Promise((r) => setTimeout(r, 50));
  const stopped = svc.stop();
  await new Promise((r) => setTimeout(r, 600)); // past the drain and the 250 ms for a first request
  socket.write('\r\n');
  await stopped;
  await new Promise((r) => setTimeout(r, 50));
  assert.match(received, /^HTTP\/1\.1 200 /, `answered: ${JSON.stringify(received.slice(0, 40))}`);
  socket.destroy();
});

test('requests still arriving when the stop is half its grace old (a head or a body trickling in) are closed, so the stop ends in time', async () => {
  // Left to Node's timeouts (headers 10 s, request 30 s), one such client made every stop
  // outlast SHUTDOWN_GRACE_MS and exit with an error.
  const svc = await startTestService({ DATABASE_URL: db.url, SHUTDOWN_DRAIN_MS: '200', SHUTDOWN_GRACE_MS: '3000' });
  const head = await connect(svc.port);
  head.write('GET /heal');
  const body = await connect(svc.port);
  body.write(
    'POST /api/v1/query HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 900000\r\n\r\n{'
  );
  const trickle = setInterval(() => body.write(' '), 100);
  const closed = [head, body].map((s) => new Promise<void>((resolve) => s.once('close', () => resolve())));
  [head, body].forEach((s) => s.on('error', () => undefined));
  const started = Date.now();
  const stopped = svc.stop().then(() => Date.now() - started);
  const hung = new Promise<string>((resolve) => setTimeout(() => resolve('still waiting after 2.7 s'), 2700).unref());
  try {
    const took = await Promise.race([stopped, hung]);
    assert.equal(typeof took, 'number', String(took));
    await Promise.all(closed);
  } finally {
    clearInterval(trickle);
    head.destroy();
    body.destroy();
  }
});
