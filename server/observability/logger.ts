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
  requestLoggers.set(logger, pino({ level: 'info' }, destination));
  return logger;
}

const requestLoggers = new WeakMap<pino.Logger, pino.Logger>();

/**
 * Where request lines go: the same destination, without the redaction. A request line's
 * fields are flat values, which no redaction path (`*.authorization`: a key one level down)
 * can match, and trying costs about as much as writing the line. Callers check that the
 * service logs info lines first; a logger not made here is used as it is.
 */
export function requestLogger(logger: pino.Logger): pino.Logger {
  return requestLoggers.get(logger) ?? logger;
}
