/** A request's signal aborts when its connection closes unanswered, never after its answer. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createServer, type ServerResponse } from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import { clientGone } from './client-gone';

test('pipelined requests each get a signal, aborted together when the connection closes; one answered is not; one close listener per connection', async () => {
  const signals: AbortSignal[] = [];
  const held: ServerResponse[] = [];
  let closeListeners = 0;
  const server = createServer((req, res) => {
    const before = req.socket.listenerCount('close');
    signals.push(clientGone(req, res));
    closeListeners += req.socket.listenerCount('close') - before;
    if (req.url === '/answered') {
      res.end('ok');
    } else {
      held.push(res);
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  const socket = net.connect(port, '127.0.0.1');
  try {
    await seeRequestsGo(socket, signals, () => closeListeners);
  } finally {
    socket.destroy();
    server.closeAllConnections();
    server.close();
  }
});

async function seeRequestsGo(socket: net.Socket, signals: AbortSignal[], closeListeners: () => number) {
  await once(socket, 'connect');
  socket.write('GET /answered HTTP/1.1\r\nHost: x\r\n\r\n');
  await once(socket, 'data');
  // Twelve more pipelined: Node hands the handler each as it parses them, their responses queued.
  socket.write('GET /held HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(12));
  for (let i = 0; i < 50 && signals.length < 13; i++) {
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.equal(signals.length, 13);
  assert.equal(closeListeners(), 1, 'one listener for the connection, however many requests it carries');
  assert.ok(signals.every((s) => !s.aborted));
  socket.destroy();
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(signals[0].aborted, false, 'answered before the connection closed');
  assert.ok(
    signals.slice(1).every((s) => s.aborted),
    'every unanswered request is gone'
  );
}
