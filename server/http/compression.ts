/**
 * gzip for query answers, when the client accepts it. Browsers always do, and Grafana's data
 * proxy passes the browser's Accept-Encoding to the service and the encoded answer back
 * unchanged, so the bytes a panel transfers are these. A cached answer's body is one Buffer
 * reused for every hit (render.ts), so it is compressed once and the result kept beside it;
 * a timeseries answer (hundreds of points) shrinks to about a fifth.
 */
import { gzip, gzipSync, constants } from 'node:zlib';
import { promisify } from 'node:util';

const gzipAsync = promisify(gzip);

/** Below this a body is sent as it is: gzip's header and the CPU would buy nothing. */
const MIN_BYTES = 1024;

/** Whether an Accept-Encoding header accepts gzip (named or `*`, with a q above 0). */
export function acceptsGzip(header: string | undefined): boolean {
  if (!header) {
    return false;
  }
  let gzip: number | null = null;
  let any: number | null = null;
  for (const part of header.split(',')) {
    const [name, ...params] = part.trim().toLowerCase().split(';');
    const qParam = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    const q = qParam ? Number(qParam.slice(2)) : 1;
    const weight = Number.isFinite(q) ? q : 0;
    if (name.trim() === 'gzip' || name.trim() === 'x-gzip') {
      gzip = weight;
    } else if (name.trim() === '*') {
      any = weight;
    }
  }
  return (gzip ?? any ?? 0) > 0;
}

/**
 * From this size a body is compressed on libuv's thread pool instead (forClientLater): gzip
 * of a 4 MB answer (a 90-day grouped timeseries near the budget) held the event loop 50 ms,
 * in front of every cached answer and /healthz.
 */
const ASYNC_BYTES = 64 * 1024;

const compressedBodies = new WeakMap<Buffer, Buffer | null>();
const inFlight = new WeakMap<Buffer, Promise<void>>();

/** Keeps a body's compressed form beside it, or null when gzip did not make it smaller. */
function keepCompressed(body: Buffer, z: Buffer): Buffer | null {
  const out = z.length < body.length ? z : null;
  compressedBodies.set(body, out);
  return out;
}

/** An answer as it goes to one client: the bytes, and the headers that say how (a flat name, value list). */
export interface ClientBody {
  body: Buffer;
  headers: readonly string[];
}

/** The body gzipped, or null when that would not be smaller; kept per Buffer (a cached answer's is reused). */
export function gzipped(body: Buffer): Buffer | null {
  if (body.length < MIN_BYTES) {
    return null;
  }
  const out = compressedBodies.get(body);
  return out === undefined ? keepCompressed(body, gzipSync(body, { level: constants.Z_DEFAULT_COMPRESSION })) : out;
}

const PLAIN_HEADERS: readonly string[] = ['Vary', 'Accept-Encoding'];
const GZIP_HEADERS: readonly string[] = ['Vary', 'Accept-Encoding', 'Content-Encoding', 'gzip'];

/**
 * A query answer as it goes to this client: gzipped when it accepts that and the answer is a
 * 200 worth compressing, with the headers that say so (as a flat name, value list).
 */
export function forClient(status: number, body: Buffer, gzipAccepted: boolean): ClientBody {
  const packed = gzipAccepted && status === 200 ? gzipped(body) : null;
  return packed ? { body: packed, headers: GZIP_HEADERS } : { body, headers: PLAIN_HEADERS };
}

/**
 * forClient, or null when the body is large and not compressed yet: then forClientLater
 * compresses it off the event loop. Small bodies and cached answers' bodies (compressed once)
 * stay on the synchronous path every cache hit takes.
 */
export function forClientNow(status: number, body: Buffer, gzipAccepted: boolean): ClientBody | null {
  if (gzipAccepted && status === 200 && body.length >= ASYNC_BYTES && !compressedBodies.has(body)) {
    return null;
  }
  return forClient(status, body, gzipAccepted);
}

/** forClient after compressing the body on the thread pool (kept for its next hit, as gzipped keeps it). */
export async function forClientLater(status: number, body: Buffer, gzipAccepted: boolean): Promise<ClientBody> {
  if (gzipAccepted && status === 200 && !compressedBodies.has(body)) {
    // One compression per body however many requests wait for it (a burst sharing one answer).
    let compressing = inFlight.get(body);
    if (!compressing) {
      compressing = gzipAsync(body, { level: constants.Z_DEFAULT_COMPRESSION })
        .then((z) => void keepCompressed(body, z))
        .finally(() => inFlight.delete(body));
      inFlight.set(body, compressing);
    }
    await compressing;
  }
  return forClient(status, body, gzipAccepted);
}
