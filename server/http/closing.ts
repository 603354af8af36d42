/**
 * Connections about to close: answered busy, or refused before their body is read. Kept alive,
 * Node reads the rest of a refused body first to find the next request (a chunked body that
 * never ended was read, unauthenticated, at about 1 GB/s until the request timeout, 30 s), and
 * libuv reads up to 32 chunks of 64 KB a turn from a connection that keeps sending.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
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

/**
 * An answer begun while the request's body is still arriving and nobody reads it (a 404, a 405,
 * a GET, `POST /healthz`) is the connection's last, and nothing more is read (closeAfterAnswer): kept
 * alive, Node read the rest to find the next request (unauthenticated, a chunked body that never
 * ended was read at about 1 GB/s until the request timeout, and held a stop). Decided when the
 * answer's head is written, by whether anything reads the body, not by the path: a list of the
 * paths that read one missed some Express routes there (`/api//v1/query`), whose body was then
 * never read.
 */
export function closeIfBodyUnread(req: IncomingMessage, res: ServerResponse): void {
  const writeHead = res.writeHead;
  res.writeHead = function (this: ServerResponse, ...args: Parameters<ServerResponse['writeHead']>) {
    if (!req.complete && req.readableFlowing !== true && !this.headersSent) {
      closeAfterAnswer(this);
    }
    return writeHead.apply(this, args);
  } as ServerResponse['writeHead'];
}

/** Whether the request comes with a body (chunked, or a length above 0). */
export function sendsBody(req: IncomingMessage): boolean {
  return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length']) > 0;
}
