/**
 * While the demo is still loading, answers over a span that is not loaded yet say so:
 * the executor's answers get the demo's notice, which Grafana shows on the panel. Such
 * answers are cached like any other; when loading ends the cache is cleared (see main).
 */
import type { Priority } from '../db/admission';
import type { Answer, Executor } from '../query/executor';
import type { NormalizedQuery } from '../query/normalize';

export interface NoticeSource {
  notice(from: number, to: number): string | null;
}

export class DemoNoticeExecutor implements Executor {
  constructor(
    private readonly inner: Executor,
    private readonly demo: NoticeSource
  ) {}

  async run(q: NormalizedQuery, priority?: Priority, abandoned?: AbortSignal): Promise<Answer> {
    const answer = await this.inner.run(q, priority, abandoned);
    const text = this.demo.notice(q.range.from, q.range.to);
    return text ? { ...answer, notices: [...answer.notices, { severity: 'info', text }] } : answer;
  }

  /** The inner executor's: without it a miss took the cache's lock before admission refused it. */
  refusal(priority: Priority) {
    return this.inner.refusal?.(priority) ?? null;
  }
}
