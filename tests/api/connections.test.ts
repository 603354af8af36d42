/**
 * Connections cost a file descriptor each: one that sends no request is closed after
 * HTTP_HEADERS_TIMEOUT_MS (Node times only requests begun, so 20,000 silent ones took every
 * descriptor the process had, and with them the database's and Redis's), and past
 * HTTP_MAX_CONNECTIONS new ones are closed at once while those held are served.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test, before, after } from 'node:test';
import { historyDatabase } from '../support/fixture';
import { startTestService, type TestDatabase } from '../support/services';
import { defaultMaxConnections } from '../../server/startup/http-server';

let db: TestDatabase;

before(async () => {
  db = await historyDatabase({ days: 1, rowsPerHour: 50 });
});
after(async () => db?.drop());

async function connect(port: number): Promise<net.Socket> {
  const socket = net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  socket.on('error', () => undefined);
  return socket;
}

/** Whether the socket is closed by the service within `ms`. */
const closedWithin = (socket: net.Socket, ms: number) =>
  new Promise<boolean>((resolve) => {
    if (socket.closed) {
      return resolve(true);
    }
    const timer = setTimeout(() => resolve(false), ms);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });

/** A keep-alive GET /healthz on the socket: its status, or null when the connection ends first. */
function health(socket: net.Socket): Promise<number | null> {
  return new Promise((resolve) => {
    let data = '';
    const onData = (c: Buffer) => {
      data += c.toString('latin1');
      if (data.includes('\r\n\r\n') && data.endsWith('}')) {
        socket.off('data', onData);
        resolve(Number(data.split(' ')[1]));
      }
    };
    socket.on('data', onData).once('close', () => resolve(null));
    socket.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n');
  });
}

test('a connection that sends no request is closed after HTTP_HEADERS_TIMEOUT_MS; one that does is kept alive as before', async () => {
  const svc = await startTestService({ DATABASE_URL: db.url, HTTP_HEADERS_TIMEOUT_MS: '300' });
  try {
    const silent = await connect(svc.port);
    const used = await connect(svc.port);
    assert.equal(await health(used), 200);
    assert.equal(await closedWithin(silent, 3000), true, 'the silent connection is closed');
    assert.equal(used.destroyed, false, 'the used one is not');
    assert.equal(await health(used), 200, 'and still answers');
    used.destroy();
  } finally {
    await svc.stop();
  }
});

test('past HTTP_MAX_CONNECTIONS a new connection is closed at once, and the ones held are still served', async () => {
  const svc = await startTestService({ DATABASE_URL: db.url, HTTP_MAX_CONNECTIONS: '4' });
  try {
    const held: net.Socket[] = [];
    for (let i = 0; i < 4; i++) {
      held.push(await connect(svc.port));
      assert.equal(await health(held[i]), 200, 'each in use');
    }
    const extra = await connect(svc.port);
    assert.equal(await closedWithin(extra, 3000), true, 'the fifth is closed');
    for (const socket of held) {
      assert.equal(await health(socket), 200);
    }
    held[0].destroy();
    await new Promise((r) => setTimeout(r, 100));
    const next = await connect(svc.port);
    assert.equal(await health(next), 200, 'a place freed is taken again');
    next.destroy();
    held.forEach((s) => s.destroy());
  } finally {
    await svc.stop();
  }
});

test('near HTTP_MAX_CONNECTIONS a new connection closes the oldest one not used yet: a client holding idle connections keeps no one out', async () => {
  const svc = await startTestService({ DATABASE_URL: db.url, HTTP_MAX_CONNECTIONS: '8' });
  try {
    // A client that has begun its request (half its headers) before the hoard: not the one to go.
    const slow = await connect(svc.port);
    slow.write('GET /healthz HTTP/1.1\r\n');
    const hoarded: net.Socket[] = [];
    for (let i = 0; i < 7; i++) {
      hoarded.push(await connect(svc.port));
    }
    const firstClosed = closedWithin(hoarded[0], 3000);
    // Before, every new connection was closed at once while the idle ones were held.
    const client = await connect(svc.port);
    assert.equal(await health(client), 200, 'a new client is served');
    assert.equal(await firstClosed, true, 'the oldest idle connection made room');
    assert.equal(slow.destroyed, false, 'not the one that had begun its request');
    slow.write('Host: localhost\r\n\r\n');
    assert.equal(
      await new Promise((r) => slow.once('data', (c: Buffer) => r(c.toString('latin1').split(' ')[1]))),
      '200'
    );
    slow.destroy();
    client.destroy();
    hoarded.forEach((s) => s.destroy());
  } finally {
    await svc.stop();
  }
});

test('the default limit leaves the process 512 descriptors for the database, Redis and files', () => {
  assert.equal(
    defaultMaxConnections('Max open files            20000                20000                files\n'),
    10_000
  );
  assert.equal(
    defaultMaxConnections('Max open files            4096                 4096                 files\n'),
    3584
  );
  assert.equal(
    defaultMaxConnections('Max open files            1024                 4096                 files\n'),
    512
  );
  assert.equal(defaultMaxConnections(''), 10_000, 'where the limit cannot be read');
});
