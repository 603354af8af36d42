/**
 * Warms the cache on start and every few minutes with what dashboards will ask next:
 * the provisioned dashboards' targets (at their default range, variables at "All", and
 * once per value of each short variable such as a category, which users switch between),
 * plus the most requested queries seen recently on this instance, replayed with their
 * now-relative range moved to the present.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { VARIABLE_NAMES, type QueryRequest, type RuleperfQuery, type VariableName } from '../contract';
import { querySchema } from '../http/validation';
import { FIXED_UNITS } from '../http/instant';
import { movingStep } from '../query/range';

export interface WarmItem {
  query: RuleperfQuery;
  spanMs: number;
  intervalMs?: number;
  maxDataPoints?: number;
}

/** "now-24h" → 24 h in ms; anything else (absolute times, now/d) → null. */
export function relativeSpan(from: string, to = 'now'): number | null {
  const m = /^now-(\d+)([smhdw])$/.exec(from);
  if (!m || to !== 'now') {
    return null;
  }
  return Number(m[1]) * FIXED_UNITS[m[2]];
}

/** Drops template-variable references: a dashboard's default "All" means no filter. */
function withoutVariables(target: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(target)) {
    if (typeof v === 'string' && v.includes('$')) {
      continue;
    }
    if (Array.isArray(v) && v.some((x) => typeof x === 'string' && x.includes('$'))) {
      continue;
    }
    out[k] = v;
  }
  return out;
}

interface Panel {
  targets?: Array<Record<string, unknown>>;
  panels?: Panel[];
  maxDataPoints?: number;
  datasource?: { uid?: string; type?: string };
}

interface DashboardVariable {
  name: string;
  type?: string;
  query?: unknown;
}

/** Variables with at most this many values are warmed value by value. */
export const WARM_VARIABLE_MAX_VALUES = 20;

/**
 * The warm items of the provisioned dashboards. `values` gives a variable's values (the
 * service's variables endpoint); a query variable with few values is warmed once per value
 * for every target that references it alone (other variables at "All").
 */
export function dashboardWarmItems(
  dir: string,
  values: Partial<Record<VariableName, string[]>> = {},
  datasourceType = 'seed-ruleperf-datasource'
): WarmItem[] {
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith('.json'));
  } catch {
    return [];
  }
  const items: WarmItem[] = [];
  for (const file of files) {
    const dashboard = JSON.parse(readFileSync(join(dir, file), 'utf8'));
    const spanMs = relativeSpan(dashboard.time?.from ?? 'now-24h', dashboard.time?.to ?? 'now');
    if (!spanMs) {
      continue;
    }
    const variables = ((dashboard.templating?.list ?? []) as DashboardVariable[]).flatMap((v) => {
      const source =
        typeof v.query === 'string' && (VARIABLE_NAMES as readonly string[]).includes(v.query)
          ? (v.query as VariableName)
          : null;
      const list = source ? values[source] : undefined;
      return list && list.length <= WARM_VARIABLE_MAX_VALUES ? [{ name: v.name, list }] : [];
    });
    const add = (target: Record<string, unknown>, maxDataPoints: number) => {
      const parsed = querySchema.safeParse(withoutVariables(target));
      if (parsed.success) {
        items.push({ query: parsed.data, spanMs, maxDataPoints });
      }
    };
    const visit = (panels: Panel[]) => {
      for (const panel of panels) {
        if (panel.panels) {
          visit(panel.panels);
        }
        for (const target of panel.targets ?? []) {
          const ds = (target.datasource ?? panel.datasource) as { type?: string } | undefined;
          if (ds?.type !== datasourceType) {
            continue;
          }
          const maxDataPoints = panel.maxDataPoints ?? 1000;
          add(target, maxDataPoints);
          for (const variable of variables) {
            const fields = Object.keys(target).filter(
              (k) => target[k] === `$${variable.name}` || target[k] === `\${${variable.name}}`
            );
            for (const value of fields.length ? variable.list : []) {
              add({ ...target, ...Object.fromEntries(fields.map((f) => [f, value])) }, maxDataPoints);
            }
          }
        }
      }
    };
    visit(dashboard.panels ?? []);
  }
  return items;
}

/** A query's JSON without its refId. */
function shapeOf(query: RuleperfQuery): string {
  const { refId: _refId, ...rest } = query;
  return JSON.stringify(rest);
}

/**
 * The id RecentQueries counts a query under, remembered per frozen query (the query fast path
 * shares them between requests) for its last span and sizes: the same string each time, so the
 * map does not hash a new one on every cache hit.
 */
const lastIds = new WeakMap<
  RuleperfQuery,
  { spanMs: number; intervalMs?: number; maxDataPoints?: number; id: string }
>();
function recentId(query: RuleperfQuery, spanMs: number, intervalMs?: number, maxDataPoints?: number): string {
  const last = lastIds.get(query);
  if (last && last.spanMs === spanMs && last.intervalMs === intervalMs && last.maxDataPoints === maxDataPoints) {
    return last.id;
  }
  const id = `${shapeOf(query)}|${spanMs}|${intervalMs}|${maxDataPoints}`;
  if (Object.isFrozen(query)) {
    lastIds.set(query, { spanMs, intervalMs, maxDataPoints, id });
  }
  return id;
}

/** Counts recent now-relative queries to replay the most popular ones. */
export class RecentQueries {
  private readonly seen = new Map<string, { item: WarmItem; count: number; lastSeen: number }>();
  constructor(
    private readonly capacity = 200,
    private readonly windowMs = 10 * 60_000
  ) {}

  record(request: QueryRequest, query: RuleperfQuery, now = Date.now()): void {
    // Only ranges ending at "now" are worth replaying later.
    if (Math.abs(request.range.to - now) > 60_000) {
      return;
    }
    // In the steps a range ending now moves by (range.ts): the span its answers cover.
    const span = request.range.to - request.range.from;
    const step = movingStep(span);
    const spanMs = Math.round(span / step) * step;
    const id = recentId(query, spanMs, request.intervalMs, request.maxDataPoints);
    const entry = this.seen.get(id);
    if (entry) {
      entry.count++;
      entry.lastSeen = now;
      return;
    }
    if (this.seen.size >= this.capacity) {
      this.evict(now);
    }
    if (this.seen.size < this.capacity) {
      this.seen.set(id, {
        item: { query, spanMs, intervalMs: request.intervalMs, maxDataPoints: request.maxDataPoints },
        count: 1,
        lastSeen: now,
      });
    }
  }

  private evict(now: number): void {
    for (const [id, e] of this.seen) {
      if (now - e.lastSeen > this.windowMs) {
        this.seen.delete(id);
      }
    }
    if (this.seen.size >= this.capacity) {
      const least = [...this.seen.entries()].sort((a, b) => a[1].count - b[1].count)[0];
      this.seen.delete(least[0]);
    }
  }

  top(n: number, now = Date.now()): WarmItem[] {
    return [...this.seen.values()]
      .filter((e) => now - e.lastSeen <= this.windowMs)
      .sort((a, b) => b.count - a.count)
      .slice(0, n)
      .map((e) => e.item);
  }
}

/** How a warming pass runs: answers at once (`workers`), and no new one begun after `until` (epoch ms). */
export interface WarmBounds {
  workers?: number;
  until?: number;
}

/**
 * Answers each item, `workers` at a time (two by default), none begun after `until` (none at
 * all when it has passed); stops taking items once `signal` aborts (shutdown).
 */
export async function warm(
  items: WarmItem[],
  answer: (request: QueryRequest, query: RuleperfQuery) => Promise<unknown>,
  now = Date.now(),
  signal?: AbortSignal,
  { workers = 2, until = Infinity }: WarmBounds = {}
): Promise<{ warmed: number; failed: number }> {
  let warmed = 0;
  let failed = 0;
  // A few at a time: warming must not crowd out dashboard traffic.
  const queue = [...items];
  const worker = async () => {
    for (let item = queue.shift(); item && !signal?.aborted && Date.now() < until; item = queue.shift()) {
      const request: QueryRequest = {
        range: { from: now - item.spanMs, to: now },
        intervalMs: item.intervalMs,
        maxDataPoints: item.maxDataPoints,
        queries: [item.query],
      };
      try {
        await answer(request, item.query);
        warmed++;
      } catch {
        failed++;
      }
    }
  };
  await Promise.all(Array.from({ length: workers }, worker));
  return { warmed, failed };
}
