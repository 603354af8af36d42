/** UnsentAnswers on a real HTTP server: answers taken by their client hold nothing, and a kept-alive connection gets one listener, not one per answer. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import http from 'node:http';
import net, { type Socket } from 'node:net';
import { UnsentAnswers } from './unsent';

/** Waits for `condition`, up to 10 s. */
async function until(condition: () => boolean): Promise<void> {
  for (const deadline = Date.now() + 10_000; !condition() && Date.now() < deadline;) {
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.ok(condition(), 'within 10 s');
}

test('answers read by their client: nothing held after, and no listener left on a kept-alive connection', async () => {
  const unsent = new UnsentAnswers({ maxUnsentBytes: 1024, timeoutMs: 5000 });
  let socket: Socket | null = null;
  const server = http.createServer((req, res) => {
    socket = req.socket;
    unsent.watch(req.socket);
    res.write('x'.repeat(100));
    res.end('y'.repeat(2000));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const port = (server.address() as { port: number }).port;
  try {
    for (let i = 0; i < 30; i++) {
      const body = await new Promise<string>((resolve, reject) =>
        http
          .get({ port, host: '127.0.0.1', agent }, (res) => {
            let text = '';
            res.on('data', (c) => (text += c));
            res.on('end', () => resolve(text));
          })
          .on('error', reject)
      );
      assert.equal(body.length, 2100);
    }
    unsent.sweep();
    assert.equal(unsent.held, 0);
    assert.equal(unsent.full(), false);
    assert.ok(socket!.listenerCount('close') < 10, `${socket!.listenerCount('close')} close listeners`);
  } finally {
    agent.destroy();
    server.close();
  }
});

test('an answer its client does not read: counted, and past the send timeout the connection is closed', async () => {
  const unsent = new UnsentAnswers({ maxUnsentBytes: 100 * 1024 * 1024, timeoutMs: 600 });
  const big = Buffer.alloc(40 * 1024 * 1024, 120); // more than the kernel's socket buffers take
  const server = http.createServer((req, res) => {
    unsent.watch(req.socket);
    res.end(big);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const client = net.connect(port, '127.0.0.1');
  client.on('error', () => undefined);
  client.pause();
  client.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  try {
    await new Promise((r) => setTimeout(r, 400));
    unsent.sweep();
    assert.ok(unsent.held > 1024 * 1024, `${unsent.held} bytes held`);
    assert.equal(unsent.full(), false, 'under the limit');
    await new Promise((r) => setTimeout(r, 900));
    unsent.sweep(); // past the timeout: the connection is destroyed
    await new Promise((r) => setTimeout(r, 50));
    unsent.sweep();
    assert.equal(unsent.held, 0);
  } finally {
    client.destroy();
    server.close();
  }
});

test('over the limit, the connections holding the most are closed until the rest fit: the others keep theirs', async () => {
  const shed: Array<[number, number]> = [];
  const unsent = new UnsentAnswers({
    maxUnsentBytes: 20 * 1024 * 1024,
    timeoutMs: 60_000,
    onShed: (closed, bytes) => shed.push([closed, bytes]),
  });
  const served = new Map<string, Socket>();
  const server = http.createServer((req, res) => {
    unsent.watch(req.socket);
    served.set(req.url!, req.socket);
    res.end(Buffer.alloc(Number(req.url!.slice(1)) * 1024 * 1024, 120));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const clients = [40, 8].map((megabytes) => {
    const client = net.connect(port, '127.0.0.1');
    client.on('error', () => undefined);
    client.pause(); // reads nothing
    client.write(`GET /${megabytes} HTTP/1.1\r\nHost: x\r\n\r\n`);
    return client;
  });
  try {
    // Both asked and answered (on a loaded machine, later than a fixed wait: the suite ran beside a demo's start).
    await until(() => served.size === 2);
    await new Promise((r) => setTimeout(r, 100));
    unsent.sweep();
    assert.equal(shed.length, 1);
    assert.equal(shed[0][0], 1, 'one connection closed');
    assert.ok(shed[0][1] > 20 * 1024 * 1024, `the one holding the most (${shed[0][1]} bytes)`);
    assert.equal(served.get('/40')!.destroyed, true);
    assert.equal(served.get('/8')!.destroyed, false, 'the smaller holder keeps its connection');
    assert.ok(unsent.held > 0 && unsent.held <= 20 * 1024 * 1024, `the rest fit: ${unsent.held} bytes`);
    assert.equal(unsent.full(), false);
  } finally {
    clients.forEach((c) => c.destroy());
    server.close();
  }
});

test('over the limit, the connection stalled longest goes first: a client that has just begun reading a larger answer keeps its connection', async () => {
  const unsent = new UnsentAnswers({ maxUnsentBytes: 20 * 1024 * 1024, timeoutMs: 60_000 });
  const served = new Map<string, Socket>();
  const server = http.createServer((req, res) => {
    unsent.watch(req.socket);
    served.set(req.url!, req.socket);
    res.end(Buffer.alloc(Number(req.url!.slice(1)) * 1024 * 1024, 120));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const ask = (megabytes: number) => {
    const client = net.connect(port, '127.0.0.1');
    client.on('error', () => undefined);
    client.pause();
    client.write(`GET /${megabytes} HTTP/1.1\r\nHost: x\r\n\r\n`);
    return client;
  };
  const clients = [ask(15)]; // asks and never reads
  try {
    await until(() => served.has('/15'));
    await new Promise((r) => setTimeout(r, 300));
    unsent.sweep(); // under the limit: nothing closed
    await new Promise((r) => setTimeout(r, 300));
    clients.push(ask(17)); // larger, but just asked
    await until(() => served.has('/17'));
    await new Promise((r) => setTimeout(r, 100));
    unsent.sweep();
    assert.equal(served.get('/15')!.destroyed, true, 'the one stalled longest is closed');
    assert.equal(served.get('/17')!.destroyed, false, 'the new one keeps its connection');
    assert.ok(unsent.held >= 0 && unsent.held <= 20 * 1024 * 1024, `${unsent.held} bytes held`);
  } finally {
    clients.forEach((c) => c.destroy());
    server.close();
  }
});
