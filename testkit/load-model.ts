/**
 * The dashboard traffic model: simulated Grafana users, each opening the provisioned
 * Rule Performance dashboard and refreshing it every few seconds. Every refresh sends one
 * request per panel with a now-relative range computed at that moment (so ranges move
 * with the clock, as Grafana's do). Some users pick a category instead of "All".
 */
import type { QueryRequestInput, RuleperfQuery } from '../server/contract';
import type { WarmItem } from '../server/warming/warmer';

export interface Refresh {
  at: number; // ms since the start of the run
  user: number;
}

/** Open-loop schedule: user u refreshes at offset_u + k * period, offsets spread evenly. */
export function refreshSchedule(users: number, periodMs: number, durationMs: number): Refresh[] {
  const out: Refresh[] = [];
  for (let u = 0; u < users; u++) {
    const offset = (u * periodMs) / users;
    for (let t = offset; t < durationMs; t += periodMs) {
      out.push({ at: t, user: u });
    }
  }
  return out.sort((a, b) => a.at - b.at);
}

/** A user's variable choice: most keep "All"; every fourth user filters one category. */
export function userFilters(user: number, categories: string[]): Partial<RuleperfQuery> {
  if (user % 4 !== 3 || categories.length === 0) {
    return {};
  }
  return { ruleCategory: categories[(user >> 2) % categories.length] };
}

/** The panel requests one dashboard refresh sends at `now`. */
export function dashboardRequests(
  panels: WarmItem[],
  now: number,
  filters: Partial<RuleperfQuery>
): QueryRequestInput[] {
  return panels.map((p) => ({
    range: { from: now - p.spanMs, to: now },
    intervalMs: Math.max(1000, Math.round(p.spanMs / (p.maxDataPoints ?? 1000) / 1000) * 1000),
    maxDataPoints: p.maxDataPoints ?? 1000,
    // As the plugin asks (src/request.ts): time columns as steps.
    compactTime: true,
    queries: [
      {
        ...p.query,
        ...(p.query.kind === 'errorBreakdown' ||
        p.query.kind === 'topRules' ||
        p.query.kind === 'stats' ||
        p.query.kind === 'timeseries'
          ? filters
          : {}),
      },
    ],
  }));
}

/**
 * The ADR's cache key (exact millisecond timestamps). It leaves out most of the query
 * (kind's options, metrics, group-by, limit), so different panels can share a key: those
 * are collisions (a wrong answer served), not hits.
 */
export function adrKey(request: QueryRequestInput): string {
  const q = request.queries[0];
  return [
    'aggregate',
    q.metricType ?? 'all',
    q.ruleId ?? 'all',
    q.parserId ?? 'all',
    q.ruleCategory ?? 'all',
    q.kind,
    new Date(Number(request.range.from)).toISOString(),
    new Date(Number(request.range.to)).toISOString(),
  ].join(':');
}

/**
 * Replays a time-ordered request stream through a TTL cache keyed by `key`: a lookup that
 * finds an entry for the same question is a hit; one that finds another question's entry
 * under the same key is a collision.
 */
export function simulatedHitRate(
  stream: Array<{ at: number; key: string; question: string }>,
  ttlMs: number
): { hitRate: number; collisionRate: number } {
  const entries = new Map<string, { until: number; question: string }>();
  let hits = 0;
  let collisions = 0;
  for (const r of stream) {
    const e = entries.get(r.key);
    if (e && e.until > r.at) {
      if (e.question === r.question) {
        hits++;
      } else {
        collisions++;
      }
    } else {
      entries.set(r.key, { until: r.at + ttlMs, question: r.question });
    }
  }
  return {
    hitRate: stream.length ? hits / stream.length : 0,
    collisionRate: stream.length ? collisions / stream.length : 0,
  };
}
