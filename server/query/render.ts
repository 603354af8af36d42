/**
 * Shapes an answer for the client: the frames with this request's meta (refId, cache
 * status, covered range, notices), as objects or as JSON. The JSON of a cached answer is
 * rendered once per variant and refId, as UTF-8 bytes, and reused for every hit of it, so a
 * hit costs no frame building, no serializing of numbers and SQL and no text encoding.
 */
import { compactTimeColumns, type CacheStatus, type DataFrameJSON, type Notice } from '../contract';
import { frameValues, type Answer } from './executor';
import type { NormalizedQuery } from './normalize';
import { floorTo, MINUTE_MS, RAW_MINUTES_MAX_SPAN, type TimeRange } from './range';
import { mapInTurns } from './turns';

/** An instant as notices write it: `2026-01-01 10:00:00`, UTC, milliseconds only when there are any. */
export const utc = (ms: number) =>
  new Date(ms)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.000Z$/, '')
    .replace(/Z$/, '');

/**
 * What an answer computed before its covered range ends holds: the rows as they were then (a
 * range ending now). Rows deleted or rewritten since are still counted in it, as rows added since
 * are not, until it is computed again: its key moves on each step (range.ts movingStep), and the cache keeps it at most CACHE_TTL_SECONDS plus up to CACHE_JITTER_SECONDS, so an answer warmed a few seconds before its minute begins is served through that minute.
 */
function rowsUpTo(computedAt: number): string {
  return `Rows as stored at ${utc(secondOf(computedAt))} UTC, when this answer was computed: rows added, changed or deleted since are not reflected until it is computed again, about once a minute for answers reaching the last minutes.`;
}

/**
 * What an answer over a range that has ended, read from raw rows past the rollups' watermark,
 * holds: the rows written by then. Rows still arriving for those minutes (late, or delayed on
 * their way) change it and are not tracked as changes until a refresh passes them.
 */
function rowsWrittenBy(computedAt: number): string {
  return `Rows written by ${utc(secondOf(computedAt))} UTC, when this answer was computed: rows still arriving for its last minutes are counted when it is next computed.`;
}

const secondOf = (ms: number) => Math.floor(ms / 1000) * 1000;

/**
 * The notice a panel shows when the covered range is not the one it asked for, or the answer
 * was computed before that range ends (then its counts stop at that instant, not at the range's
 * end: said, rather than a number that looks like the whole range's), or it read the last
 * minutes from raw rows still arriving (`live`: then it holds the rows written by then).
 */
export function coveredRangeNotice(
  covered: TimeRange,
  differs: boolean,
  computedAt: number,
  live = false,
  inWholeHours = false,
  stepMs: number = MINUTE_MS
): Notice | null {
  if (computedAt <= covered.from) {
    // Wholly after the answer was computed: only rows dated ahead (a producer's clock running
    // fast) can be stored for it, said plainly ("no rows are stored for it yet" was said over
    // such rows, counted beside it).
    return {
      severity: 'info',
      text: `Covered ${utc(covered.from)} – ${utc(covered.to)} UTC: the whole range is after ${utc(secondOf(computedAt))} UTC, when this answer was computed, so it holds only rows stored by then with times ahead of it; rows stored since are counted when it is next computed.`,
    };
  }
  const rows = computedAt < covered.to ? rowsUpTo(computedAt) : live ? rowsWrittenBy(computedAt) : '';
  if (!differs && !rows) {
    return null;
  }
  const range = differs
    ? `Covered ${utc(covered.from)} – ${utc(covered.to)} UTC: ${
        inWholeHours
          ? 'raw rows this old are no longer kept, so its ends are read in whole hours from the rollups.'
          : `a range ending now or later, or given relative to now, is read ${stepWords(stepMs)}.`
      }`
    : '';
  return { severity: 'info', text: [range, rows].filter(Boolean).join(' ') };
}

/** The step a range ending now was moved forward by (range.ts movingStep), as a notice writes it. */
function stepWords(stepMs: number): string {
  return stepMs === MINUTE_MS
    ? 'in whole minutes'
    : stepMs === 1000
      ? 'in whole seconds'
      : `in steps of ${width(stepMs)}`;
}

/** A width as a notice writes it: "1 hour", "10 minutes", "90 seconds". */
function width(ms: number): string {
  const units: Array<[number, string]> = [
    [86_400_000, 'day'],
    [3_600_000, 'hour'],
    [60_000, 'minute'],
    [1000, 'second'],
  ];
  const [size, name] = units.find(([u]) => ms % u === 0) ?? [1, 'millisecond'];
  const n = ms / size;
  return `${n} ${name}${n === 1 ? '' : 's'}`;
}

/** The notice a timeseries shows when its points are further apart than asked (normalize.ts coarserThanAskedMs). */
export function coarserBucketNotice(
  bucketMs: number,
  askedMs: number,
  fields: readonly string[],
  because: 'rollups' | 'retention' | 'totals' | 'minute' = 'rollups'
): Notice {
  const totals = `each point's counts are totals over its ${width(bucketMs)} (the first and last point's, over the part of it in the range)`;
  const why =
    because === 'minute'
      ? `a minute is the finest width points have, and ${totals}`
      : because === 'retention'
        ? `the rollups as fine as that keep only the most recent days, not all of this range; over ${width(RAW_MINUTES_MAX_SPAN)} or less, raw rows are read by the minute`
        : because === 'totals'
          ? `points are on the grid of the widest rollup at or under the width asked (a whole multiple of its width, and no more points than asked), and ${totals}`
          : `no finer rollup holds ${fields.length ? fields.join(', ') : 'these figures'}; over ${width(RAW_MINUTES_MAX_SPAN)} or less, raw rows are read by the minute`;
  return { severity: 'info', text: `Points are ${width(bucketMs)} apart, not the ${width(askedMs)} asked: ${why}.` };
}

/**
 * The notice a timeseries shows when its points are wider than the range and the first starts
 * before it: a point sits where its bucket starts, so that one lies off the panel's left edge,
 * and a panel of a month with 365-day points showed nothing at all, with nothing to say why.
 * Null when every point starts inside the range.
 */
export function offPanelPointNotice(range: TimeRange, bucketMs: number | null): Notice | null {
  if (bucketMs === null || bucketMs <= range.to - range.from) {
    return null;
  }
  const first = floorTo(range.from, bucketMs);
  if (first >= range.from) {
    return null;
  }
  return {
    severity: 'warning',
    text: `Points are ${width(bucketMs)} apart, wider than the range: a point sits at the start of its ${width(bucketMs)}, so the first, at ${utc(first)} UTC, is before the range starts, off a panel showing the range. Its counts are over the part of its ${width(bucketMs)} inside the range; a narrower interval shows it.`,
  };
}

const CACHE_NOTICES: Partial<Record<CacheStatus, Notice>> = {
  stale: {
    severity: 'warning',
    text: 'Served from cache past its freshness: the database could not be reached or is being re-queried.',
  },
  bypass: {
    severity: 'info',
    text: 'Not served from the cache (Redis unreachable, slow, or turned off): answered directly from the database.',
  },
};

/** Frames with this answer's meta; the (shared, cached) answer is not mutated. */
export function withMeta(answer: Answer, q: NormalizedQuery, cache: CacheStatus, refId: string): DataFrameJSON[] {
  const covered = coveredRangeNotice(
    q.range,
    q.differsFromAsked,
    answer.computedAt,
    answer.touchesLiveEdge,
    q.inWholeHours,
    q.movingStepMs ?? MINUTE_MS
  );
  const offPanel = offPanelPointNotice(q.range, q.bucketMs);
  const notices = [
    ...answer.notices,
    ...(CACHE_NOTICES[cache] ? [CACHE_NOTICES[cache]!] : []),
    ...(covered ? [covered] : []),
    ...(q.coarserThanAskedMs !== null && q.bucketMs !== null
      ? [coarserBucketNotice(q.bucketMs, q.coarserThanAskedMs, q.fields, q.coarserBecause ?? 'rollups')]
      : []),
    ...(offPanel ? [offPanel] : []),
  ];
  // The statement on the query's first frame only: Grafana's query inspector shows the first
  // frame's of each refId, and a grouped answer of 300 series repeating it (with every filter
  // value in its parameters) was a 59 MB response to a 96 KB request. Notices and the custom meta,
  // a few hundred bytes, stay on every frame: a panel hiding the first series keeps its notices.
  return answer.frames.map((f, i) => ({
    schema: {
      ...f.schema,
      refId,
      meta: {
        ...f.schema.meta,
        ...(i === 0 ? { executedQueryString: answer.sql } : {}),
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
const RESULTS_OPEN = '{"results":{';
const RESULTS_CLOSE = '}}';

/**
 * What one answer keeps rendered: a variant per way it was asked (the usual ones are one or
 * two: hit or miss, with steps), and per variant a response body per refId. A client varying
 * what it asks (every intervalMs below a coarse answer's step, any refId) must not make a
 * cached answer keep a copy per request: the first ones kept go first.
 */
const VARIANTS_KEPT = 4;
const REF_IDS_KEPT = 4;

interface Variant {
  /**
   * Each frame's JSON after `{"schema":{"refId":<refId>,`, as UTF-8: a body for another refId is
   * these bytes copied between its own (a 2.4 MB answer asked with a new refId each time was
   * encoded again each time, holding every other request for milliseconds).
   */
  pieces: Buffer[];
  /** refId → the whole one-query response body. */
  bodies: Map<string, Buffer>;
}

interface Rendered {
  byVariant: Map<string, Variant>;
  /** About the bytes its variants hold (a string's length counted as bytes). */
  bytes: number;
}

/**
 * Per answer object: its variants (cache status, whether the range and bucket notices are shown). Keyed
 * weakly, so they go when the answer does. An answer belongs to one cache key, so its covered
 * range and bucket width are fixed.
 */
const variants = new WeakMap<Answer, Rendered>();

function renderedOf(answer: Answer): Rendered {
  let rendered = variants.get(answer);
  if (!rendered) {
    variants.set(answer, (rendered = { byVariant: new Map(), bytes: 0 }));
  }
  return rendered;
}

function variantsOf(answer: Answer): Map<string, Variant> {
  return renderedOf(answer).byVariant;
}

/** Bytes an answer's rendered variants hold (the caches keeping answers weigh them by it). */
export function renderedBytes(answer: Answer): number {
  return variants.get(answer)?.bytes ?? 0;
}

function keepVariant(answer: Answer, key: string, variant: Variant): void {
  const rendered = renderedOf(answer);
  while (rendered.byVariant.size >= VARIANTS_KEPT) {
    const [oldestKey, oldest] = rendered.byVariant.entries().next().value!;
    rendered.byVariant.delete(oldestKey);
    rendered.bytes -= variantBytes(oldest);
  }
  rendered.byVariant.set(key, variant);
  rendered.bytes += variantBytes(variant);
}

function keepBody(answer: Answer, variant: Variant, refId: string, body: Buffer): void {
  if (variant.bodies.size < REF_IDS_KEPT) {
    variant.bodies.set(refId, body);
    renderedOf(answer).bytes += body.length;
  }
}

function variantBytes(variant: Variant): number {
  let bytes = 0;
  for (const piece of variant.pieces) {
    bytes += piece.length;
  }
  for (const body of variant.bodies.values()) {
    bytes += body.length;
  }
  return bytes;
}

/** The usual hit's keys, made once: the plugin always asks for compactTime. */
const WITH_STEPS: Record<CacheStatus, string> = {
  hit: 'hit|steps',
  miss: 'miss|steps',
  stale: 'stale|steps',
  bypass: 'bypass|steps',
};

/**
 * Requests sharing an answer may differ in what they asked: the range, the bucket width,
 * compactTime. The usual hit asked what it got: its key is the cache status alone, or that with
 * `|steps`, no string built per hit.
 */
function variantKey(q: NormalizedQuery, cache: CacheStatus, compactTime: boolean): string {
  if (!q.differsFromAsked && q.coarserThanAskedMs === null) {
    return compactTime ? WITH_STEPS[cache] : cache;
  }
  return `${cache}|${q.differsFromAsked ? (q.inWholeHours ? 'hours' : `range${q.movingStepMs ?? ''}`) : ''}|${q.coarserThanAskedMs ?? ''}${q.coarserBecause === 'rollups' ? '' : (q.coarserBecause?.[0] ?? '')}${compactTime ? '|steps' : ''}`;
}

/**
 * A frame's JSON after `{"schema":{`, its refId left out (each response puts its own first),
 * time columns as steps when the client asked for `compactTime`.
 */
function framePiece(frame: DataFrameJSON, compactTime: boolean): string {
  const { schema: whole, data } = compactTime ? compactTimeColumns(frame) : frame;
  const { refId: _omitted, ...schema } = whole;
  const text = JSON.stringify({ schema, data });
  // A schema always has a name and fields, so the text goes on after the opening brace.
  if (!text.startsWith(SCHEMA_OPEN) || text.startsWith(`${SCHEMA_OPEN}}`)) {
    throw new Error('unexpected frame shape');
  }
  return text.slice(SCHEMA_OPEN.length);
}

function variantOf(answer: Answer, q: NormalizedQuery, cache: CacheStatus, compactTime: boolean): Variant {
  const byVariant = variantsOf(answer);
  const key = variantKey(q, cache, compactTime);
  let variant = byVariant.get(key);
  if (!variant) {
    const pieces = withMeta(answer, q, cache, '').map((frame) => ownBytes(framePiece(frame, compactTime)));
    keepVariant(answer, key, (variant = { pieces, bodies: new Map() }));
  }
  return variant;
}

/** renderInTurns' work for one variant, its body for `refId` with it. */
async function renderVariantInTurns(
  answer: Answer,
  q: NormalizedQuery,
  cache: CacheStatus,
  refId: string,
  compactTime: boolean
): Promise<void> {
  const byVariant = variantsOf(answer);
  const key = variantKey(q, cache, compactTime);
  const pieces = await mapInTurns(
    withMeta(answer, q, cache, ''),
    (frame) => ownBytes(framePiece(frame, compactTime)),
    frameValues
  );
  if (byVariant.has(key)) {
    return; // rendered meanwhile in one piece (renderResponse)
  }
  // renderResponse's body, its frames' UTF-8 made a frame at a time above.
  keepVariant(answer, key, { pieces, bodies: new Map([[refId, responseBody(pieces, JSON.stringify(refId))]]) });
}

/** Renderings in progress per answer and variant: requests sharing an answer wait for one. */
const rendering = new WeakMap<Answer, Map<string, Promise<void>>>();

/**
 * Renders a large answer's response body for `refId` a few frames per loop turn (mapInTurns),
 * ready for renderResponse: the JSON of a few MB is tens of ms, and its UTF-8 bytes another
 * 15, which in one piece would hold every other request for that long. Requests sharing the
 * answer (a miss's followers, hits on one decoded entry) wait for the same rendering; one that
 * asked with another refId then has its body built from the rendered JSON by renderResponse.
 */
export function renderInTurns(
  answer: Answer,
  q: NormalizedQuery,
  cache: CacheStatus,
  refId: string,
  compactTime = false
): Promise<void> {
  const key = variantKey(q, cache, compactTime);
  if (variantsOf(answer).has(key)) {
    return Promise.resolve();
  }
  let inFlight = rendering.get(answer);
  if (!inFlight) {
    rendering.set(answer, (inFlight = new Map()));
  }
  let done = inFlight.get(key);
  if (!done) {
    const started = renderVariantInTurns(answer, q, cache, refId, compactTime).finally(() => inFlight.delete(key));
    inFlight.set(key, (done = started));
  }
  return done;
}

/** What goes before a frame's piece in a response for `ref` (a refId as JSON): its opening and refId. */
const frameOpen = (ref: string) => `${SCHEMA_OPEN}"refId":${ref},`;
/** What goes before and after the frames in a one-query response body. */
const responseOpen = (ref: string) => `${RESULTS_OPEN}${ref}:{"frames":[`;
const RESPONSE_CLOSE = `]}${RESULTS_CLOSE}`;

/** The frames of a variant for `ref`, comma-separated. */
function framesList(variant: Variant, ref: string): string {
  return variant.pieces.map((rest) => frameOpen(ref) + rest.toString()).join(',');
}

/** The one-query response body for `ref` (a refId as JSON) from a variant's pieces: bytes copied, nothing encoded again. */
function responseBody(pieces: readonly Buffer[], ref: string): Buffer {
  const open = Buffer.from(frameOpen(ref));
  const parts: Buffer[] = [Buffer.from(responseOpen(ref))];
  pieces.forEach((piece, i) => parts.push(...(i ? [COMMA, open, piece] : [open, piece])));
  parts.push(Buffer.from(RESPONSE_CLOSE));
  const body = Buffer.allocUnsafeSlow(parts.reduce((n, part) => n + part.length, 0));
  let at = 0;
  for (const part of parts) {
    at += part.copy(body, at);
  }
  return body;
}

/**
 * A string's UTF-8 in memory of its own. Buffer.from and Buffer.concat take what is under 4 KB
 * from a shared 8 KB slab, which a kept piece holds alive whole: a cached answer of small frames
 * weighed less than it held.
 */
function ownBytes(text: string): Buffer {
  const bytes = Buffer.allocUnsafeSlow(Buffer.byteLength(text));
  bytes.write(text);
  return bytes;
}

/** The JSON text of `{"frames": [...]}` for this answer, identical to JSON.stringify of withMeta's frames but for key order. */
export function renderFrames(answer: Answer, q: NormalizedQuery, cache: CacheStatus, refId: string): string {
  return `{"frames":[${framesList(variantOf(answer, q, cache, false), JSON.stringify(refId))}]}`;
}

/** The whole body of a response answering one query: `{"results":{<refId>:{"frames":[...]}}}`, as UTF-8. */
export function renderResponse(
  answer: Answer,
  q: NormalizedQuery,
  cache: CacheStatus,
  refId: string,
  compactTime = false
): Buffer {
  const variant = variantOf(answer, q, cache, compactTime);
  let body = variant.bodies.get(refId);
  if (!body) {
    body = responseBody(variant.pieces, JSON.stringify(refId));
    keepBody(answer, variant, refId, body);
  }
  return body;
}

/** The `<refId>:{…}` member of a one-query response body (a view, not a copy). */
export function resultMember(response: Buffer): Buffer {
  return response.subarray(RESULTS_OPEN.length, response.length - RESULTS_CLOSE.length);
}

/** A response body from result members (`<refId>:{…}`), with the request's error first when it has one. */
export function joinResults(members: Buffer[], error?: string): Buffer {
  const open = Buffer.from(error === undefined ? RESULTS_OPEN : `{"error":${JSON.stringify(error)},"results":{`);
  const parts: Buffer[] = [open];
  members.forEach((m, i) => parts.push(...(i ? [COMMA, m] : [m])));
  parts.push(CLOSE);
  return Buffer.concat(parts);
}

const COMMA = Buffer.from(',');
const CLOSE = Buffer.from(RESULTS_CLOSE);
