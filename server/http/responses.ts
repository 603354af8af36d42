/**
 * What the Express app and the query fast path answer alike: request ids, the request
 * log line, validation errors, the query response body and the errors a query can end in.
 * Kept here once so the two paths cannot drift apart.
 */
import { isUtf8 } from 'node:buffer';
import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { ZodError, core } from 'zod/v4';

type ZodIssue = core.$ZodIssue;
import type { ErrorResponse } from '../contract';
import { Busy } from '../db/admission';
import { isDataException, isLockTimeout, isStatementTimeout } from '../db/pools';
import { databaseRefusal } from '../query/service';
import type { AppDeps } from './app';
import { logRequest } from '../observability/logger';

/** The client's X-Request-Id when it is a plain token, a fresh one otherwise. */
export function requestIdFrom(header: string | string[] | undefined): string {
  return typeof header === 'string' && /^[\w-]{1,64}$/.test(header) ? header : randomUUID();
}

/** A request line keeps this much of the path. */
export const LOGGED_PATH_CHARS = 200;

/** Counts the request and logs its line: id, duration, cache status and tier, never headers (tokens). */
export function recordRequest(
  deps: Pick<AppDeps, 'metrics' | 'logger'>,
  r: {
    route: string;
    reqId: string;
    method: string;
    path: string;
    status: number;
    started: number;
    cache?: string;
    tier?: string;
    log?: boolean;
  }
) {
  deps.metrics.hot.httpRequest(r.route, r.status).inc();
  if (r.log === false || !deps.logger.isLevelEnabled('info')) {
    return;
  }
  logRequest(deps.logger, {
    reqId: r.reqId,
    method: r.method,
    // Cut: a client with no token could otherwise write 15 KB of log per request it sends.
    path:
      r.path.length > LOGGED_PATH_CHARS ? `${r.path.slice(0, LOGGED_PATH_CHARS)}… (${r.path.length} chars)` : r.path,
    status: r.status,
    durationMs: Math.round((performance.now() - r.started) * 100) / 100,
    cache: r.cache,
    tier: r.tier,
  });
}

const TYPE_NOUNS: Record<string, string> = {
  array: 'a list',
  object: 'an object',
  number: 'a number',
  string: 'a string',
  boolean: 'true or false',
  null: 'null',
};
const noun = (type: string) => TYPE_NOUNS[type] ?? type;

/** zod's message in the words of the service's other errors: "Invalid input: expected array, received undefined" is "is required (a list)". */
function issueWords(message: string): string {
  const size = /^Too (?:big|small): expected \w+ to (?:be|have) ([<>]=?)(\d+)( characters| items)?$/.exec(message);
  if (size) {
    const [, op, n, unit] = size;
    const words: Record<string, string> = { '<': 'less than', '<=': 'at most', '>': 'more than', '>=': 'at least' };
    if (unit) {
      return op === '>=' && n === '1' ? 'must not be empty' : `must have ${words[op]} ${n}${unit}`;
    }
    return Number(n) >= Number.MAX_SAFE_INTEGER - 1
      ? `must be at most ${Number.MAX_SAFE_INTEGER} (a safe integer)`
      : `must be ${words[op]} ${n}`;
  }
  const wrong = /^Invalid input: expected (\w+), received (\w+)$/.exec(message);
  if (!wrong) {
    return message;
  }
  const [, expected, received] = wrong;
  if (expected === 'int') {
    return received === 'number' ? 'must be a whole number' : `must be a whole number, not ${noun(received)}`;
  }
  if (expected === 'number' && received === 'number') {
    // Infinity (1e999 in JSON): zod says "expected number, received number".
    return 'must be a finite number (1e999 and the like read as Infinity)';
  }
  return received === 'undefined'
    ? `is required (${noun(expected)})`
    : `must be ${noun(expected)}, not ${noun(received)}`;
}

/**
 * Issues as `{path, message}`. A union that failed is reported through the branch that
 * matched the input's shape (a filter sent as a list is checked as a list), so the message
 * names the real problem instead of zod's bare "Invalid input".
 */
function flatten(
  issues: readonly ZodIssue[],
  prefix: PropertyKey[] = []
): Array<{ path: PropertyKey[]; message: string; code: string }> {
  return issues.flatMap((i) => {
    const path = [...prefix, ...i.path];
    if (i.code !== 'invalid_union' || !('errors' in i) || i.errors.length === 0) {
      return [
        {
          path: i.code === 'unrecognized_keys' && i.keys.length === 1 ? [...path, i.keys[0]] : path,
          message: issueWords(i.message),
          code: i.code,
        },
      ];
    }
    // Branch ranks: 0 = the input has the wrong type for it; 2 = only parts of the input are wrong.
    // On a tie the later branch wins: in `value | list` unions that is the list, which an array input meant.
    const rank = (branch: readonly ZodIssue[]) =>
      branch.some((b) => b.code === 'invalid_type' && b.path.length === 0)
        ? 0
        : branch.every((b) => b.path.length > 0)
          ? 2
          : 1;
    const best = i.errors.reduce((a, b) => (rank(b) >= rank(a) ? b : a));
    if (rank(best) > 0) {
      return flatten(best, path);
    }
    const expected = [
      ...new Set(
        i.errors
          .flat()
          .map((b) => (b.code === 'invalid_type' ? b.expected : null))
          .filter(Boolean)
      ),
    ];
    const kinds = expected.map((e) => (e === 'array' ? 'a list' : e === 'object' ? 'a JSON object' : `a ${e}`));
    // Missing altogether: "is required", as for a member of one type ("must be a number or a
    // string" read as if a value of another type had been sent).
    const missing = i.errors
      .flat()
      .some((b) => b.code === 'invalid_type' && b.path.length === 0 && /received undefined$/.test(b.message));
    return [
      {
        path,
        message: expected.length
          ? missing
            ? `is required (${kinds.join(' or ')})`
            : `must be ${kinds.join(' or ')}`
          : i.message,
        code: expected.length ? 'invalid_type' : i.code,
      },
    ];
  });
}

/** A path segment as an error names it: a client's key cut to 64 characters (a 1 MB key made a 2 MB error). */
const segment = (key: PropertyKey) => {
  const text = String(key);
  return text.length > 64 ? `${text.slice(0, 64)}…` : text;
};

export function zodDetails(err: ZodError): NonNullable<ErrorResponse['details']> {
  // Two of zod's issues can read the same once in these words (an integer past both safe bounds): said once.
  const said = new Map<string, { path: string; message: string }>();
  const issues = flatten(err.issues);
  // A value of the wrong type is said once: zod also checks its size ("metrics": "executionCount"
  // got "must have at most 12 characters" after "must be a list, not a string").
  const wrongType = new Set(issues.filter((i) => i.code === 'invalid_type').map((i) => i.path.join('\u0000')));
  for (const i of issues) {
    if ((i.code === 'too_big' || i.code === 'too_small') && wrongType.has(i.path.join('\u0000'))) {
      continue;
    }
    const detail = { path: i.path.map(segment).join('.') || '(body)', message: i.message };
    said.set(`${detail.path}\u0000${detail.message}`, detail);
  }
  return [...said.values()].slice(0, 20);
}

/**
 * A 400 body naming the first invalid field (and up to 20); an unknown field first, as it
 * explains the others (`range: {start, end}` lacks from and to because they are misnamed).
 */
export function invalidRequest(err: ZodError): ErrorResponse {
  const details = zodDetails(err);
  const first = details.find((d) => d.message.startsWith('unknown field')) ?? details[0];
  return { error: `invalid request: ${first.path}: ${first.message}`, details };
}

/**
 * A JSON body in UTF-8, not compressed: anything else is a 415 that says which header is
 * wrong (body-parser would inflate some encodings and decode some charsets, and refuse others
 * with a message about JSON).
 */
export function unsupportedMedia(headers: IncomingHttpHeaders): string | null {
  // What every client of the query API sends, checked first.
  if (headers['content-type'] === 'application/json' && headers['content-encoding'] === undefined) {
    return null;
  }
  const encoding = (headers['content-encoding'] ?? '').trim().toLowerCase();
  if (encoding && encoding !== 'identity') {
    return `unsupported Content-Encoding "${encoding.slice(0, 40)}": send the body uncompressed (no Content-Encoding)`;
  }
  const [type, ...params] = (headers['content-type'] ?? '').split(';');
  if (type.trim().toLowerCase() !== 'application/json') {
    return 'send the body as application/json (the header Content-Type: application/json)';
  }
  const charset = params.map((p) => p.trim().toLowerCase()).find((p) => p.startsWith('charset='));
  if (charset && !/^charset="?utf-8"?$/.test(charset)) {
    return `unsupported ${charset.replace('=', ' ').slice(0, 40)}: send the body as UTF-8 (Content-Type: application/json; charset=utf-8)`;
  }
  return null;
}

export const NOT_JSON: ErrorResponse = {
  error: 'request body is not valid JSON',
  details: [{ path: '(body)', message: 'must be a JSON object' }],
};

/** Valid JSON, but not an object (null, a string, a number): said as such, not as invalid JSON. */
export const NOT_OBJECT: ErrorResponse = { ...NOT_JSON, error: 'request body is not a JSON object' };

/** The error for a body that did not parse as a JSON object or array: where it stopped parsing, when it did not. */
export function notJsonObject(text: string): ErrorResponse {
  try {
    JSON.parse(text);
    return NOT_OBJECT;
  } catch (err) {
    // V8 says where ("… at position 6") or quotes the start of the text; cut, as the body may be long.
    const why = (err as Error).message.replace(/\s+/g, ' ').slice(0, 160);
    return { ...NOT_JSON, details: [{ path: '(body)', message: `does not parse: ${why}` }] };
  }
}

/**
 * A body whose bytes are not UTF-8 (Latin-1 text, say), refused as a whole with where, before it
 * is decoded: decoding would turn those bytes into U+FFFD, a value that then matches nothing,
 * while a U+FFFD the client actually sent is a character like any other.
 */
export function notUtf8(bytes: Buffer): ErrorResponse | null {
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) {
    // Invisible in any message about the JSON after it ("Unexpected token").
    return {
      error: 'request body starts with a byte order mark (EF BB BF): send the JSON without it',
      details: [{ path: '(body)', message: 'must not start with a byte order mark' }],
    };
  }
  if (isUtf8(bytes)) {
    return null;
  }
  const text = bytes.toString('utf8');
  // The first replacement not sent as EF BF BD: every one before it was, so the byte offset,
  // counted on from the one before (not from the start: 100,000 sent ones took 4 s), is exact.
  let offset = 0;
  let counted = 0;
  for (let i = text.indexOf('\ufffd'); i !== -1; i = text.indexOf('\ufffd', i + 1)) {
    offset += Buffer.byteLength(text.slice(counted, i));
    counted = i;
    if (!(bytes[offset] === 0xef && bytes[offset + 1] === 0xbf && bytes[offset + 2] === 0xbd)) {
      break;
    }
  }
  const before = bytes.subarray(Math.max(0, offset - 40), offset).toString('utf8');
  return {
    error: `request body is not valid UTF-8: byte ${offset} (0x${bytes[offset].toString(16)}) does not begin a whole UTF-8 character`,
    details: [
      {
        path: '(body)',
        message: `must be UTF-8 text; the bytes at ${offset} follow ${JSON.stringify(before)} (send text as UTF-8, or \\u escapes)`,
      },
    ],
  };
}

/** Headers of a query answer, as a flat list of names and values: when every query was refused for a transient reason (busy, unavailable), when to retry. */
export function queryHeaderList(answer: { retryAfter?: number }): string[] {
  return answer.retryAfter ? ['Retry-After', String(answer.retryAfter)] : [];
}

/** The status and body for an error a query (or any route) ended in; a 500 is logged. */
export function errorResponse(
  deps: Pick<AppDeps, 'logger'>,
  err: Error,
  reqId: string
): { status: number; body: ErrorResponse & { requestId?: string }; retryAfter?: number } {
  if (isDataException(err)) {
    // PostgreSQL rejected a value (data exception): the client's input, not our fault.
    return {
      status: 400,
      body: { error: 'a value in the request cannot be used', details: [{ path: '(body)', message: err.message }] },
    };
  }
  if (err instanceof Busy) {
    // The read pool's queue (a variable list waits its turn with the answers).
    return { status: 503, body: { error: err.message }, retryAfter: err.retryAfterSeconds };
  }
  const refused = databaseRefusal(err);
  if (refused) {
    return { status: 503, body: { error: refused.error }, retryAfter: refused.retryAfter };
  }
  if (isLockTimeout(err)) {
    return {
      status: 503,
      body: { error: `the database kept this waiting for a lock held by other work (${err.message}); retry in 5 s` },
      retryAfter: 5,
    };
  }
  if (isStatementTimeout(err)) {
    // A variable list or a statistic that took too long: the database's words, and a retry.
    return { status: 503, body: { error: `the database took too long (${err.message}); retry in 5 s` }, retryAfter: 5 };
  }
  deps.logger.error({ reqId, err: { message: err.message, code: (err as { code?: string }).code } }, 'request failed');
  return { status: 500, body: { error: 'internal error', requestId: reqId } };
}
