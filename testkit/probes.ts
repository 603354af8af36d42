/** Requests that tests and benchmarks send to check the request budget. */
import { SERIES_METRICS, type QueryRequestInput, type SeriesMetric } from '../server/contract';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** The request that once crashed an instance (issue 15): 400 days, a 1 ms interval, ten hourly series per rule of every metric. */
export const crashProbe = (now = Date.now(), metrics: readonly SeriesMetric[] = SERIES_METRICS): QueryRequestInput => ({
  range: { from: now - 400 * DAY, to: now },
  intervalMs: 1,
  maxDataPoints: 10_000,
  queries: Array.from({ length: 10 }, (_, i) => ({
    refId: `Q${i}`,
    kind: 'timeseries',
    groupBy: 'ruleId',
    granularity: 'hourly',
    metrics: [...metrics],
  })),
});

/**
 * At the edge of the result budget: 30 days (or `days`) of hourly points for the 100 busiest
 * rules and "(other)", every metric. On a large history the work limit (histogram values
 * merged) refuses it first; the overload bench then asks for the longest range it accepts.
 */
export const heaviestAccepted = (now = Date.now(), days = 30): QueryRequestInput => ({
  range: { from: now - days * DAY, to: now },
  intervalMs: HOUR,
  maxDataPoints: 1000,
  queries: [{ refId: 'A', kind: 'timeseries', groupBy: 'ruleId', limit: 100, metrics: [...SERIES_METRICS] }],
});

/**
 * The largest answer the value budget accepts without merging histograms (so the work limit
 * never refuses it): 90 days of 3-hour points for the 100 busiest rules and "(other)", the nine
 * metrics that are sums — 728,000 values, about 4.3 MB of JSON. `shiftMs` moves the range, so a
 * burst of them is all distinct (uncached) questions.
 */
export const heaviestValues = (now = Date.now(), shiftMs = 0): QueryRequestInput => ({
  range: { from: now - shiftMs - 90 * DAY, to: now - shiftMs },
  intervalMs: HOUR,
  maxDataPoints: 900,
  queries: [
    {
      refId: 'A',
      kind: 'timeseries',
      groupBy: 'ruleId',
      limit: 100,
      metrics: SERIES_METRICS.filter((m) => !/^p\d+ExecutionTimeMs$/.test(m)),
    },
  ],
});
