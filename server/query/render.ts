/**
 * Shapes an answer for the client: the frames with this request's meta (refId, cache
 * status, notices, aligned range), as objects or as JSON text. The text of a cached
 * answer is rendered once and reused for every hit of it (only the refId is spliced in),
 * so a hit costs no frame building and no serializing of numbers and SQL.
 */
import type { CacheStatus, DataFrameJSON } from '../contract';
import type { Answer } from './executor';
import type { NormalizedQuery } from './normalize';

/** Frames with this answer's meta; the (shared, cached) answer is not mutated. */
export function withMeta(answer: Answer, q: NormalizedQuery, cache: CacheStatus, refId: string): DataFrameJSON[] {
  const notices = [...answer.notices];
  if (cache === 'stale') {
    notices.push({ severity: 'warning', text: 'Served from cache past its freshness: the database could not be reached or is being re-queried.' });
  } else if (cache === 'bypass') {
    notices.push({ severity: 'info', text: 'Cache degraded: answered directly from the rollups.' });
  }
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
          alignedRange: { from: q.from, to: q.to },
          bucketMs: q.route.bucketMs,
          watermark: answer.watermark,
          cache,
        },
      },
    },
    data: f.data,
  }));
}

const SCHEMA_OPEN = '{"schema":{';

/**
 * Per answer object: for each (cache status, aligned range, bucket), each frame's JSON
 * after `{"schema":{"refId":<refId>,`. Keyed weakly, so templates go when the answer does.
 */
const templates = new WeakMap<Answer, Map<string, string[]>>();

function frameTemplates(answer: Answer, q: NormalizedQuery, cache: CacheStatus): string[] {
  let byVariant = templates.get(answer);
  if (!byVariant) templates.set(answer, (byVariant = new Map()));
  const variant = `${cache}|${q.from}|${q.to}|${q.route.bucketMs}`;
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
