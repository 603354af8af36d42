/**
 * SQL building blocks shared by the query kinds. An answer is assembled from the pieces of
 * its plan (plan.ts): each piece yields rows of one shape (bucket, group, counts, sums, a
 * latency sketch) from a rollup or from raw rows; one outer query adds counts and sums per
 * output group and merges the sketches into one histogram per group, which the service
 * reads percentiles from (never percentiles of percentiles). Identifiers come only from
 * the rollup registry and fixed lists; every value is a parameter.
 */
import { NONE_GROUP, type FilterField } from '../contract';
import { COLUMN_OF } from './columns';
import type { NormalizedQuery } from './normalize';
import type { Piece } from './plan';
import { representativeSql } from './sketch';
import { NO_NATIVE, type NativeFunctions } from '../db/native';

export interface Statement {
  text: string;
  values: unknown[];
}

export class Params {
  readonly values: unknown[] = [];
  /** Instants already added: every instant is compared with a timestamptz column, so one parameter serves each use of it. */
  private readonly instants = new Map<number, string>();

  add(value: unknown): string {
    const instant = value instanceof Date ? value.getTime() : null;
    const known = instant === null ? undefined : this.instants.get(instant);
    if (known) {
      return known;
    }
    this.values.push(value);
    const name = `$${this.values.length}`;
    if (instant !== null) {
      this.instants.set(instant, name);
    }
    return name;
  }
}

export const ident = (name: string) => {
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) {
    throw new Error(`refusing identifier ${JSON.stringify(name)}`);
  }
  return `"${name}"`;
};

/**
 * What each piece yields per row besides bucket and group: every measure with the fine
 * sketch (answers with percentiles), every measure but the sketch (answers without them:
 * merging sketches nobody reads is most of a query's work), min, max and the coarse sketch
 * (keys / 16, for bounding percentiles cheaply), or min, max and rank keys (the cheapest
 * bounds; computed on the fly where a rollup does not store them).
 */
export type SourceShape = 'fine' | 'counts' | 'coarse' | 'rankKeys';

/** A measure as [expression over raw rows, expression over a rollup row, column name]. */
type Measure = readonly [string, string, string];

const MEASURES: Record<SourceShape, Measure[]> = {
  fine: [
    ['count(*)', 'execution_count', 'execution_count'],
    ['sum(execution_time_ms)', 'exec_time_sum', 'exec_time_sum'],
    ['min(execution_time_ms)', 'exec_time_min', 'exec_time_min'],
    ['max(execution_time_ms)', 'exec_time_max', 'exec_time_max'],
    ['ruleperf_sketch(ruleperf_sketch_key(execution_time_ms))', 'latency_sketch', 'latency_sketch'],
    ['sum(records_processed)::bigint', 'records_processed', 'records_processed'],
    ['sum(records_failed)::bigint', 'records_failed', 'records_failed'],
    ["count(*) FILTER (WHERE status = 'ERROR')", 'error_count', 'error_count'],
    ["count(*) FILTER (WHERE status = 'SUCCESS')", 'success_count', 'success_count'],
    ["count(*) FILTER (WHERE status = 'TIMEOUT')", 'timeout_count', 'timeout_count'],
  ],
  counts: [],
  coarse: [
    ['min(execution_time_ms)', 'exec_time_min', 'exec_time_min'],
    ['max(execution_time_ms)', 'exec_time_max', 'exec_time_max'],
    ['ruleperf_sketch(ruleperf_sketch_key(execution_time_ms) / 16)', 'latency_coarse', 'latency_sketch'],
  ],
  rankKeys: [
    ['count(*)', 'execution_count', 'execution_count'],
    ['min(execution_time_ms)', 'exec_time_min', 'exec_time_min'],
    ['max(execution_time_ms)', 'exec_time_max', 'exec_time_max'],
    [
      'ruleperf_sketch_rank_keys(ruleperf_sketch(ruleperf_sketch_key(execution_time_ms)))',
      'latency_rank_keys',
      'rank_keys',
    ],
  ],
};
MEASURES.counts = MEASURES.fine.filter(([, , name]) => name !== 'latency_sketch');

/** The measure columns of a source row of this shape, in order (for re-selecting them). */
export function measureColumns(shape: SourceShape): string {
  return MEASURES[shape].map(([, , name]) => name).join(', ');
}

export interface SourceOptions {
  shape: SourceShape;
  /** Output bucket width (timeseries), or null for one bucket over the whole range. */
  bucketMs: number | null;
  /** The dimension rows are grouped by, or null. */
  group: FilterField | null;
  /** Filters to apply (default: the query's). */
  filters?: Partial<Record<FilterField, string[]>>;
  /** Dimensions that must not be NULL (top rules reads rules only). */
  notNull?: readonly FilterField[];
  /** One more condition on every piece (fixed SQL from the kinds, never input). */
  extraCondition?: string;
}

/** The time ranges read from one table, adjacent ones joined. */
function rangesOf(pieces: readonly Piece[]): Array<{ from: number; to: number }> {
  const ranges = pieces.map((piece) => ({ from: piece.from, to: piece.to })).sort((a, b) => a.from - b.from);
  const joined: Array<{ from: number; to: number }> = [];
  for (const r of ranges) {
    const last = joined[joined.length - 1];
    if (last && r.from <= last.to) {
      last.to = Math.max(last.to, r.to);
    } else {
      joined.push({ ...r });
    }
  }
  return joined;
}

/**
 * The rows of every piece, in one shape: bucket, grp, then the shape's measures. The pieces
 * that read one table are one SELECT over their time ranges (a bitmap OR of index scans, as
 * separate SELECTs would scan); rollups come first, and the first SELECT names the columns
 * (UNION ALL takes the names from it), so the statement shows each measure list once.
 */
export function sourceRows(q: NormalizedQuery, pieces: readonly Piece[], p: Params, o: SourceOptions): string {
  const width = o.bucketMs ? p.add(`${o.bucketMs / 1000} seconds`) : null;
  const notNull = new Set(o.notNull ?? []);
  const filters = o.filters ?? q.filters;
  // A dimension that must not be NULL needs no placeholder group.
  const grp = o.group
    ? notNull.has(o.group)
      ? ident(COLUMN_OF[o.group])
      : `coalesce(${ident(COLUMN_OF[o.group])}, '${NONE_GROUP}')`
    : "''";
  const conditions: string[] = [];
  for (const [field, values] of Object.entries(filters) as Array<[FilterField, string[]]>) {
    const column = ident(COLUMN_OF[field]);
    const equal = values.length === 1 ? `${column} = ${p.add(values[0])}` : `${column} = ANY(${p.add(values)}::text[])`;
    // "(none)" is the group of rows without the dimension (and of any spelled so, as the
    // grouping's coalesce puts them there): as a filter value it keeps both.
    conditions.push(values.includes(NONE_GROUP) && !notNull.has(field) ? `(${equal} OR ${column} IS NULL)` : equal);
  }
  // A filter keeps NULL out of these (no IS NULL above).
  for (const field of notNull) {
    if (!filters[field]) {
      conditions.push(`${ident(COLUMN_OF[field])} IS NOT NULL`);
    }
  }
  if (o.extraCondition) {
    conditions.push(o.extraCondition);
  }
  const tables = new Map<string, Piece[]>();
  for (const piece of [...pieces].sort((a, b) => (a.rollup ? 0 : 1) - (b.rollup ? 0 : 1))) {
    const table = piece.rollup?.name ?? 'metrics';
    tables.set(table, [...(tables.get(table) ?? []), piece]);
  }
  let named = true;
  const selects = [...tables.values()].map((group) => {
    const rollup = group[0].rollup;
    const time = rollup ? 'bucket' : 'time';
    const spans = rangesOf(group).map(
      (r) => `${time} >= ${p.add(new Date(r.from))} AND ${time} < ${p.add(new Date(r.to))}`
    );
    const when = spans.length === 1 ? spans[0] : `(${spans.map((t) => `(${t})`).join(' OR ')})`;
    const bucket = width ? `date_bin(${width}::interval, ${time}, '1970-01-01Z')` : 'NULL::timestamptz';
    // Rank keys are computed from the sketch where a rollup does not store them.
    const measures = MEASURES[o.shape].map(
      ([raw, stored, name]) =>
        [
          rollup
            ? name === 'rank_keys' && !rollup.rankKeys
              ? 'ruleperf_sketch_rank_keys(latency_sketch)'
              : stored
            : raw,
          name,
        ] as const
    );
    const column = ([expr, name]: readonly [string, string]) => (named && expr !== name ? `${expr} AS ${name}` : expr);
    const list = [column([bucket, 'bucket']), column([grp, 'grp']), ...measures.map(column)].join(', ');
    named = false;
    const where = [when, ...conditions].join(' AND ');
    return rollup
      ? `SELECT ${list}\n    FROM ${ident(rollup.name)} WHERE ${where}`
      : `SELECT ${list}\n    FROM metrics WHERE ${where} GROUP BY 1, 2`;
  });
  return selects.join('\n  UNION ALL\n  ');
}

/** Output grouping columns over the source rows. */
export function groupColumns(o: { bucketMs: number | null; group: FilterField | null }): string[] {
  return [...(o.bucketMs ? ['bucket'] : []), ...(o.group ? ['grp'] : [])];
}

/** The percentile levels every merged answer reads, and the columns that carry them. */
export const PERCENTILE_LEVELS = [0.5, 0.95, 0.99] as const;
export const PERCENTILE_COLUMNS = ['p50', 'p95', 'p99'] as const;

/** The figures every merged answer row has (mergedSelect's sums), besides its groups and percentiles. */
const SUM_COLUMNS = [
  'execution_count',
  'exec_time_sum',
  'exec_time_min',
  'exec_time_max',
  'records_processed',
  'records_failed',
  'error_count',
  'success_count',
  'timeout_count',
];

/**
 * Counts, sums, minima and maxima per output group over CTE `src`, groups with no execution
 * dropped; with `withPercentiles`, `p50`, `p95` and `p99` are read off the group's merged
 * latency histogram, interpolated as percentile_cont interpolates between the values at the
 * ranks around h = q·(n − 1) (clamp them to [min, max] on use). With `keep`, only those
 * columns (and the groups) are returned: the planner then skips the other aggregates, and the
 * rows cross the wire and are parsed without them (a 24-hour per-rule timeseries is 1,440
 * rows); a `bucket` group comes back as epoch milliseconds (float8). The result is a SELECT
 * the kinds wrap (order, limit, names); its subquery `a` holds the groups.
 */
export function mergedSelect(
  g: string[],
  withPercentiles: boolean,
  native: NativeFunctions = NO_NATIVE,
  keep?: readonly string[]
): string {
  const cols = g.length ? `${g.join(', ')}, ` : '';
  const wanted = [...g, ...(keep ?? [...SUM_COLUMNS, ...(withPercentiles ? PERCENTILE_COLUMNS : [])])];
  // Buckets as epoch milliseconds: a float8 parses as a number, where a timestamptz is a date
  // string matched by a regular expression (0.6 ms for the 1,440 of a day by minute). The
  // percentiles as three float8 columns of the group's array (`pct`, in subquery `from`): a
  // float8 parses with parseFloat, where an array's text is split and converted (1 ms for the
  // 720 rows of a 24-hour per-rule timeseries).
  const select = (from: 'a' | 'p') =>
    wanted
      .map((c) => {
        const level = (PERCENTILE_COLUMNS as readonly string[]).indexOf(c);
        return c === 'bucket'
          ? `date_part('epoch', a.bucket) * 1000 AS bucket`
          : level >= 0
            ? `${from}.pct[${level + 1}] AS ${c}`
            : `a.${c}`;
      })
      .join(', ');
  const out = select('a');
  const sums = `SELECT ${cols}sum(execution_count)::bigint AS execution_count, sum(exec_time_sum) AS exec_time_sum,
    min(exec_time_min) AS exec_time_min, max(exec_time_max) AS exec_time_max,
    sum(records_processed)::bigint AS records_processed, sum(records_failed)::bigint AS records_failed,
    sum(error_count)::bigint AS error_count, sum(success_count)::bigint AS success_count, sum(timeout_count)::bigint AS timeout_count`;
  const grouping = `\n  FROM src${g.length ? ` GROUP BY ${g.join(', ')}` : ''}`;
  const agg = sums + grouping;
  if (!withPercentiles) {
    return `SELECT ${out} FROM (${agg}) a WHERE a.execution_count > 0`;
  }
  if (native.sketches) {
    // The same figures, the merge and interpolation done in C (native/ruleperf_native.c); as an
    // aggregate where the build has one (1.4), without a row and an array per group.
    const pct = native.percentilesAgg
      ? 'ruleperf_native_percentiles_agg(latency_sketch)'
      : 'ruleperf_native_percentiles(array_agg(ROW(latency_sketch)::ruleperf_sketch_part))';
    return `SELECT ${out} FROM (${sums},
    ${pct} AS pct${grouping}) a WHERE a.execution_count > 0`;
  }
  // Per group: the histogram (key k, count c, value v), each key's count of values below it,
  // n values in all, and each level's rank h = q·(n − 1); then, in one pass over the group's
  // keys, the values at the ranks around each h (one pair of filtered minima per level, rather
  // than a row per key and level: a third of the rows to aggregate).
  const levels = PERCENTILE_LEVELS.map((q, i) => ({ q, h: `h${i + 1}`, lo: `lo${i + 1}`, hi: `hi${i + 1}` }));
  const at = (round: 'floor' | 'ceil', h: string) =>
    `min(v) FILTER (WHERE before <= ${round}(${h}) AND ${round}(${h}) < before + c)`;
  const pct = `SELECT ${cols}ARRAY[${levels.map((l) => `${l.lo} + (${l.h} - floor(${l.h})) * (${l.hi} - ${l.lo})`).join(', ')}] AS pct FROM (
    SELECT ${cols}${levels.map((l) => l.h).join(', ')},
      ${levels.map((l) => `${at('floor', l.h)} AS ${l.lo}, ${at('ceil', l.h)} AS ${l.hi}`).join(',\n      ')}
    FROM (SELECT *, ${levels.map((l) => `${l.q} * (n - 1) AS ${l.h}`).join(', ')} FROM (
        SELECT *, ${representativeSql('k')} AS v, sum(c) OVER (w ORDER BY k) - c AS before, sum(c) OVER w AS n
        FROM (SELECT ${cols}(e >> 32)::int AS k, sum(e & 4294967295)::float8 AS c FROM src, unnest(latency_sketch) AS e GROUP BY ${cols}k) hist
        WINDOW w AS (${g.length ? `PARTITION BY ${g.join(', ')}` : ''})) cum) ranks
    GROUP BY ${cols}${levels.map((l) => l.h).join(', ')}) levels`;
  const join = g.length ? g.map((c) => `p.${c} = a.${c}`).join(' AND ') : 'true';
  return `SELECT ${select('p')} FROM (${agg}) a LEFT JOIN (${pct}) p ON ${join} WHERE a.execution_count > 0`;
}

/** The values of a list parameter the inspector shows; the rest are counted. */
const SHOWN_LIST_VALUES = 20;

/**
 * A parameter as the inspector shows it: instants in ISO 8601 (without zero milliseconds), other
 * values as JSON, a long list as its first values and how many it holds (500 filter values of 200
 * characters would be 100 KB in every answer's meta).
 */
function shownValue(v: unknown): string {
  if (v instanceof Date) {
    return v.toISOString().replace('.000Z', 'Z');
  }
  if (Array.isArray(v) && v.length > SHOWN_LIST_VALUES) {
    return `${JSON.stringify(v.slice(0, SHOWN_LIST_VALUES)).slice(0, -1)}, …] (${v.length} values)`;
  }
  return JSON.stringify(v);
}

/** A statement run once per set of values (the same text each time), shown once. */
export interface RepeatedStatement extends Statement {
  /** The values of every run, the first one's being `values`. */
  runs: unknown[][];
}

/** A statement as the query inspector shows it: the title, the text, then the parameters on one line (per run, when it ran more than once). */
export function showStatement(s: Statement | RepeatedStatement, title?: string): string {
  const runs = 'runs' in s ? s.runs : [s.values];
  const param = (values: unknown[], i: number) => `$${i + 1} = ${shownValue(values[i])}`;
  const indexes = runs[0].map((_, i) => i);
  const whole = (v: unknown) => (v instanceof Date ? v.getTime() : JSON.stringify(v)); // lists compared whole
  const same = indexes.filter((i) => runs.every((r) => whole(r[i]) === whole(runs[0][i])));
  const differ = indexes.filter((i) => !same.includes(i));
  const lines =
    runs.length === 1
      ? indexes.length
        ? [`-- ${indexes.map((i) => param(runs[0], i)).join(', ')}`]
        : []
      : [
          ...runs.map((r, n) => `-- run ${n + 1}: ${differ.map((i) => param(r, i)).join(', ')}`),
          ...(same.length ? [`-- every run: ${same.map((i) => param(runs[0], i)).join(', ')}`] : []),
        ];
  return [...(title ? [`-- ${title}`] : []), s.text, ...lines].join('\n');
}
