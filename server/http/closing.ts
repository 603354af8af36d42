/**
 * Connections about to close: answered busy, or refused before their body is read. Kept alive,
 * Node reads the rest of a refused body first to find the next request (a chunked body that
 * never ended was read, unauthenticated, at about 1 GB/s until the request timeout, 30 s);
 * closed at once, the client can lose the answer to a reset. So they close as a lingering
 * close does, within bounds.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { constants as osConstants } from 'node:os';

/** After a connection's last answer, its client has this long to read it before the connection is closed… */
export const LINGER_MS = 1000;
/** … while what it still sends is read and dropped up to this much (counted from when the answer was decided), then no longer read. */
export const LINGER_BYTES = 1024 ** 2;
const LINGERING = Symbol('lingering');
const UV_EALREADY = osConstants.errno.EALREADY * -1; // libuv's errors are negated errno values

/**
 * The answer about to be written is the connection's last; until it is written, the request's
 * body is not read past what its buffer holds (Node stops reading a request nobody reads).
 * Closed at once after its answer, a connection whose client is still sending (a body nobody
 * reads, a refused one) has unread bytes, which the kernel answers with a reset that can reach
 * the client before it has read the answer: 2 to 10 of 40 clients sending 900 KB to `GET /nope`
 * at once got EPIPE and no 404. So it closes as a lingering close does: the answer and a FIN,
 * then whatever still comes is read and dropped until the client closes its side (it has read
 * the answer), for at most LINGER_MS; past LINGER_BYTES it is no longer read (the client's
 * writes wait, it can still read the answer), past LINGER_MS it is closed. Closed at the byte
 * cap instead, clients sending 5 MB lost the answer to the reset: 17 to 31 of 40. Kept alive
 * instead, Node read the rest of such a body to find the next request (unauthenticated, a chunked
 * body that never ended was read at about 1 GB/s until the request timeout, 30 s).
 */
export function closeAfterAnswer(res: ServerResponse): void {
  res.setHeader('Connection', 'close');
  lingerAfterLastAnswer(res.req);
}

function lingerAfterLastAnswer(req: IncomingMessage): void {
  const socket = req.socket as Socket & { [LINGERING]?: true };
  if (socket[LINGERING]) {
    return;
  }
  socket[LINGERING] = true;
  const firstByte = socket.bytesRead;
  // Node ends a connection after its last answer with destroySoon: a FIN, then closed at once.
  socket.destroySoon = function (this: Socket) {
    if (this.writable) {
      this.end();
    }
    if (this.destroyed) {
      return;
    }
    // What still comes is counted and dropped, never parsed: with Node's parser still reading,
    // requests pipelined behind the body ran (queries on the database, answers thrown away).
    // Node's own listener goes, and adding one takes the socket from the parser. The connection
    // is closed when the client closes its side (net does, both sides ended) or at LINGER_MS;
    // past LINGER_BYTES, no longer read, its close is not seen either: it is held till LINGER_MS.
    this.removeAllListeners('data');
    let received = this.bytesRead - firstByte;
    this.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received > LINGER_BYTES) {
        this.pause(); // what the kernel's buffers hold then is all it is sent
      }
    });
    const deadline = setTimeout(() => this.destroy(), LINGER_MS);
    deadline.unref();
    this.once('close', () => clearTimeout(deadline));
    if (received <= LINGER_BYTES) {
      this.resume();
      resumeReading(this);
    }
  };
}

/**
 * Starts the socket's handle reading (the HTTP parser may have stopped it, and net does not know),
 * and says so in the flag net keeps: left false, net's next read started it again, got EALREADY
 * and destroyed the socket, a reset within milliseconds that lost the answer (1 to 3 of 10
 * clients sending 5 MB).
 */
function resumeReading(socket: Socket): void {
  const handle = (socket as Socket & { _handle?: { reading?: boolean; readStart?: () => number } })._handle;
  if (handle?.readStart) {
    const error = handle.readStart(); // EALREADY when it was reading: as wanted
    if (error === 0 || error === UV_EALREADY) {
      handle.reading = true;
    } else {
      socket.destroy();
    }
  }
}

/**
 * An answer begun while the request's body is still arriving and nobody reads it (a 404, a 405,
 * a GET, `POST /healthz`) is the connection's last, closing as closeAfterAnswer says: kept
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
