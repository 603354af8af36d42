/**
 * Validated requests, remembered by everything but their range. A dashboard sends the same
 * body on every refresh but for the range, which the plugin (and any client serializing the
 * contract's object in order) writes first: `{"range":{"from":<ms>,"to":<ms>},<rest>`. A body
 * of that form whose rest was accepted before needs neither JSON parsing nor validation
 * beyond its range, and its queries are the same (frozen) objects as before, which is what
 * lets normalizing and cache keys be remembered per query (query/normalize-memo.ts).
 *
 * Why a recalled request is exactly what parsing and validating the body would give: the
 * rest is the same text, so it parses to the same members; it holds no second "range", nor
 * any escaped key that could be one (JSON keeps the last of repeated keys), so the range is
 * the one read here; the range is checked by the request schema's own range rules
 * (checkRange: its members are numbers here, which their types allow), and every other rule
 * reads only the other members. Anything else (another form, a range that fails, a body not
 * seen before) is parsed and validated whole, so errors come from one place.
 */
import type { QueryRequest } from '../contract';
import { deepFreeze } from '../query/frozen';
import { checkRange } from './validation';

/** Bodies remembered (first in, first out) and the longest rest worth remembering. */
const CAPACITY = 256;
const MAX_REST_LENGTH = 16 * 1024;

const OPEN = '{"range":{"from":';
const MIDDLE = ',"to":';
const CLOSE = '},';

export class RequestMemo {
  private readonly rests = new Map<string, Omit<QueryRequest, 'range'>>();
  /** The bounds read by the last `head` (fields, not a result object: this runs per request). */
  private from = 0;
  private to = 0;
  private end = 0;

  /** The validated request for a body of the remembered form, or undefined: then parse and validate it, and `remember` it. */
  recall(text: string): QueryRequest | undefined {
    const start = this.head(text);
    if (start < 0) {
      return undefined;
    }
    const known = this.rests.get(text.slice(start));
    if (!known) {
      return undefined;
    }
    const checked = checkRange(this.from, this.to, Date.now());
    return 'range' in checked ? { range: checked.range, ...known } : undefined;
  }

  /** Remembers what a body validated to, when the body has the remembered form. */
  remember(text: string, request: QueryRequest): void {
    const start = this.head(text);
    if (start < 0) {
      return;
    }
    const rest = text.slice(start);
    // No second range, spelt out or escaped (`"\u0072ange"` is a key "range" too).
    if (rest.length > MAX_REST_LENGTH || rest.includes('"range"') || rest.includes('\\u') || this.rests.has(rest)) {
      return;
    }
    // The range read from the head is the one validated (a safeguard: the check above already ensures it).
    if (request.range.from !== this.from || request.range.to !== this.to) {
      return;
    }
    const { range: _range, ...others } = request;
    // The queries are shared by every recall, so frozen; the holder is only spread (a frozen one is slow to spread).
    deepFreeze(others.queries);
    this.rests.set(rest, others);
    if (this.rests.size > CAPACITY) {
      this.rests.delete(this.rests.keys().next().value!);
    }
  }

  /** Where the rest starts in a body of the remembered form (bounds in `from` and `to`), or -1. */
  private head(text: string): number {
    if (!text.startsWith(OPEN) || !this.digits(text, OPEN.length)) {
      return -1;
    }
    const from = this.to;
    if (
      !text.startsWith(MIDDLE, this.end) ||
      !this.digits(text, this.end + MIDDLE.length) ||
      !text.startsWith(CLOSE, this.end)
    ) {
      return -1;
    }
    this.from = from;
    return this.end + CLOSE.length;
  }

  /**
   * Epoch milliseconds as JSON writes them, at `start`: digits without a leading zero (but
   * "0"), no sign, fraction or exponent; at most 15 of them, so the value is exact (longer
   * ones are past 9999 anyway, which the whole validation refuses). Into `to`, and `end`.
   */
  private digits(text: string, start: number): boolean {
    let value = 0;
    let i = start;
    for (; i < text.length && i - start < 16; i++) {
      const c = text.charCodeAt(i) - 48;
      if (c < 0 || c > 9) {
        break;
      }
      value = value * 10 + c;
    }
    const n = i - start;
    if (n === 0 || n > 15 || (n > 1 && text.charCodeAt(start) === 48)) {
      return false;
    }
    this.to = value;
    this.end = i;
    return true;
  }

  get size(): number {
    return this.rests.size;
  }
}
