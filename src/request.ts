/** The POST /api/v1/query body the plugin sends for already interpolated queries. */
import type { DataQueryRequest, TimeRange } from '@grafana/data';

import { FILTER_FIELDS, LIMITS, type QueryRequestInput, type RuleperfQueryInput } from './contract';
import { KIND_FIELDS, QUERY_DEFAULTS } from './defaults';
import type { RuleperfQuery } from './types';

/**
 * Grafana's ranges include their end, and one rounded by its date math (`now-1d/d`) ends on its
 * unit's last millisecond ("Yesterday" ends 23:59:59.999); the service's ranges end before `to`.
 * Such an end is sent as the next millisecond, the unit's end: sent as it is, the rows of that
 * last millisecond were left out with nothing to say so. Other ends are sent as they are.
 */
export function exclusiveEnd(range: Pick<TimeRange, 'to' | 'raw'>): number {
  const to = range.to.valueOf();
  const rounded = typeof range.raw?.to === 'string' && range.raw.to.includes('/');
  return rounded && to % 1000 === 999 ? to + 1 : to;
}

/**
 * An end Grafana holds as time relative to now, unrounded (`now-5m`), sent as written: the
 * service then knows the range moves with time and reads it in whole minutes, as it does a
 * range ending now, so the next refresh is the same cached answer (sent as milliseconds, a
 * dashboard's "to: now-5m" was an absolute range each time, never a cache hit). The service
 * resolves it with its own clock. `now` itself needs nothing: a range ending now is known.
 */
const RELATIVE = /^now([+-]\d+[smhdwMy])+$/;

function relativeEnd(raw: unknown): string | undefined {
  return typeof raw === 'string' && RELATIVE.test(raw) ? raw : undefined;
}

export function buildQueryRequest(
  queries: RuleperfQuery[],
  request: Pick<DataQueryRequest<RuleperfQuery>, 'range' | 'intervalMs' | 'maxDataPoints'>,
  compactTime = true
): QueryRequestInput {
  const body: QueryRequestInput = {
    range: relativeRange(request.range) ?? { from: request.range.from.valueOf(), to: exclusiveEnd(request.range) },
    // Time columns as start + step (timeColumns.ts expands them): a third of a dashboard's bytes.
    ...(compactTime ? { compactTime } : {}),
    queries: queries.map(toContractQuery),
  };
  if (request.intervalMs && request.intervalMs > 0) {
    body.intervalMs = Math.max(1, Math.round(request.intervalMs));
  }
  if (request.maxDataPoints && request.maxDataPoints > 0) {
    body.maxDataPoints = Math.min(LIMITS.maxDataPoints, Math.max(1, Math.round(request.maxDataPoints)));
  }
  return body;
}

/** Both ends as written when the end is relative to now (the start too when it is, so the span is exact), else undefined. */
function relativeRange(range: Pick<TimeRange, 'from' | 'raw'>): QueryRequestInput['range'] | undefined {
  const to = relativeEnd(range.raw?.to);
  return to ? { from: relativeEnd(range.raw?.from) ?? range.from.valueOf(), to } : undefined;
}

/** Items a query adds to a request's lists: itself (an item of `queries`) and each value of its lists. */
export function listItems(query: RuleperfQueryInput): number {
  return 1 + Object.values(query).reduce((n: number, v) => n + (Array.isArray(v) ? v.length : 0), 0);
}

/**
 * The queries in order, in as few requests as keep each within the service's list items in all
 * (LIMITS.maxListItems): a panel of 21 queries on one variable with 500 values ticked is two
 * requests, not one refused whole. A query over the limit on its own goes alone (the service
 * names what is wrong with it).
 */
export function requestGroups<T>(queries: T[], items: (query: T) => number, max: number = LIMITS.maxListItems): T[][] {
  const groups: T[][] = [];
  let current: T[] = [];
  let held = 0;
  for (const query of queries) {
    const n = items(query);
    if (current.length > 0 && held + n > max) {
      groups.push(current);
      [current, held] = [[], 0];
    }
    current.push(query);
    held += n;
  }
  if (current.length > 0) {
    groups.push(current);
  }
  return groups;
}

/** One query as the contract wants it: filters that are set, and only the options its kind uses. */
export function toContractQuery(query: RuleperfQuery): RuleperfQueryInput {
  const kind = query.kind ?? QUERY_DEFAULTS.kind;
  const uses = KIND_FIELDS[kind];
  const out: RuleperfQueryInput = {
    refId: query.refId,
    kind,
    granularity: query.granularity ?? QUERY_DEFAULTS.granularity,
  };
  for (const field of FILTER_FIELDS) {
    const value = query[field];
    if (value !== undefined && value !== '' && !(Array.isArray(value) && value.length === 0)) {
      // `status` is checked against SUCCESS|ERROR|TIMEOUT by the service, which names a bad value in its error.
      (out as Record<string, unknown>)[field] = value;
    }
  }
  if (uses.metrics && query.metrics?.length) {
    out.metrics = query.metrics;
  }
  if (uses.groupBy && query.groupBy) {
    out.groupBy = query.groupBy;
  }
  if (uses.limit && typeof query.limit === 'number' && Number.isFinite(query.limit)) {
    out.limit = query.limit;
  }
  if (uses.sortBy && query.sortBy) {
    out.sortBy = query.sortBy;
  }
  return out;
}
