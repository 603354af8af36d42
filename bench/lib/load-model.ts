/**
 * The dashboard traffic model: simulated Grafana users, each opening the provisioned
 * Rule Performance dashboard and refreshing it every few seconds. Every refresh sends one
 * request per panel with a now-relative range computed at that moment (so ranges move
 * with the clock, as Grafana's do). Some users pick a category instead of "All".
 */
import type { QueryRequestInput, RuleperfQuery } from '../../server/contract';
import type { WarmItem } from '../../server/cache/warmer';

export interface Refresh {
  at: number; // ms since the start of the run
  user: number;
}

/** Open-loop schedule: user u refreshes at offset_u + k * period, offsets spread evenly. */
export function refreshSchedule(users: number, periodMs: number, durationMs: number): Refresh[] {
  const out: Refresh[] = [];
  for (let u = 0; u < users; u++) {
    const offset = (u * periodMs) / users;
    for (let t = offset; t < durationMs; t += periodMs) out.push({ at: t, user: u });
  }
  return out.sort((a, b) => a.at - b.at);
}

/** A user's variable choice: most keep "All"; every fourth user filters one category. */
export function userFilters(user: number, categories: string[]): Partial<RuleperfQuery> {
  if (user % 4 !== 3 || categories.length === 0) return {};
  return { ruleCategory: categories[(user >> 2) % categories.length] };
}

/** The panel requests one dashboard refresh sends at `now`. */
export function dashboardRequests(panels: WarmItem[], now: number, filters: Partial<RuleperfQuery>): QueryRequestInput[] {
  return panels.map((p) => ({
    range: { from: now - p.spanMs, to: now },
    intervalMs: Math.max(1000, Math.round(p.spanMs / (p.maxDataPoints ?? 1000) / 1000) * 1000),
    maxDataPoints: p.maxDataPoints ?? 1000,
    queries: [{ ...p.query, ...(p.query.kind === 'errorBreakdown' || p.query.kind === 'topRules' || p.query.kind === 'stats' || p.query.kind === 'timeseries' ? filters : {}) }],
  }));
}

/** The ADR's cache key (exact millisecond timestamps), to count the hits that keying would get. */
export function adrKey(request: QueryRequestInput): string {
  const q = request.queries[0];
  return ['aggregate', q.metricType ?? 'all', q.ruleId ?? 'all', q.parserId ?? 'all', q.ruleCategory ?? 'all', q.kind, new Date(Number(request.range.from)).toISOString(), new Date(Number(request.range.to)).toISOString()].join(':');
}

/** Hit rate of a TTL cache keyed by `key` over a request stream (time-ordered). */
export function simulatedHitRate(stream: Array<{ at: number; key: string }>, ttlMs: number): number {
  const expires = new Map<string, number>();
  let hits = 0;
  for (const r of stream) {
    const until = expires.get(r.key);
    if (until !== undefined && until > r.at) hits++;
    else expires.set(r.key, r.at + ttlMs);
  }
  return stream.length ? hits / stream.length : 0;
}
