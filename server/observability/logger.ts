/**
 * The service's logger: pino, writing JSON lines to stdout in batches. pino's default
 * destination writes every line with its own system call, which is one per request; here
 * lines are gathered and written together (synchronously, in order) once a few KB are
 * waiting or every FLUSH_MS, and whatever is left is written when the process exits (also
 * on process.exit and on a crash), so the shutdown lines are never lost. A SIGKILL loses at
 * most the lines of the last FLUSH_MS.
 */
import pino from 'pino';

/** Lines are written once this many bytes wait, */
export const BATCH_BYTES = 4096;
/** or at the latest this long after the previous write. */
export const FLUSH_MS = 250;

export interface LoggerOptions {
  level: string;
  /** File descriptor written to (stdout by default). */
  fd?: number;
}

/** Every batching destination made here, for flushLogs (and flushed at exit, however the process exits). */
const destinations = new Set<ReturnType<typeof pino.destination>>();
process.on('exit', () => flushLogs());

/**
 * Writes the log lines waiting in a batch now: before a progress line on stderr, so the
 * terminal shows them in the order they happened (migration lines came after the next phase's bar).
 */
export function flushLogs(): void {
  for (const destination of destinations) {
    try {
      destination.flushSync();
    } catch {
      // Not open yet, or stdout closed: nobody left to read it.
    }
  }
}

export function createLogger(o: LoggerOptions): pino.Logger {
  const destination = pino.destination({
    dest: o.fd ?? 1,
    sync: true,
    minLength: BATCH_BYTES,
    periodicFlush: FLUSH_MS,
  });
  destinations.add(destination);
  const logger = pino(
    {
      level: o.level,
      redact: ['*.authorization', '*.API_TOKEN', '*.password'],
      // The service logs `err: { message }` (no stack for an expected failure); pino's serializer
      // made that `{"type":"Object","message":…,"stack":""}`. Errors themselves are serialized as usual.
      serializers: { err: (e: unknown) => (e instanceof Error ? pino.stdSerializers.err(e) : e) },
    },
    destination
  );
  requestWriters.set(
    logger,
    requestLineWriter(destination, (logger as unknown as Record<symbol, string>)[pino.symbols.chindingsSym])
  );
  return logger;
}

/** What a request line says: flat values only. */
export interface RequestLine {
  reqId: string;
  method: string;
  path: string;
  status: number;
  durationMs: number;
  cache?: string;
  tier?: string;
}

const requestWriters = new WeakMap<pino.Logger, (line: RequestLine) => void>();

/**
 * A request line as pino writes one at info level (the same keys in the same order, an unset
 * value left out), formatted here and handed to the batching destination. It is written for
 * every request, cached hits included: through pino's log call it cost about 10 µs of CPU per
 * request in the service (a quarter of a cached answer), as a template about 1. The fields are
 * flat values no redaction path can match (`*.authorization` is a key one level down).
 */
function requestLineWriter(destination: { write(line: string): unknown }, bindings: string) {
  const str = JSON.stringify;
  return (l: RequestLine) => {
    destination.write(
      `{"level":30,"time":${Date.now()}${bindings},"reqId":${str(l.reqId)},"method":${str(l.method)},"path":${str(l.path)},"status":${l.status},"durationMs":${l.durationMs}${l.cache === undefined ? '' : `,"cache":${str(l.cache)}`}${l.tier === undefined ? '' : `,"tier":${str(l.tier)}`},"msg":"request"}\n`
    );
  };
}

/**
 * Logs a request line. Callers check that the service logs info lines first; a logger not made
 * here (a test's) logs it with its own info call.
 */
export function logRequest(logger: pino.Logger, line: RequestLine): void {
  const write = requestWriters.get(logger);
  if (write) {
    write(line);
  } else {
    logger.info(line, 'request');
  }
}
