/**
 * Serves a PGlite instance over the PostgreSQL wire protocol on a loopback port, so the
 * service, the CLIs and the tests use the ordinary `pg` driver against it.
 *
 * Written here rather than taken from pglite-socket 0.0.19, which hands each TCP chunk
 * to PGlite as it arrives: a message larger than one chunk (a batch INSERT, a long query)
 * is split mid-message and crashes the WASM instance. This server frames the stream into
 * whole protocol messages, feeds them in order, and serves one connection at a time (PGlite
 * has one session); later connections wait their turn.
 */
import net from 'node:net';

interface ProtocolDb {
  execProtocolRaw(message: Uint8Array): Promise<Uint8Array>;
  runExclusive<T>(fn: () => Promise<T>): Promise<T>;
  query(sql: string): Promise<unknown>;
}

/** Splits a byte stream into complete messages; the first one (startup) has no type byte. */
export class MessageFramer {
  private buffer: Buffer = Buffer.alloc(0);
  private started = false;

  push(chunk: Buffer): Buffer[] {
    this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
    const messages: Buffer[] = [];
    for (;;) {
      const header = this.started ? 5 : 4;
      if (this.buffer.length < header) break;
      const length = this.started ? 1 + this.buffer.readInt32BE(1) : this.buffer.readInt32BE(0);
      if (this.buffer.length < length) break;
      const message = this.buffer.subarray(0, length);
      // SSLRequest / GSSENCRequest precede the real startup message.
      const code = this.started ? 0 : message.readInt32BE(4);
      if (!this.started && code !== 80877103 && code !== 80877104) this.started = true;
      messages.push(Buffer.from(message));
      this.buffer = this.buffer.subarray(length);
    }
    return messages;
  }
}

export async function serveWire(db: ProtocolDb, host = '127.0.0.1', port = 0): Promise<{ port: number; close(): Promise<void> }> {
  let turn: Promise<void> = Promise.resolve();
  const sockets = new Set<net.Socket>();

  const session = (socket: net.Socket) =>
    db.runExclusive(
      () =>
        new Promise<void>((done) => {
          const framer = new MessageFramer();
          let chain: Promise<void> = Promise.resolve();
          const finish = () => {
            chain.finally(() => {
              // One session is shared by every connection: never hand on an open transaction.
              done();
            });
          };
          socket.on('data', (chunk) => {
            for (const message of framer.push(chunk)) {
              if (message.length === 8 && message.readInt32BE(4) === 80877103) {
                socket.write('N'); // no TLS on loopback
                continue;
              }
              chain = chain.then(async () => {
                const reply = await db.execProtocolRaw(new Uint8Array(message));
                if (reply.length && !socket.destroyed) socket.write(Buffer.from(reply));
              });
              chain = chain.catch(() => {
                socket.destroy();
              });
            }
          });
          socket.once('close', finish);
          socket.once('error', () => socket.destroy());
          socket.resume();
        })
    );

  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.pause(); // hold its bytes until its turn
    turn = turn.then(async () => {
      if (socket.destroyed) return;
      await session(socket);
      await db.query('ROLLBACK').catch(() => undefined);
    });
  });
  await new Promise<void>((resolve) => server.listen(port, host, resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await turn.catch(() => undefined);
    },
  };
}
