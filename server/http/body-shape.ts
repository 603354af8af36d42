/**
 * The shape of a JSON body checked before the costly steps, so that a hostile one is refused
 * in milliseconds: nesting before parsing (JSON.parse of 1 MB of `[[[…` took 190 ms), and the
 * length of every array before validation (zod checks each item of a filter list before its
 * length: 250,000 of them took 1.3 s and 270 MB, ten such bodies at once froze the service for
 * 15 s). The contract's limits still apply after; these only bound what reaching them costs.
 */
import { z } from 'zod/v4';
import {
  DEFAULTS,
  GRAFANA_QUERY_FIELDS,
  LIMITS,
  QUERY_FIELDS,
  type ErrorResponse,
  type InvalidateRequest,
  type QueryRequest,
} from '../contract';
import { invalidRequest, notJsonObject, zodDetails } from './responses';
import { loopTurns } from '../query/turns';
import type { RefusedQuery } from '../query/service';
import { invalidateSchema, invalidateTarget, invalidateTargets, queryRequestSchema } from './validation';

/** Levels of nesting a body may have: a query request needs four (body, queries, query, filter list). */
export const MAX_NESTING = 8;

/** Items any array may have: the longest the contract accepts (a filter's values). */
export const MAX_ARRAY_ITEMS = Math.max(LIMITS.maxFilterValues, LIMITS.maxQueries);

const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;
const COMMA = 0x2c;

/**
 * Object members a body may hold in all: a request of 50 queries (the most it may send) with
 * every field of each, Grafana's too, has about 1,200. JSON.parse's cost grows with members: one
 * object of 90,000 keys (1 MB) took 55-125 ms to parse and 125-240 ms to validate, 10,000 small
 * objects of 10 keys each 93-184 ms to parse.
 */
export const MAX_BODY_MEMBERS = 2000;

/**
 * Values a body's lists may hold in all. Each filter takes 500 and a request 50 queries, but 50
 * queries of five full filters (125,000 values, 875 KB) took 120 ms of the event loop to check
 * and parse and 56 ms to validate, and held 13 MB each: 60 such requests at once stopped every
 * answer, /healthz too, for 9 s. A panel sends one list a variable, repeated by its few queries.
 */
export const MAX_LIST_VALUES = LIMITS.maxListItems;

export const TOO_DEEP: ErrorResponse = {
  error: `invalid request: the body nests deeper than ${MAX_NESTING} levels (a query request has four)`,
  details: [{ path: '(body)', message: `nests deeper than ${MAX_NESTING} levels` }],
};

const TOO_MANY_VALUES: ErrorResponse = {
  error: `invalid request: the body's lists hold more than ${MAX_LIST_VALUES.toLocaleString('en-US')} values in all (a filter takes at most ${LIMITS.maxFilterValues}): send the queries over several requests`,
  details: [{ path: '(body)', message: `more than ${MAX_LIST_VALUES} list items` }],
};

const TOO_MANY_MEMBERS: ErrorResponse = {
  error: `invalid request: the body's objects have more than ${MAX_BODY_MEMBERS} members in all (a query has at most ${QUERY_FIELDS.length + GRAFANA_QUERY_FIELDS.length} fields, a request at most ${LIMITS.maxQueries} queries)`,
  details: [{ path: '(body)', message: `more than ${MAX_BODY_MEMBERS} object members` }],
};

/**
 * Why JSON text (a string or its UTF-8 bytes) is refused before it is parsed: objects and arrays
 * nested deeper than MAX_NESTING, more than MAX_BODY_MEMBERS object members or MAX_LIST_VALUES
 * list values in all (strings skipped); null when none. A member is counted by its colon, a list
 * value by the comma before it, so malformed text is left for JSON.parse to refuse. One array
 * too long is refused after parsing (arrayTooLong), by path.
 */
export function shapeRefusal(text: string | Uint8Array): ErrorResponse | null {
  const at = typeof text === 'string' ? (i: number) => text.charCodeAt(i) : (i: number) => text[i];
  let depth = 0;
  let members = 0;
  let values = 0;
  /** Whether the container at each depth is a list, and its items counted so far. */
  const inList: boolean[] = [];
  const items: number[] = [];
  // One list longer than any may be is refused after parsing instead, by arrayTooLong, which names it.
  let oneTooLong = false;
  const item = (): boolean => {
    oneTooLong ||= ++items[depth] > MAX_ARRAY_ITEMS;
    return ++values > MAX_LIST_VALUES && !oneTooLong;
  };
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = at(i);
    if (inString) {
      if (c === BACKSLASH) {
        i++;
      } else if (c === QUOTE) {
        inString = false;
      }
      continue;
    }
    // A list's first item (any text but a space or its end), then one more after each comma.
    if (inList[depth] && items[depth] === 0 && c > 0x20 && c !== CLOSE_BRACKET && item()) {
      return TOO_MANY_VALUES;
    }
    if (c === QUOTE) {
      inString = true;
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (++depth > MAX_NESTING) {
        return TOO_DEEP;
      }
      inList[depth] = c === OPEN_BRACKET;
      items[depth] = 0;
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      depth--;
    } else if (c === COLON && ++members > MAX_BODY_MEMBERS) {
      return TOO_MANY_MEMBERS;
    } else if (c === COMMA && inList[depth] && item()) {
      return TOO_MANY_VALUES;
    }
  }
  return null;
}

/** The first array in a parsed body longer than `max`, as a refusal naming where it is; null when none is. */
export function arrayTooLong(value: unknown, max = MAX_ARRAY_ITEMS): ErrorResponse | null {
  const walk = (v: unknown, path: string): ErrorResponse | null => {
    if (Array.isArray(v)) {
      if (v.length > max) {
        const where = path || '(body)';
        const message = `has ${v.length.toLocaleString('en-US')} items; at most ${max} are accepted anywhere`;
        return { error: `invalid request: ${where}: ${message}`, details: [{ path: where, message }] };
      }
      for (let i = 0; i < v.length; i++) {
        const found = walk(v[i], `${path}.${i}`);
        if (found) {
          return found;
        }
      }
    } else if (v !== null && typeof v === 'object') {
      for (const key of Object.keys(v)) {
        const found = walk((v as Record<string, unknown>)[key], path ? `${path}.${key}` : key);
        if (found) {
          return found;
        }
      }
    }
    return null;
  };
  return walk(value, '');
}

const NONE_REFUSED: readonly RefusedQuery[] = Object.freeze([]);

/**
 * A query request from a parsed body, as both HTTP paths read it: its shape first, then the
 * schema; queries wrong on their own are taken out of it and `refused` (withoutRefusedQueries).
 */
export function parseQueryRequest(
  body: unknown
): { request: QueryRequest; refused: readonly RefusedQuery[] } | { refusal: ErrorResponse } {
  const tooLong = arrayTooLong(body);
  if (tooLong) {
    return { refusal: tooLong };
  }
  const parsed = queryRequestSchema.safeParse(body);
  if (parsed.success) {
    return { request: parsed.data, refused: NONE_REFUSED };
  }
  return withoutRefusedQueries(body, parsed.error) ?? { refusal: invalidRequest(parsed.error) };
}

/**
 * When only some queries are wrong (a dashboard variable giving one query a value it cannot use),
 * the others are answered and each wrong one gets its own error, as Grafana shows per query:
 * refusing the request blanked every query of the panel. Only when each wrong query has a refId of
 * its own to report under, and the rest pass on their own; otherwise the request is refused whole.
 */
function withoutRefusedQueries(
  body: unknown,
  error: z.ZodError
): { request: QueryRequest; refused: readonly RefusedQuery[] } | null {
  const queries = (body as { queries?: unknown }).queries;
  if (!Array.isArray(queries)) {
    return null;
  }
  const isQueryObject = (q: unknown): q is Record<string, unknown> =>
    q !== null && typeof q === 'object' && !Array.isArray(q);
  const issuesOf = new Map<number, z.ZodError['issues']>();
  for (const issue of error.issues) {
    const [field, index] = issue.path;
    // (A query's own path: its fields, or the query when several of its fields are unknown.)
    if (field !== 'queries' || typeof index !== 'number' || !isQueryObject(queries[index])) {
      return null; // the request itself is wrong, or a whole query is not an object
    }
    issuesOf.set(index, [...(issuesOf.get(index) ?? []), issue]);
  }
  const refIds = queries.map((q) => (isQueryObject(q) ? (q.refId ?? DEFAULTS.refId) : undefined));
  const ownRefId = (i: number) =>
    typeof refIds[i] === 'string' &&
    refIds[i].length > 0 &&
    refIds[i].length <= LIMITS.maxRefIdLength &&
    !issuesOf.get(i)!.some((issue) => issue.path[2] === 'refId') &&
    refIds.indexOf(refIds[i]) === refIds.lastIndexOf(refIds[i]);
  const wrong = [...issuesOf.keys()];
  if (wrong.length >= queries.length || !wrong.every(ownRefId)) {
    return null;
  }
  const rest = queryRequestSchema.safeParse({
    ...(body as object),
    queries: queries.filter((_, i) => !issuesOf.has(i)),
  });
  if (!rest.success) {
    return null;
  }
  // A hidden query gets no result, wrong or not (as Grafana's own data sources leave it out).
  const refused = wrong
    .filter((i) => (queries[i] as { hide?: unknown }).hide !== true)
    .sort((a, b) => a - b)
    .map((i) => ({ refId: refIds[i] as string, error: invalidRequest(new z.ZodError(issuesOf.get(i)!)).error }));
  return { request: rest.data, refused };
}

/** An invalidation from a parsed body: its shape first, then the schema, as for a query request. */
export function parseInvalidateRequest(body: unknown): { target: InvalidateRequest } | { refusal: ErrorResponse } {
  const tooLong = arrayTooLong(body);
  if (tooLong) {
    return { refusal: tooLong };
  }
  const error = 'invalid request: send {"ruleId": "…"}, {"parserId": "…"} or {"all": true}';
  const target = body !== null && typeof body === 'object' && !Array.isArray(body) ? invalidateTarget(body) : null;
  if (target !== null && !Object.hasOwn(invalidateTargets, target)) {
    return { refusal: { error, details: [{ path: '(body)', message: target }] } };
  }
  const parsed = (target ? invalidateTargets[target as keyof typeof invalidateTargets] : invalidateSchema).safeParse(
    body
  );
  return parsed.success ? { target: parsed.data } : { refusal: { error, details: zodDetails(parsed.error) } };
}

/** A body longer than this waits for a turn of the loop before it is parsed (turns.ts), weighing one a KB. */
const PARSE_IN_TURN_CHARS = 16 * 1024;

/** The loop turn a body of `length` waits for before it is parsed (on either path: fast or Express); none for a short one. */
export function turnToParse(length: number): Promise<void> | null {
  return length > PARSE_IN_TURN_CHARS ? loopTurns.next('lookup', Math.ceil(length / 1024)) : null;
}

/**
 * A request body's text as JSON, as body-parser's strict mode reads one: empty is `{}`, and only
 * an object or an array is a JSON body; nested too deep or too wide is refused unparsed
 * (shapeRefusal). The text is UTF-8 already (responses.ts notUtf8).
 */
export function jsonBodyOf(text: string): { body: unknown } | { refusal: ErrorResponse } {
  if (text.length === 0) {
    return { body: {} };
  }
  const shapeProblem = shapeRefusal(text);
  if (shapeProblem) {
    return { refusal: shapeProblem };
  }
  const first = text.trimStart()[0];
  if (first === '{' || first === '[') {
    try {
      return { body: JSON.parse(text) };
    } catch {
      // (said below)
    }
  }
  return { refusal: notJsonObject(text) };
}
