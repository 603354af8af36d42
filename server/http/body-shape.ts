/**
 * The shape of a JSON body checked before the costly steps, so that a hostile one is refused
 * in milliseconds: nesting before parsing (JSON.parse of 1 MB of `[[[…` took 190 ms), and the
 * length of every array before validation (zod checks each item of a filter list before its
 * length: 250,000 of them took 1.3 s and 270 MB, ten such bodies at once froze the service for
 * 15 s). The contract's limits still apply after; these only bound what reaching them costs.
 */
import { LIMITS, type ErrorResponse, type InvalidateRequest, type QueryRequest } from '../contract';
import { invalidRequest, zodDetails } from './responses';
import { invalidateSchema, queryRequestSchema } from './validation';

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

/** Whether JSON text (a string or its UTF-8 bytes) nests objects and arrays deeper than `max`, strings skipped. */
export function nestsDeeperThan(text: string | Uint8Array, max = MAX_NESTING): boolean {
  const at = typeof text === 'string' ? (i: number) => text.charCodeAt(i) : (i: number) => text[i];
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = at(i);
    if (inString) {
      if (c === BACKSLASH) {
        i++;
      } else if (c === QUOTE) {
        inString = false;
      }
    } else if (c === QUOTE) {
      inString = true;
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (++depth > max) {
        return true;
      }
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      depth--;
    }
  }
  return false;
}

export const TOO_DEEP: ErrorResponse = {
  error: `invalid request: the body nests deeper than ${MAX_NESTING} levels (a query request has four)`,
  details: [{ path: '(body)', message: `nests deeper than ${MAX_NESTING} levels` }],
};

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

/** A query request from a parsed body, as both HTTP paths read it: its shape first, then the schema. */
export function parseQueryRequest(body: unknown): { request: QueryRequest } | { refusal: ErrorResponse } {
  const tooLong = arrayTooLong(body);
  if (tooLong) {
    return { refusal: tooLong };
  }
  const parsed = queryRequestSchema.safeParse(body);
  return parsed.success ? { request: parsed.data } : { refusal: invalidRequest(parsed.error) };
}

/** An invalidation from a parsed body: its shape first, then the schema, as for a query request. */
export function parseInvalidateRequest(body: unknown): { target: InvalidateRequest } | { refusal: ErrorResponse } {
  const tooLong = arrayTooLong(body);
  if (tooLong) {
    return { refusal: tooLong };
  }
  const parsed = invalidateSchema.safeParse(body);
  return parsed.success
    ? { target: parsed.data }
    : {
        refusal: {
          error: 'invalid request: send {"ruleId": "…"}, {"parserId": "…"} or {"all": true}',
          details: zodDetails(parsed.error),
        },
      };
}
