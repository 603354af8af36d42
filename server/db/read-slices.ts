/**
 * Database replies read one chunk per event-loop turn. On a readable socket libuv reads up
 * to 32 chunks of 64 KB in one go, and the driver parses each as it comes: a large result (a
 * few MB of rows) was parsed in one stretch of 30-40 ms, and several finishing together held
 * the loop for 100 ms and more, in front of health checks and cached answers (a burst of
 * the largest answers the budget accepts, measured with async_hooks). Pausing the socket
 * after each chunk and resuming it on the next turn lets what else arrived in between; a
 * reply of one chunk (most) is read exactly as before.
 */
import type { Socket } from 'node:net';
import type { Pool } from 'pg';

/** The socket of a connected pg client (`client.connection.stream`, pg 8). */
function socketOf(client: unknown): Socket | null {
  const stream = (client as { connection?: { stream?: Socket } }).connection?.stream;
  return stream && typeof stream.pause === 'function' ? stream : null;
}

/** Every connection the pool opens reads a chunk per turn. Only for pools of plain queries: a COPY stream's own pausing would be undone. */
export function readAChunkPerTurn(pool: Pool): void {
  pool.on('connect', (client) => {
    const socket = socketOf(client);
    if (!socket) {
      return;
    }
    let resuming = false;
    const resume = () => {
      resuming = false;
      socket.resume();
    };
    socket.on('data', () => {
      if (!resuming) {
        resuming = true;
        socket.pause();
        setImmediate(resume);
      }
    });
  });
}
