/**
 * Runtime validation of what clients send, built on the contract's constants. Mistakes are
 * refused with a message that names the field and the fix: unknown fields (with the likely
 * intended one), enum values (with every allowed value), empty filter lists, epoch seconds,
 * times outside 1970–9999. The compile-time checks at the end keep these schemas and the
 * contract's hand-written types equal.
 */
import { z } from 'zod/v4';
import {
  DEFAULTS,
  GRAFANA_ALL_VALUE,
  OTHER_GROUP,
  GRAFANA_QUERY_FIELDS,
  GRANULARITIES,
  GROUP_BY_FIELDS,
  KIND_FIELDS,
  LIMITS,
  QUERY_FIELDS,
  QUERY_KINDS,
  SERIES_METRICS,
  STATUSES,
  TOP_RULES_SORT,
  type FilterField,
  type GrafanaQueryField,
  type InvalidateRequest,
  type QueryKind,
  type QueryRequest,
  type QueryRequestInput,
  type RuleperfQuery,
  type RuleperfQueryInput,
} from '../contract';
import { parseInstant } from './instant';
import { closest } from '../closest-name';

/** Unknown fields named in an error, each cut to this length: a body of 95,000 made one 2.3 MB message in 2.8 s. */
const NAMED_FIELDS = 10;
const NAMED_LENGTH = 64;

/** "unknown field "rule" (did you mean "ruleId"?)", for an object whose fields are `known`. */
function unknownFields(keys: readonly PropertyKey[], known: readonly string[], fields: string): string {
  const named = keys.slice(0, NAMED_FIELDS).map((k) => {
    const name = String(k).slice(0, NAMED_LENGTH);
    const hint = closest(name, known);
    return `${JSON.stringify(name)}${name.length < String(k).length ? '…' : ''}${hint ? ` (did you mean "${hint}"?)` : ''}`;
  });
  const more = keys.length > NAMED_FIELDS ? ` and ${keys.length - NAMED_FIELDS} more` : '';
  return `unknown field${keys.length > 1 ? 's' : ''} ${named.join(', ')}${more}; ${fields}`;
}

/** An enum whose error lists every allowed value, and the right spelling when only the case differs. */
function oneOf<const T extends readonly [string, ...string[]]>(values: T) {
  return z.enum(values, {
    error: (iss) => {
      const input = iss.input;
      const same = typeof input === 'string' ? values.find((v) => v.toLowerCase() === input.toLowerCase()) : undefined;
      // Otherwise the nearest spelling ("top_rules" → "topRules").
      const near = typeof input === 'string' && !same ? closest(input.slice(0, 64), values) : undefined;
      const got = typeof input === 'string' ? JSON.stringify(input.slice(0, 64)) : typeof input;
      const hint = same ? ` (values are case-sensitive: "${same}")` : near ? ` (did you mean "${near}"?)` : '';
      return `must be one of ${values.join(', ')}; got ${got}${hint}`;
    },
  });
}

const FILTER_NOUNS: Record<FilterField, string> = {
  metricType: 'metric type',
  ruleId: 'rule',
  parserId: 'parser',
  ruleCategory: 'category',
  sourceType: 'source type',
  status: 'status',
};
const emptyList = (field: FilterField) =>
  `an empty list matches nothing: omit ${field} to include every ${FILTER_NOUNS[field]}`;

/** Half of a UTF-16 pair without its other half (JSON's "\ud800"): no text holds it, so it matches nothing. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const LONE_SURROGATE_MESSAGE =
  'must be valid Unicode (it holds half of a UTF-16 surrogate pair, such as \\ud800 alone)';

const filterValue = z
  .string()
  .min(1, 'must not be empty')
  .max(LIMITS.maxValueLength)
  .refine((v) => !v.includes('\u0000'), 'must not contain NUL characters')
  // Grafana's "All" value sent as it is (not interpolated): it would match nothing, not everything.
  .refine(
    (v) => v !== GRAFANA_ALL_VALUE,
    `is Grafana's "All" value (${GRAFANA_ALL_VALUE}), which matches no rule or parser: omit the filter for all`
  )
  .refine((v) => !LONE_SURROGATE.test(v), LONE_SURROGATE_MESSAGE)
  // ("(none)" is one: the rows without the dimension; sql.ts.)
  .refine(
    (v) => v !== OTHER_GROUP,
    `is the series of every value a grouped answer does not name (${OTHER_GROUP}), not a value: filter on the values themselves`
  );

/** One value or a non-empty list of values. */
function oneOrMany<T extends z.ZodType>(item: T, field: FilterField, max: number) {
  return z.union([item, z.array(item).min(1, emptyList(field)).max(max)]).optional();
}

const filter = (field: FilterField) => oneOrMany(filterValue, field, LIMITS.maxFilterValues);

const KNOWN_QUERY_FIELDS: ReadonlySet<string> = new Set([...QUERY_FIELDS, ...GRAFANA_QUERY_FIELDS]);
const QUERY_FIELD_LIST = `a query's fields are ${QUERY_FIELDS.join(', ')} (and Grafana's ${GRAFANA_QUERY_FIELDS.join(', ')}, accepted)`;

/**
 * The query's fields, checked by hand rather than by a strict zod object: listing Grafana's
 * seven fields in the shape doubled the cost of validating a query, and this runs on every
 * cached answer. The zod object strips Grafana's fields (and would strip unknown ones).
 */
/** Where the query checks below report, as zod's refinement context takes issues. */
interface IssueSink {
  addIssue(issue: { code: 'custom'; path: PropertyKey[]; message: string }): void;
}

function refuseUnknownQueryFields(query: unknown, ctx: IssueSink, path: PropertyKey[]): void {
  if (query === null || typeof query !== 'object' || Array.isArray(query)) {
    return;
  }
  let unknown: string[] | null = null;
  for (const key of Object.keys(query)) {
    if (!KNOWN_QUERY_FIELDS.has(key)) {
      (unknown ??= []).push(key);
    }
  }
  if (unknown) {
    ctx.addIssue({
      code: 'custom',
      path: unknown.length === 1 ? [...path, unknown[0]] : path,
      message: unknownFields(unknown, [...KNOWN_QUERY_FIELDS], QUERY_FIELD_LIST),
    });
  }
}

/** An option the query's kind does not use would be ignored: the answer would not be what was asked. */
function refuseOptionsTheKindDoesNotUse(query: unknown, ctx: IssueSink, path: PropertyKey[]): void {
  if (query === null || typeof query !== 'object' || Array.isArray(query)) {
    return;
  }
  const kind = (query as { kind?: unknown }).kind ?? DEFAULTS.kind;
  if (typeof kind !== 'string' || !Object.hasOwn(KIND_FIELDS, kind)) {
    return; // an unknown kind is refused by its own check
  }
  const uses = KIND_FIELDS[kind as QueryKind];
  const used = OPTIONS.filter((o) => uses[o]);
  for (const option of OPTIONS) {
    if (!uses[option] && (query as Record<string, unknown>)[option] !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: [...path, option],
        message: `${/^[aeiou]/.test(kind) ? 'an' : 'a'} ${kind} query does not use ${option} (${used.length ? `its options are ${used.join(', ')}` : 'it has no options besides the filters and granularity'}): remove it`,
      });
    }
  }
}

/** The options a kind may use or not (KIND_FIELDS' columns). */
const OPTIONS = Object.keys(KIND_FIELDS.stats) as Array<keyof (typeof KIND_FIELDS)['stats']>;

const queryObject = z.object({
  refId: z
    .string()
    .min(1)
    .max(LIMITS.maxRefIdLength)
    .refine((v) => !LONE_SURROGATE.test(v), LONE_SURROGATE_MESSAGE)
    .default(DEFAULTS.refId),
  kind: oneOf(QUERY_KINDS).default(DEFAULTS.kind),
  granularity: oneOf(GRANULARITIES).default(DEFAULTS.granularity),
  metricType: filter('metricType'),
  ruleId: filter('ruleId'),
  parserId: filter('parserId'),
  ruleCategory: filter('ruleCategory'),
  sourceType: filter('sourceType'),
  status: oneOrMany(oneOf(STATUSES), 'status', STATUSES.length),
  metrics: z
    .array(oneOf(SERIES_METRICS))
    .min(1, `an empty list selects no metric: omit metrics for the default (${DEFAULTS.seriesMetrics.join(', ')})`)
    .max(SERIES_METRICS.length)
    .optional(),
  groupBy: oneOf(GROUP_BY_FIELDS).optional(),
  limit: z.number().int().min(1).max(LIMITS.maxTopRulesLimit).optional(),
  sortBy: oneOf(TOP_RULES_SORT).optional(),
  hide: z.boolean().optional(),
});

/** One query (warming and tests validate queries alone; requests check their queries' fields once, below). */
export const querySchema = z.preprocess((query, ctx) => {
  refuseUnknownQueryFields(query, ctx, []);
  refuseOptionsTheKindDoesNotUse(query, ctx, []);
  return query;
}, queryObject);

const range = z
  .strictObject(
    {
      from: z.union([z.number(), z.string().max(64)], { error: 'must be a number (epoch milliseconds) or a string' }),
      to: z.union([z.number(), z.string().max(64)], { error: 'must be a number (epoch milliseconds) or a string' }),
      raw: z.unknown().optional(),
    },
    {
      error: (iss) =>
        iss.code === 'unrecognized_keys'
          ? unknownFields(iss.keys, ['from', 'to'], 'range is {from, to}')
          : iss.code === 'invalid_type'
            ? iss.input === undefined
              ? 'is required: {"from": …, "to": …}, each epoch milliseconds, ISO-8601 or relative (now-24h)'
              : 'must be an object {"from": …, "to": …}'
            : undefined,
    }
  )
  .transform((r, ctx): QueryRequest['range'] => {
    const checked = checkRange(r.from, r.to, Date.now());
    if ('issues' in checked) {
      for (const issue of checked.issues) {
        ctx.addIssue({ code: 'custom', ...issue });
      }
      return z.NEVER;
    }
    return checked.range;
  });

/**
 * A `to` Grafana's datemath rounded up (`now-1d/d`: 23:59:59.999) ends the range on that
 * millisecond, inclusive, as Grafana's ranges do; a range here ends before its `to`, so it
 * ends one millisecond later: "yesterday" lost the rows of its last millisecond.
 */
function inclusiveEnd(to: ReturnType<typeof parseInstant>, text: number | string): ReturnType<typeof parseInstant> {
  // Only datemath rounds with "/": ISO-8601 and epoch milliseconds hold none.
  return 'ms' in to && typeof text === 'string' && text.includes('/') ? { ms: to.ms + 1 } : to;
}

/**
 * A range's rules beyond its members' types, evaluated at one "now" for both bounds (so
 * now-1h..now is exactly an hour): the range in epoch ms, or the issues by path. The query
 * fast path checks the range of a body it has seen before with this alone.
 */
export function checkRange(
  fromValue: number | string,
  toValue: number | string,
  now: number
): { range: QueryRequest['range'] } | { issues: Array<{ path: PropertyKey[]; message: string }> } {
  const from = parseInstant(fromValue, 'from', now);
  const to = inclusiveEnd(parseInstant(toValue, 'to', now), toValue);
  if ('error' in from || 'error' in to) {
    return {
      issues: [
        ...('error' in from ? [{ path: ['from'], message: from.error }] : []),
        ...('error' in to ? [{ path: ['to'], message: to.error }] : []),
      ],
    };
  }
  // Only compared once both bounds are valid: a bad bound is one error, not two.
  if (to.ms <= from.ms) {
    return { issues: [{ path: ['to'], message: 'must be after range.from' }] };
  }
  if (to.ms - from.ms > LIMITS.maxRangeDays * 86_400_000) {
    return { issues: [{ path: [], message: `must not span more than ${LIMITS.maxRangeDays} days` }] };
  }
  // An end given relative to now moves with every request (a dashboard's "to: now-5m"): read
  // in whole steps as one ending now is, or each request was a range of its own, never a hit.
  const movesWithNow = typeof toValue === 'string' && toValue.startsWith('now') && !toValue.includes('/');
  return { range: movesWithNow ? { from: from.ms, to: to.ms, movesWithNow } : { from: from.ms, to: to.ms } };
}

const REQUEST_FIELDS = ['range', 'intervalMs', 'maxDataPoints', 'compactTime', 'queries'] as const;

function unknownRequestFields(keys: readonly PropertyKey[]): string {
  const misplaced = keys.some((k) => k === 'from' || k === 'to') ? ' (put from and to inside "range")' : '';
  return unknownFields(
    keys,
    REQUEST_FIELDS,
    `a request is {range: {from, to}, intervalMs?, maxDataPoints?, compactTime?, queries: [...]}${misplaced}`
  );
}

const requestObject = z
  .strictObject(
    {
      range,
      intervalMs: z.number().int().min(1).max(LIMITS.maxIntervalMs).optional(),
      maxDataPoints: z.number().int().min(1).max(LIMITS.maxDataPoints).optional(),
      compactTime: z.boolean().optional(),
      queries: z.array(queryObject).min(1).max(LIMITS.maxQueries),
    },
    { error: (iss) => (iss.code === 'unrecognized_keys' ? unknownRequestFields(iss.keys) : undefined) }
  )
  .superRefine((req, ctx) => {
    if (!Array.isArray(req.queries)) {
      return;
    }
    const seen = new Map<string, number>();
    req.queries.forEach((q, i) => {
      if (typeof q?.refId !== 'string') {
        return;
      }
      const first = seen.get(q.refId);
      if (first !== undefined) {
        // Two queries sent without one are both "A".
        const unset = q.refId === DEFAULTS.refId ? ` (a query without refId is "${DEFAULTS.refId}")` : '';
        ctx.addIssue({
          code: 'custom',
          path: ['queries', i, 'refId'],
          message: `must be unique: ${JSON.stringify(q.refId)} is query ${first}'s too${unset}`,
        });
      } else {
        seen.set(q.refId, i);
      }
    });
  });

/**
 * Grafana's per-query interval and point count (where /api/ds/query and a target copied from a
 * dashboard carry them) count when the request has neither of its own and every query says the
 * same (those that say one): ignored, a one-day panel asking hourly points got 1,440 one-minute ones. Values the
 * request's own fields would refuse are left where they were (ignored), not refused under a field
 * the client never sent; points above the most the service draws are capped, as the plugin does.
 */
function withQueriesInterval(body: Record<string, unknown>, queries: readonly unknown[]): Record<string, unknown> {
  if (body.intervalMs !== undefined || body.maxDataPoints !== undefined) {
    return body;
  }
  // Among the queries that say one: a stats query beside a series carries no interval (a series
  // asking hourly points beside one got one-minute points, unmarked).
  const agreed = (field: 'intervalMs' | 'maxDataPoints') => {
    const values = new Set(
      queries
        .map((q) => (q !== null && typeof q === 'object' ? (q as Record<string, unknown>)[field] : undefined))
        .filter((v) => v !== undefined)
    );
    const [value] = values;
    return values.size === 1 && typeof value === 'number' && Number.isFinite(value) && value >= 1
      ? Math.round(value)
      : undefined;
  };
  const intervalMs = agreed('intervalMs');
  const maxDataPoints = agreed('maxDataPoints');
  return {
    ...body,
    ...(intervalMs !== undefined && intervalMs <= LIMITS.maxIntervalMs ? { intervalMs } : {}),
    ...(maxDataPoints !== undefined ? { maxDataPoints: Math.min(LIMITS.maxDataPoints, maxDataPoints) } : {}),
  };
}

export const queryRequestSchema = z.preprocess((body, ctx) => {
  const queries = body !== null && typeof body === 'object' ? (body as { queries?: unknown }).queries : undefined;
  if (Array.isArray(queries) && queries.length <= LIMITS.maxQueries) {
    queries.forEach((q, i) => {
      refuseUnknownQueryFields(q, ctx, ['queries', i]);
      refuseOptionsTheKindDoesNotUse(q, ctx, ['queries', i]);
    });
    return withQueriesInterval(body as Record<string, unknown>, queries);
  }
  return body;
}, requestObject);

/** What an invalidation names, one per request: each its own schema, so an error speaks of the one sent. */
export const invalidateTargets = {
  ruleId: z.strictObject({ ruleId: filterValue }),
  parserId: z.strictObject({ parserId: filterValue }),
  all: z.strictObject({ all: z.literal(true, { error: 'must be true (it invalidates every cached answer)' }) }),
};
export const invalidateSchema = z.union([invalidateTargets.ruleId, invalidateTargets.parserId, invalidateTargets.all]);

/**
 * The target an invalidation object names, or what is wrong with its fields: none, two, or one
 * unknown (zod's union would answer each of these with every branch's complaint).
 */
export function invalidateTarget(body: object): keyof typeof invalidateTargets | string {
  const targets = Object.keys(invalidateTargets);
  const keys = Object.keys(body);
  const unknown = keys.filter((k) => !targets.includes(k));
  if (unknown.length) {
    return unknownFields(unknown, targets, 'send one of ruleId, parserId or all');
  }
  if (keys.length > 1) {
    return `names ${keys.join(' and ')}: one target per request (send one request for each)`;
  }
  return keys.length ? (keys[0] as keyof typeof invalidateTargets) : 'names nothing to invalidate';
}

// ---- The schemas and the contract's types must describe the same values ----

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
/** Fails to compile (with the pair's name in the error) when a schema and its contract type drift apart. */
function inStep<T extends Record<string, true>>(checks: T): T {
  return checks;
}
inStep({
  queryInput: true as Equal<z.input<typeof queryObject>, Omit<RuleperfQueryInput, GrafanaQueryField>>,
  query: true as Equal<z.output<typeof queryObject>, RuleperfQuery>,
  requestInput: true as Equal<Omit<z.input<typeof requestObject>, 'queries'>, Omit<QueryRequestInput, 'queries'>>,
  request: true as Equal<z.output<typeof requestObject>, QueryRequest>,
  invalidate: true as Equal<z.output<typeof invalidateSchema>, InvalidateRequest>,
});
