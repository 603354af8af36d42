/**
 * Runs one normalized query against the database: reads watermarks, builds the SQL,
 * executes it on the read pool, and shapes the frames with their meta.
 */
import type { Pool } from 'pg';
import type { DataFrameJSON, Notice, Tier } from '../contract';
import type { NormalizedQuery } from './normalize';
import { buildQuery } from './sql';
import { buildTopRulesCandidates } from './top-rules';
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
    let final = q;
    if (q.kind === 'topRules') {
      // Phase one narrows hundreds of rules to the few that can rank; phase two is exact.
      const candidates = buildTopRulesCandidates(q, marks);
      this.metrics.dbQuery(candidates.tiers);
      const ids = (await this.db.query(candidates.text, candidates.values)).rows.map((r) => r.grp as string);
      sql = `-- phase 1: candidate rules (${candidates.method})\n${inlineParams(candidates.text, candidates.values)}\n\n-- phase 2: ${ids.length} candidates\n`;
      final = { ...q, filters: { ...q.filters, rule_id: ids.sort() } };
    }
    const built = buildQuery(final, marks);
    let rows: Record<string, unknown>[] = [];
    if (final.filters.rule_id?.length !== 0) {
      this.metrics.dbQuery(built.tiers);
      rows = (await this.db.query(built.text, built.values)).rows;
      sql += inlineParams(built.text, built.values);
    }
    const frames = buildFrames(q, rows, refId);
    const primary = status.find((s) => s.rollup === q.route.primary.name);
    const notices: Notice[] = [];
    const now = Date.now();
    for (const s of status.filter((x) => x.rollup === q.route.primary.name || x.rollup === q.route.finer?.name)) {
      const overdue = s.lastRefreshAt ? now - s.lastRefreshAt.getTime() > 2 * s.refreshEveryMs : true;
      if (overdue && built.tiers.includes(tierOf(s.rollup))) {
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
      tiers: built.tiers,
      watermark: primary?.watermark?.getTime() ?? null,
      touchesLiveEdge: built.tiers.includes('raw'),
      sql,
      notices,
    };
  }
}
