/**
 * A budget per request, checked before any work: the rows the database may return and the
 * values the frames may hold, estimated from each query's kind, covered range, bucket width
 * and the number of values its grouping can take. A request over budget is refused (400)
 * naming the limit, the estimate and how to narrow it — so no request can make the service
 * fill gigabytes of frames, and the heaviest accepted answer has a known bound.
 */
import { KINDS } from './kinds';
import type { AnswerSize, Cardinality } from './kinds/types';
import type { NormalizedQuery } from './normalize';

export const BUDGET = {
  /** Result rows per request, over all its queries (each row is a few hundred bytes while it is read). */
  maxRows: 100_000,
  /** Values in the frames of one request (about 10 bytes of JSON each). */
  maxCells: 1_000_000,
  /**
   * Frames of one request: each carries its fields, labels, notices and meta (up to a few KB
   * whatever its values), so 50 queries of 1,001 series each would be 50 MB of meta alone.
   * Two series limits of 1,000 fit, as does every panel of the provisioned dashboard many times.
   */
  maxFrames: 2_002,
} as const;

export class BudgetExceeded extends Error {
  constructor(
    message: string,
    readonly details: Array<{ path: string; message: string }>
  ) {
    super(message);
  }
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

function describe(q: NormalizedQuery, size: AnswerSize): string {
  if (q.bucketMs) {
    const series = size.frames > 1 ? `, ${fmt(size.frames)} series` : '';
    return `${q.kind}: up to ${fmt(size.rows)} points (buckets of ${q.bucketMs / 60_000} min over the range, × series) and ${fmt(size.cells)} values${series}`;
  }
  return `${q.kind}: up to ${fmt(size.rows)} rows and ${fmt(size.cells)} values`;
}

/** Throws BudgetExceeded when the queries together could exceed the budget. */
export function checkBudget(queries: Array<{ refId: string; q: NormalizedQuery }>, cardinality: Cardinality): void {
  const sizes = queries.map(({ refId, q }) => ({ refId, q, size: KINDS[q.kind].size(q, cardinality) }));
  const rows = sizes.reduce((n, s) => n + s.size.rows, 0);
  const cells = sizes.reduce((n, s) => n + s.size.cells, 0);
  const frames = sizes.reduce((n, s) => n + s.size.frames, 0);
  if (rows <= BUDGET.maxRows && cells <= BUDGET.maxCells && frames <= BUDGET.maxFrames) {
    return;
  }
  const over =
    rows > BUDGET.maxRows
      ? `${fmt(rows)} result rows (limit ${fmt(BUDGET.maxRows)})`
      : cells > BUDGET.maxCells
        ? `${fmt(cells)} values (limit ${fmt(BUDGET.maxCells)})`
        : `${fmt(frames)} series (limit ${fmt(BUDGET.maxFrames)})`;
  throw new BudgetExceeded(
    `this request could return ${over}; narrow it: a coarser interval (larger intervalMs or smaller maxDataPoints), a shorter range, fewer metrics, a filter, a smaller limit on groups, or fewer queries per request`,
    sizes.map((s) => ({ path: `queries.${s.refId}`, message: describe(s.q, s.size) }))
  );
}

/**
 * Values a grouping can take, as far as the schema guarantees: status has three (a CHECK
 * constraint); any other dimension may hold values no dimension table lists, so only the
 * series limit bounds it.
 */
export const schemaCardinality: Cardinality = (field) => (field === 'status' ? 3 : Infinity);
