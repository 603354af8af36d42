/**
 * While the demo is still loading, answers over a span that is not loaded yet say so:
 * the executor's answers get the demo's notice, which Grafana shows on the panel. Such
 * answers are cached like any other; when loading ends the cache is cleared (see main).
 */
import type { Pool } from 'pg';
import { QueryExecutor, type Answer, type ExecutorMetrics } from '../query/executor';
import type { NormalizedQuery } from '../query/normalize';
import type { WatermarkSource } from '../query/watermarks';

export interface NoticeSource {
  notice(from: number, to: number): string | null;
}

export class DemoNoticeExecutor extends QueryExecutor {
  constructor(
    db: Pool,
    watermarks: WatermarkSource,
    metrics: ExecutorMetrics,
    private readonly demo: NoticeSource
  ) {
    super(db, watermarks, metrics);
  }

  override async run(q: NormalizedQuery, refId: string): Promise<Answer> {
    const answer = await super.run(q, refId);
    const text = this.demo.notice(q.from, q.to);
    return text ? { ...answer, notices: [...answer.notices, { severity: 'info', text }] } : answer;
  }
}
