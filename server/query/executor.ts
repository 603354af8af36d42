/**
 * Runs one normalized query against the database: reads watermarks, builds the SQL,
 * executes it on the read pool, and shapes the frames with their meta.
 */
import type { Pool } from 'pg';
import type { DataFrameJSON, Notice, Tier } from '../contract';
import type { NormalizedQuery } from './normalize';
import { buildQuery } from './sql';
import { buildTopRulesCandidates, rankTopRules, splitCandidates } from './top-rules';
import { tierOf } from './catalog';
import { buildFrames } from './frames';
import type { WatermarkSource } from './watermarks';

export interface Answer {
  frames: DataFrameJSON[];
  tiers: Tier[];
  watermark: number | null;
  /** Whether the answer reads raw rows after the watermark (it can change as rows arrive). */
  touchesLiveEdge: boolean;
  sql: string;
  notices: Notice[];
}

export interface ExecutorMetrics {
  dbQuery(tiers: Tier[]): void;
}

function inlineParams(text: string, values: unknown[]): string {
  const shown = values.map((v, i) => `-- $${i + 1} = ${v instanceof Date ? v.toISOString() : JSON.stringify(v)}`);
  return `${text}\n${shown.join('\n')}`;
}

export class QueryExecutor {
  constructor(
    private readonly db: Pool,
    private readonly watermarks: WatermarkSource,
    private readonly metrics: ExecutorMetrics
  ) {}

  async run(q: NormalizedQuery, refId: string): Promise<Answer> {
    const status = await this.watermarks.current();
    const marks = new Map(status.map((s) => [s.rollup, s.watermark]));
    let sql = '';
    let rows: Record<string, unknown>[] = [];
    let tiers: Tier[];
    if (q.kind === 'topRules') {
      // Phase one narrows hundreds of rules to the few that can rank; phase two is exact, the
      // candidates split over two connections so that both cores merge sketches.
      const candidates = buildTopRulesCandidates(q, marks);
      this.metrics.dbQuery(candidates.tiers);
      const ids = (await this.db.query(candidates.text, candidates.values)).rows.map((r) => r.grp as string);
      const groups = splitCandidates(ids);
      const exact = groups.map((group) => buildQuery({ ...q, filters: { ...q.filters, rule_id: group } }, marks));
      exact.forEach((b) => this.metrics.dbQuery(b.tiers));
      const results = await Promise.all(exact.map((b) => this.db.query(b.text, b.values)));
      rows = rankTopRules(results.flatMap((r) => r.rows), q);
      tiers = exact[0]?.tiers ?? candidates.tiers;
      sql = [
        `-- phase 1: candidate rules (${candidates.method})\n${inlineParams(candidates.text, candidates.values)}`,
        ...exact.map((b, i) => `-- phase 2 (${i + 1}/${exact.length}): exact answers for ${groups[i].length} candidates\n${inlineParams(b.text, b.values)}`),
      ].join('\n\n');
    } else {
      const built = buildQuery(q, marks);
      this.metrics.dbQuery(built.tiers);
      rows = (await this.db.query(built.text, built.values)).rows;
      tiers = built.tiers;
      sql = inlineParams(built.text, built.values);
    }
    const frames = buildFrames(q, rows, refId);
    const primary = status.find((s) => s.rollup === q.route.primary.name);
    const notices: Notice[] = [];
    const now = Date.now();
    for (const s of status.filter((x) => x.rollup === q.route.primary.name || x.rollup === q.route.finer?.name)) {
      const overdue = s.lastRefreshAt ? now - s.lastRefreshAt.getTime() > 2 * s.refreshEveryMs : true;
      if (overdue && tiers.includes(tierOf(s.rollup))) {
        notices.push({
          severity: 'warning',
          text: s.lastRefreshAt
            ? `Rollup ${s.rollup} was last refreshed ${Math.round((now - s.lastRefreshAt.getTime()) / 60000)} min ago (expected every ${Math.round(s.refreshEveryMs / 60000)} min): rows that arrived late for older buckets may be missing.`
            : `Rollup ${s.rollup} has never been refreshed; its range is read from raw rows.`,
        });
      }
    }
    return {
      frames,
      tiers,
      watermark: primary?.watermark?.getTime() ?? null,
      touchesLiveEdge: tiers.includes('raw'),
      sql,
      notices,
    };
  }
}
