/**
 * Serves a PGlite instance over the PostgreSQL wire protocol on a loopback port, so the
 * service, the CLIs and the tests use the ordinary `pg` driver against it.
 *
 * Written here rather than taken from pglite-socket 0.0.19, which hands each TCP chunk
 * to PGlite as it arrives: a message larger than one chunk (a batch INSERT, a long query)
 * is split mid-message and crashes the WASM instance. This server frames the stream into
 * whole protocol messages and feeds them in order.
 *
 * PGlite has one session. Many connections share it the way a transaction-pooling proxy
 * shares a server connection: a connection holds the session only while a statement or a
 * transaction is under way (until PGlite's ReadyForQuery says "idle"); in between, the
 * session goes to whichever waiting connection comes first by priority (the
 * application_name of its startup message decides), then by arrival. So a dashboard query
 * waits for at most the one statement in progress, never for a whole refresh or load,
 * and a new connection is accepted at once (the handshake is answered here). PGlite may
 * run on another thread (embedded.ts): this server keeps reading sockets meanwhile, so
 * arrival order and waiting times are exact.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import net from 'node:net';
import { copiesFromClient, statementText } from './copy-in';

/** Runs protocol messages in order on the one session; resolves with their replies, concatenated. */
export interface ProtocolDb {
  exec(messages: Uint8Array[]): Promise<Uint8Array>;
}

const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;
const CANCEL_REQUEST = 80877102;

/** The largest startup message taken (PostgreSQL's own limit is 10,000 bytes). */
const STARTUP_MAX_BYTES = 10_000;
/** The largest message taken (a batch INSERT the demo loader sends is a few MB; PostgreSQL allows 1 GB). */
export const MESSAGE_MAX_BYTES = 64 * 1024 * 1024;

/**
 * Connections held at most by default: more than the service's pools open (DB_POOL_MAX is at
 * most 200) plus a few psql, and a bound on the file descriptors the port can take from the
 * process (two clients holding 9,900 each left none for HTTP).
 */
export const WIRE_MAX_CONNECTIONS = 256;
/** How long a new connection has to send its startup message. */
const STARTUP_TIMEOUT_MS = 10_000;
/**
 * Connections held at most before their password is right: past it the oldest of them is
 * closed. Without it, anyone on the machine could hold every connection slot with sockets that
 * never authenticate (each for STARTUP_TIMEOUT_MS, again and again), and the service's pools
 * could open no new connection. Enough that a burst of new connections, the service's among them,
 * is not cut short during its handshake.
 */
export const WIRE_MAX_STRANGERS = 32;

/** A stream that is not the PostgreSQL protocol (a length out of bounds): its connection is closed. */
export class BadFrame extends Error {}

/**
 * The message types a client sends after its startup (PostgreSQL's frontend protocol). Any other
 * byte is refused: PGlite read a message starting with 0 as a new startup, asked for a password,
 * and left the shared session unusable until a restart.
 */
const FRONTEND_TYPES = new Set([...'QPBEDCHSXFdcfp'].map((c) => c.charCodeAt(0)));

/**
 * Splits a byte stream into complete messages; the first one (startup) has no type byte.
 * Chunks are kept as they come and joined once per message, not copied again with every chunk
 * (a 48 MB statement arriving in 64 KB chunks took 16 s of the event loop), and a length
 * outside the protocol's bounds is refused (stray bytes on the port: a zero length looped
 * forever, a short one threw out of the socket's handler and ended the process).
 */
export class MessageFramer {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private started = false;

  push(chunk: Buffer): Buffer[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const messages: Buffer[] = [];
    for (;;) {
      const header = this.started ? 5 : 4;
      if (this.buffered < header) {
        break;
      }
      const head = this.peek(header);
      if (this.started && !FRONTEND_TYPES.has(head[0])) {
        throw new BadFrame(`a message of type ${head[0]}: not the PostgreSQL protocol`);
      }
      const length = this.started ? 1 + head.readInt32BE(1) : head.readInt32BE(0);
      const [least, most] = this.started ? [5, MESSAGE_MAX_BYTES] : [8, STARTUP_MAX_BYTES];
      if (length < least || length > most) {
        throw new BadFrame(`a message length of ${length} bytes: not the PostgreSQL protocol`);
      }
      if (this.buffered < length) {
        break;
      }
      const message = this.take(length);
      // SSLRequest / GSSENCRequest precede the real startup message.
      const code = this.started ? 0 : message.readInt32BE(4);
      if (!this.started && code !== SSL_REQUEST && code !== GSSENC_REQUEST) {
        this.started = true;
      }
      messages.push(message);
    }
    return messages;
  }

  /** The first `n` buffered bytes (n ≤ 5), without taking them. */
  private peek(n: number): Buffer {
    return this.chunks[0].length >= n ? this.chunks[0] : Buffer.concat(this.chunks, n);
  }

  /**
   * The first `n` buffered bytes, taken: a copy of their own (a chunk may be a view of a larger
   * slab). Only the chunks they span are joined; the rest stays a view.
   */
  private take(n: number): Buffer {
    let spanned = 0;
    let count = 0;
    while (spanned < n) {
      spanned += this.chunks[count++].length;
    }
    const joined = count === 1 ? this.chunks[0] : Buffer.concat(this.chunks.slice(0, count), spanned);
    const message = Buffer.from(joined.subarray(0, n));
    const rest = joined.subarray(n);
    this.chunks = rest.length ? [rest, ...this.chunks.slice(count)] : this.chunks.slice(count);
    this.buffered -= n;
    return message;
  }
}

/** The parameters of a startup message (user, database, application_name, …). */
function startupParams(message: Buffer): Record<string, string> {
  const parts = message.subarray(8).toString('utf8').split('\0');
  const params: Record<string, string> = {};
  for (let i = 0; i + 1 < parts.length && parts[i]; i += 2) {
    params[parts[i]] = parts[i + 1];
  }
  return params;
}

function startupMessage(params: Record<string, string>): Buffer {
  const body = Buffer.concat([
    Buffer.from([0, 3, 0, 0]),
    ...Object.entries(params).flatMap(([k, v]) => [Buffer.from(`${k}\0`), Buffer.from(`${v}\0`)]),
    Buffer.from([0]),
  ]);
  const length = Buffer.alloc(4);
  length.writeInt32BE(body.length + 4);
  return Buffer.concat([length, body]);
}

/** ErrorResponse + ReadyForQuery(idle): what a statement refused before it ran gets. */
function refusal(code: string, message: string): Buffer {
  return Buffer.concat([errorResponse('ERROR', code, message), typed('Z', Buffer.from('I'))]);
}

/** ErrorResponse: severity, SQLSTATE and message. */
function errorResponse(severity: 'ERROR' | 'FATAL', code: string, message: string): Buffer {
  return typed(
    'E',
    Buffer.concat([Buffer.from(`S${severity}\0V${severity}\0C${code}\0M${message}\0`), Buffer.from([0])])
  );
}

function typed(type: string, body: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.write(type, 0, 'latin1');
  header.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([header, body]);
}

/** The transaction status of a reply that ends in ReadyForQuery ('I', 'T' or 'E'), else null. */
export function readyStatus(reply: Uint8Array): string | null {
  const n = reply.length;
  if (
    n < 6 ||
    reply[n - 6] !== 0x5a /* Z */ ||
    reply[n - 5] !== 0 ||
    reply[n - 4] !== 0 ||
    reply[n - 3] !== 0 ||
    reply[n - 2] !== 5
  ) {
    return null;
  }
  return String.fromCharCode(reply[n - 1]);
}

/**
 * Runs PGlite's own handshake once and returns what every connection is then told:
 * AuthenticationOk, the server's parameters, BackendKeyData and ReadyForQuery.
 */
async function handshake(db: ProtocolDb): Promise<Buffer> {
  const first = Buffer.from(await db.exec([startupMessage({ user: 'postgres', database: 'postgres' })]));
  if (first.length && first[0] === 0x52 /* R */ && first.readInt32BE(5) === 0) {
    return first;
  }
  // PGlite asks for a password (any will do) before it reports its parameters.
  return Buffer.from(await db.exec([typed('p', Buffer.from('ruleperf\0'))]));
}

const ROLLBACK = typed('Q', Buffer.from('ROLLBACK\0'));
const COPY_FROM_CLIENT =
  'COPY ... FROM STDIN is not supported by the embedded database (PGlite cannot take a copy from its client): load rows with INSERT (npm run generate -- --method insert), or use a PostgreSQL server (DATABASE_URL); any statement naming both COPY and STDIN is refused, in a string or a comment too';
/** AuthenticationCleartextPassword. */
const ASK_PASSWORD = typed('R', Buffer.from([0, 0, 0, 3]));

/** Compared in constant time, whatever the lengths (as digests). */
function sameSecret(sent: Buffer, secret: string): boolean {
  const digest = (b: Buffer | string) => createHash('sha256').update(b).digest();
  return timingSafeEqual(digest(sent), digest(secret));
}

/**
 * The SQLSTATE of a statement refused for waiting too long for the session (class 53,
 * insufficient resources): not 57014, a statement timeout, which says the statement itself ran
 * too long (and told the user to narrow a query that never ran).
 */
export const SESSION_BUSY_CODE = '53000';

export interface WireOptions {
  host?: string;
  port?: number;
  /** Lower runs first; by the startup message's parameters. Default: every connection 0. */
  priorityOf?: (params: Record<string, string>) => number;
  /** A connection waiting longer than this goes ahead as if it had priority 0, so background work is never starved. */
  agingMs?: number;
  /**
   * A statement from a connection of priority 0 that waited longer than this for the session is
   * answered with an error (SESSION_BUSY_CODE) instead of running: the queue stays bounded under
   * overload. Background connections (priority above 0) wait their turn: a refresh or the demo's
   * loading refused there only logged warnings and retried.
   */
  maxWaitMs?: number;
  /** The text of that error. */
  busyMessage?: (waitedMs: number) => string;
  /** Connections held at most (past it new ones are closed at once); default WIRE_MAX_CONNECTIONS. */
  maxConnections?: number;
  /**
   * A connection that leaves a transaction open and sends nothing for longer than this while
   * other connections wait for the session is ended and its transaction rolled back (SQLSTATE
   * 25P03, as PostgreSQL's idle_in_transaction_session_timeout): a psql left at BEGIN must not
   * hold every dashboard query. Default: off.
   */
  idleInTransactionMs?: number;
  /**
   * The password every connection must send after its startup message (cleartext, as loopback
   * needs no more); a wrong one ends the connection (28P01). Default: none asked.
   */
  password?: string;
}

interface Connection {
  socket: net.Socket;
  framer: MessageFramer;
  /** Messages not yet run, with when each arrived. */
  pending: Array<{ message: Buffer; at: number }>;
  priority: number;
  started: boolean;
  /** Its password was right (or none is asked): only then do its messages reach the session. */
  authenticated: boolean;
  gone: boolean;
  /** When its last reply was sent (how long an owner of the session has been idle). */
  idleSince: number;
}

/** The end of the unit that starts the queue: a simple Query, or extended-protocol messages through their Sync. */
const unitEnd = (c: Connection) =>
  c.pending.findIndex((p) => p.message[0] === 0x51 /* Q */ || p.message[0] === 0x53 /* S */);

export interface WireServer {
  port: number;
  close(): Promise<void>;
}

export async function serveWire(db: ProtocolDb, options: WireOptions = {}): Promise<WireServer> {
  const greeting = await handshake(db);
  const password = options.password;
  const connections = new Set<Connection>();
  /** Connections whose password has not been checked yet, oldest first (WIRE_MAX_STRANGERS). */
  const strangers = new Set<Connection>();
  /** The connection in the middle of a statement or transaction: the session is its alone. */
  let owner: Connection | null = null;
  /** The connection whose messages PGlite is running now: its replies come first, in order. */
  let running: Connection | null = null;
  let pumping = false;
  let closed = false;
  const agingMs = options.agingMs ?? 2000;

  const next = (): Connection | null => {
    if (owner) {
      return owner.pending.length ? owner : null;
    }
    const now = Date.now();
    let best: Connection | null = null;
    let bestRank = Infinity;
    for (const c of connections) {
      if (!c.pending.length || c.gone) {
        continue;
      }
      const since = c.pending[0].at;
      const rank = (now - since >= agingMs ? 0 : c.priority) * 1e13 + since;
      if (rank < bestRank) {
        best = c;
        bestRank = rank;
      }
    }
    return best;
  };

  /** Refuses the unit at the head of a connection's queue if it waited too long. */
  const expire = (c: Connection, now: number) => {
    if (
      c === owner ||
      c === running ||
      c.priority > 0 ||
      !c.pending.length ||
      !options.maxWaitMs ||
      now - c.pending[0].at <= options.maxWaitMs
    ) {
      return;
    }
    const end = unitEnd(c);
    if (end < 0) {
      return;
    } // its Sync has not arrived yet
    const waited = now - c.pending[0].at;
    c.pending.splice(0, end + 1);
    if (!c.gone) {
      c.socket.write(
        refusal(
          SESSION_BUSY_CODE,
          options.busyMessage?.(waited) ?? `the database was busy: this statement waited ${waited} ms for its turn`
        )
      );
    }
  };

  const expireAll = () => {
    const now = Date.now();
    for (const c of connections) {
      expire(c, now);
    }
  };

  /** Ends the owner of the session if it sits idle in a transaction while others wait (see idleInTransactionMs). */
  const endIdleOwner = () => {
    const c = owner;
    const limit = options.idleInTransactionMs;
    if (!c || !limit || c === running || c.pending.length || Date.now() - c.idleSince <= limit) {
      return;
    }
    if (![...connections].some((other) => other !== c && other.pending.length)) {
      return;
    }
    const seconds = +(limit / 1000).toFixed(2);
    const fatal = errorResponse(
      'FATAL',
      '25P03',
      `terminating connection: its transaction was idle for over ${seconds} s while other statements waited for the embedded database's one shared session; it was rolled back (use a PostgreSQL server, DATABASE_URL, for long interactive transactions)`
    );
    // Nothing more of it runs: a statement it sends now would run outside the transaction rolled back.
    c.gone = true;
    c.pending.length = 0;
    c.socket.end(fatal, () => c.socket.destroy());
    void pump(); // rolls the transaction back and serves those waiting
  };

  const pump = async () => {
    if (pumping) {
      return;
    }
    pumping = true;
    try {
      while (!closed) {
        expireAll();
        if (owner?.gone) {
          // Its client went away mid-transaction: roll back before anyone else uses the session.
          owner = null;
          await db.exec([ROLLBACK]).catch(() => undefined);
        }
        const c = next();
        if (!c) {
          break;
        }
        // The rest of its unit (or all it sent so far, if its Sync is still to come) in one go.
        const end = unitEnd(c);
        const batch = c.pending.splice(0, end < 0 ? c.pending.length : end + 1).map((p) => p.message);
        let reply: Uint8Array;
        running = c;
        try {
          reply = await db.exec(batch);
        } catch {
          // PGlite failed: this connection cannot go on.
          c.gone = true;
          c.socket.destroy();
          if (owner === c) {
            owner = null;
          }
          continue;
        } finally {
          running = null;
        }
        if (reply.length && !c.gone) {
          c.socket.write(reply);
        }
        owner = readyStatus(reply) === 'I' ? null : c;
        c.idleSince = Date.now();
      }
    } finally {
      pumping = false;
    }
  };

  /**
   * A COPY from the client would end PGlite (copy-in.ts): refused before it reaches the session. A
   * simple query with nothing ahead of it, outside a transaction, gets an error and the
   * connection goes on; otherwise (replies owed first, a transaction to roll back, an extended
   * query before its Sync) the connection is ended, as a wrong client's is.
   */
  const refuseCopyIn = (c: Connection, simpleQuery: boolean) => {
    if (simpleQuery && !c.pending.length && c !== owner && c !== running) {
      c.socket.write(refusal('0A000', COPY_FROM_CLIENT));
      return;
    }
    c.gone = true;
    c.pending.length = 0;
    c.socket.end(errorResponse('FATAL', '0A000', COPY_FROM_CLIENT), () => c.socket.destroy());
    void pump(); // rolls back a transaction it held and serves those waiting
  };

  /** Its password is right (or none is asked): it is told the session's parameters, and no longer a stranger. */
  const admit = (c: Connection) => {
    c.authenticated = true;
    strangers.delete(c);
    c.socket.write(greeting);
  };

  const onMessage = (c: Connection, message: Buffer) => {
    if (!c.started) {
      const code = message.readInt32BE(4);
      if (code === SSL_REQUEST || code === GSSENC_REQUEST) {
        c.socket.write('N'); // no TLS on loopback
        return;
      }
      if (code === CANCEL_REQUEST) {
        c.socket.destroy(); // nothing to cancel: a statement in PGlite runs to its end
        return;
      }
      c.started = true;
      c.priority = options.priorityOf?.(startupParams(message)) ?? 0;
      if (password) {
        c.socket.write(ASK_PASSWORD);
      } else {
        admit(c);
      }
      return;
    }
    if (c.gone) {
      return;
    }
    if (!c.authenticated) {
      // Only a PasswordMessage may come now; anything else ends the connection as a wrong one does.
      if (message[0] === 0x70 /* p */ && password && sameSecret(message.subarray(5, message.length - 1), password)) {
        admit(c);
      } else {
        c.socket.end(
          errorResponse(
            'FATAL',
            '28P01',
            'password authentication failed: use the URL with its password that the service wrote beside its data folder (pglite.url)'
          )
        );
        c.gone = true;
      }
      return;
    }
    if (message[0] === 0x58 /* X: Terminate */) {
      c.socket.end();
      return;
    }
    const text = statementText(message);
    if (text !== null && copiesFromClient(text)) {
      refuseCopyIn(c, message[0] === 0x51 /* Q */);
      return;
    }
    c.pending.push({ message, at: Date.now() });
    // On the next turn of the loop, so that every socket readable now has been read first.
    if (!pumping) {
      setImmediate(() => void pump());
    }
  };

  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    const c: Connection = {
      socket,
      framer: new MessageFramer(),
      pending: [],
      priority: 0,
      started: false,
      authenticated: false,
      gone: false,
      idleSince: 0,
    };
    connections.add(c);
    strangers.add(c);
    if (strangers.size > WIRE_MAX_STRANGERS) {
      const oldest = strangers.values().next().value!;
      strangers.delete(oldest); // at once: its close event comes later, after more may arrive
      oldest.socket.destroy();
    }
    // A connection that has not sent its startup message (and password) in time is closed (a port scanner, a stray client).
    const startup = setTimeout(() => {
      if (!c.authenticated) {
        socket.destroy();
      }
    }, STARTUP_TIMEOUT_MS);
    startup.unref();
    socket.on('data', (chunk) => {
      try {
        for (const message of c.framer.push(chunk)) {
          onMessage(c, message);
        }
      } catch {
        // Not the PostgreSQL protocol (BadFrame): this connection ends, nobody else notices.
        socket.destroy();
      }
    });
    socket.once('close', () => {
      clearTimeout(startup);
      c.gone = true;
      connections.delete(c);
      strangers.delete(c);
      c.pending.length = 0;
      if (owner === c) {
        void pump();
      }
    });
    socket.once('error', () => socket.destroy());
  });
  // Waits are also checked while a statement runs: a refresh of several seconds must not keep a
  // query waiting past the limit before it hears it was refused.
  const sweep =
    options.maxWaitMs || options.idleInTransactionMs
      ? setInterval(
          () => {
            expireAll();
            endIdleOwner();
          },
          Math.min(250, options.maxWaitMs ?? Infinity, options.idleInTransactionMs ?? Infinity)
        )
      : null;
  sweep?.unref();
  server.maxConnections = options.maxConnections ?? WIRE_MAX_CONNECTIONS;
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, options.host ?? '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    async close() {
      closed = true;
      if (sweep) {
        clearInterval(sweep);
      }
      for (const c of connections) {
        c.socket.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
      while (pumping) {
        await new Promise((r) => setTimeout(r, 10));
      }
      if (owner) {
        owner = null;
        await db.exec([ROLLBACK]).catch(() => undefined);
      }
    },
  };
}
