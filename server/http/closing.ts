/**
 * Connections about to close: answered busy, or refused before their body is read. Kept alive,
 * Node reads the rest of a refused body first to find the next request (a chunked body that
 * never ended was read, unauthenticated, at about 1 GB/s until the request timeout, 30 s), and
 * libuv reads up to 32 chunks of 64 KB a turn from a connection that keeps sending.
 */
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/**
 * Reads nothing more from the connection: what its last read brought is still parsed and each
 * request in it dispatched, but not the reads after it. Node's http server offers no way to stop
 * reading a connection, so this stops its handle.
 */
export function stopReading(socket: Socket): void {
  (socket as Socket & { _handle?: { readStop?: () => void } })._handle?.readStop?.();
}

/** The answer about to be written is the connection's last, and nothing more is read from it. */
export function closeAfterAnswer(res: ServerResponse): void {
  res.setHeader('Connection', 'close');
  stopReading(res.req.socket);
}
