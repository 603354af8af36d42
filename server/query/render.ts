/**
 * Shapes an answer for the client: the frames with this request's meta (refId, cache
 * status, covered range, notices), as objects or as JSON text. The text of a cached answer
 * is rendered once per variant and reused for every hit of it (only the refId is spliced
 * in), so a hit costs no frame building and no serializing of numbers and SQL.
 */
import type { CacheStatus, DataFrameJSON, Notice } from '../contract';
import type { Answer } from './executor';
import type { NormalizedQuery } from './normalize';
import { differsFromAsked, type TimeRange } from './range';

const utc = (ms: number) => new Date(ms).toISOString().replace('T', ' ').replace(/\.000Z$/, '').replace(/Z$/, '');

/** The notice a panel shows when the covered range is not the one it asked for. */
export function coveredRangeNotice(covered: TimeRange): Notice {
  return { severity: 'info', text: `Covered ${utc(covered.from)} – ${utc(covered.to)} UTC: ranges are read in whole minutes.` };
}

const CACHE_NOTICES: Partial<Record<CacheStatus, Notice>> = {
  stale: { severity: 'warning', text: 'Served from cache past its freshness: the database could not be reached or is being re-queried.' },
  bypass: { severity: 'info', text: 'Not served from the cache (Redis unreachable, slow, or turned off): answered directly from the database.' },
};

/** Frames with this answer's meta; the (shared, cached) answer is not mutated. */
export function withMeta(answer: Answer, q: NormalizedQuery, cache: CacheStatus, refId: string): DataFrameJSON[] {
  const notices = [...answer.notices, ...(CACHE_NOTICES[cache] ? [CACHE_NOTICES[cache]!] : []), ...(differsFromAsked(q.range, q.asked) ? [coveredRangeNotice(q.range)] : [])];
  return answer.frames.map((f) => ({
    schema: {
      ...f.schema,
      refId,
      meta: {
        ...f.schema.meta,
        executedQueryString: answer.sql,
        ...(notices.length ? { notices } : {}),
        custom: {
          tiers: answer.tiers,
          coveredRange: { from: q.range.from, to: q.range.to },
          bucketMs: q.bucketMs,
          watermark: answer.watermark,
          computedAt: answer.computedAt,
          cache,
        },
      },
    },
    data: f.data,
  }));
}

const SCHEMA_OPEN = '{"schema":{';

/**
 * Per answer object: for each variant (cache status, whether the asked range differs from the
 * covered one), each frame's JSON after `{"schema":{"refId":<refId>,`. Keyed weakly, so
 * templates go when the answer does. An answer belongs to one cache key, so its covered range
 * and bucket width are fixed.
 */
const templates = new WeakMap<Answer, Map<string, string[]>>();

function frameTemplates(answer: Answer, q: NormalizedQuery, cache: CacheStatus): string[] {
  let byVariant = templates.get(answer);
  if (!byVariant) templates.set(answer, (byVariant = new Map()));
  const variant = `${cache}|${differsFromAsked(q.range, q.asked) ? 1 : 0}`;
  let pieces = byVariant.get(variant);
  if (!pieces) {
    pieces = withMeta(answer, q, cache, '').map((frame) => {
      const { refId: _omitted, ...schema } = frame.schema;
      const text = JSON.stringify({ schema, data: frame.data });
      // A schema always has a name and fields, so the text goes on after the opening brace.
      if (!text.startsWith(SCHEMA_OPEN) || text.startsWith(`${SCHEMA_OPEN}}`)) throw new Error('unexpected frame shape');
      return text.slice(SCHEMA_OPEN.length);
    });
    byVariant.set(variant, pieces);
  }
  return pieces;
}

/** The JSON text of `{"frames": [...]}` for this answer, identical to JSON.stringify of withMeta's frames but for key order. */
export function renderFrames(answer: Answer, q: NormalizedQuery, cache: CacheStatus, refId: string): string {
  const ref = JSON.stringify(refId);
  const frames = frameTemplates(answer, q, cache).map((rest) => `${SCHEMA_OPEN}"refId":${ref},${rest}`);
  return `{"frames":[${frames.join(',')}]}`;
}
