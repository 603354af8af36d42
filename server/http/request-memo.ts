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

/** Epoch milliseconds as JSON writes them: no sign, fraction, exponent or leading zero. */
const HEAD = /^\{"range":\{"from":(0|[1-9]\d{0,15}),"to":(0|[1-9]\d{0,15})\},/;

export class RequestMemo {
  private readonly rests = new Map<string, Omit<QueryRequest, 'range'>>();

  /** The validated request for a body of the remembered form, or undefined: then parse and validate it, and `remember` it. */
  recall(text: string): QueryRequest | undefined {
    const head = HEAD.exec(text);
    if (!head) return undefined;
    const known = this.rests.get(text.slice(head[0].length));
    if (!known) return undefined;
    const checked = checkRange(Number(head[1]), Number(head[2]), Date.now());
    return 'range' in checked ? { range: checked.range, ...known } : undefined;
  }

  /** Remembers what a body validated to, when the body has the remembered form. */
  remember(text: string, request: QueryRequest): void {
    const head = HEAD.exec(text);
    if (!head) return;
    const rest = text.slice(head[0].length);
    // No second range, spelt out or escaped (`"\u0072ange"` is a key "range" too).
    if (rest.length > MAX_REST_LENGTH || rest.includes('"range"') || rest.includes('\\u') || this.rests.has(rest)) return;
    // The range read from the head is the one validated (a safeguard: the check above already ensures it).
    if (request.range.from !== Number(head[1]) || request.range.to !== Number(head[2])) return;
    const { range: _range, ...others } = request;
    // The queries are shared by every recall, so frozen; the holder is only spread (a frozen one is slow to spread).
    deepFreeze(others.queries);
    this.rests.set(rest, others);
    if (this.rests.size > CAPACITY) this.rests.delete(this.rests.keys().next().value!);
  }

  get size(): number {
    return this.rests.size;
  }
}
