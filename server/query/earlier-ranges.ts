/**
 * The range a question covered last, so that while the database cannot be reached a panel
 * can still be shown the answer cached for the range just before the one it asks for.
 *
 * A range ending "now" is covered in whole minutes (range.ts; finer under an hour), so when a minute begins every
 * such panel asks a question nobody has answered yet: with the database down, each would fail
 * at once although the cache holds its answer of a minute ago. Per question (everything but
 * the range) and span, this keeps the latest covered range a user asked; the service looks the
 * earlier question up in the cache (so invalidations and data versions apply as to any hit,
 * and it is served only as long as the cache keeps it) and serves it marked: cache status
 * `stale`, its own covered range in the meta, and a notice that it is not the range asked.
 */
import type { Notice } from '../contract';
import type { Answer } from './executor';
import type { NormalizedQuery } from './normalize';
import type { TimeRange } from './range';
import { utc } from './render';

/** Questions remembered (first in, first out): a dashboard asks a few dozen. */
const CAPACITY = 1024;
/** The furthest an earlier range may lie behind the one asked. */
export const MAX_SHIFT_MS = 15 * 60_000;

const shapes = new WeakMap<NormalizedQuery, string>();

/** The question without its range: kind, filters, grouping, metrics, limits, bucket width, and the span. */
function shapeOf(q: NormalizedQuery): string {
  let shape = shapes.get(q);
  if (shape === undefined) {
    const { range, differsFromAsked: _differs, ...rest } = q;
    shape = `${range.to - range.from}|${JSON.stringify(rest)}`;
    if (Object.isFrozen(q)) {
      shapes.set(q, shape);
    }
  }
  return shape;
}

export class EarlierRanges {
  private readonly latest = new Map<string, NormalizedQuery>();

  /** Notes that `q` was answered for a user (keeps the latest range per question). */
  remember(q: NormalizedQuery): void {
    const shape = shapeOf(q);
    const known = this.latest.get(shape);
    if (known && known.range.to >= q.range.to) {
      return;
    }
    this.latest.delete(shape);
    this.latest.set(shape, q);
    if (this.latest.size > CAPACITY) {
      this.latest.delete(this.latest.keys().next().value!);
    }
  }

  /** The same question over the latest earlier range of the same span (at most MAX_SHIFT_MS behind), or undefined. */
  before(q: NormalizedQuery): NormalizedQuery | undefined {
    const known = this.latest.get(shapeOf(q));
    if (!known || known.range.to >= q.range.to || q.range.to - known.range.to > MAX_SHIFT_MS) {
      return undefined;
    }
    return known;
  }

  get size(): number {
    return this.latest.size;
  }
}

/** Why an earlier range's answer is served instead of a new one. */
export type InsteadBecause = 'unreachable' | 'late' | 'busy' | 'slow';

const BECAUSE: Record<InsteadBecause, string> = {
  unreachable: 'The database cannot be reached',
  late: 'The database did not answer in time',
  busy: 'The database is too busy to answer now',
  slow: 'The database is slower than usual now',
};

/** The notice on an earlier range's answer served in place of the one asked. */
export function earlierRangeNotice(covered: TimeRange, because: InsteadBecause = 'unreachable'): Notice {
  return {
    severity: 'warning',
    text: `${BECAUSE[because]}: this is the last cached answer, for ${utc(covered.from)} – ${utc(covered.to)} UTC, not the range asked.`,
  };
}

const marked = new WeakMap<Answer, { answer: Answer; renderAs: NormalizedQuery; because: InsteadBecause }>();

/**
 * An earlier range's answer as served in place of another: with the notice, rendered for its
 * own covered range (without the whole-minutes notice, which the new one replaces). The same
 * objects for the same answer, so its rendered JSON is reused (render.ts).
 */
export function servedInstead(
  answer: Answer,
  earlier: NormalizedQuery,
  because: InsteadBecause = 'unreachable'
): { answer: Answer; renderAs: NormalizedQuery } {
  let known = marked.get(answer);
  if (!known || known.renderAs.range !== earlier.range || known.because !== because) {
    known = {
      answer: { ...answer, notices: [...answer.notices, earlierRangeNotice(earlier.range, because)] },
      renderAs: Object.freeze({ ...earlier, differsFromAsked: false }),
      because,
    };
    marked.set(answer, known);
  }
  return known;
}
