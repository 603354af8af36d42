/**
 * A filter value that is no value the service knows — the wrong case ("rule_execution"), a
 * stray space, a typo — gives the same empty answer as a quiet range, and a panel cannot tell
 * "no such rule" from "no executions". An answer in which nothing matched says so when one of
 * its filter values is unknown, with the known spelling where only case or spaces differ.
 * Known values are the variables endpoint's lists (read at most once a minute each, and only
 * for answers that matched nothing); statuses are checked by the request schema itself.
 */
import { NONE_GROUP, type FilterField, type Notice, type VariableName } from '../contract';
import type { Priority } from '../db/admission';
import type { Answer, Executor } from './executor';
import type { NormalizedQuery } from './normalize';

const CHECKED: Partial<Record<FilterField, { list: VariableName; noun: string }>> = {
  metricType: { list: 'metricTypes', noun: 'metric type' },
  ruleId: { list: 'rules', noun: 'rule' },
  parserId: { list: 'parsers', noun: 'parser' },
  ruleCategory: { list: 'categories', noun: 'category' },
  sourceType: { list: 'sourceTypes', noun: 'source type' },
};

/** At most this many unknown values named in one answer's notices. */
const NAMED = 5;

/** The variables' values, each list read again once it is older than `maxAgeMs`; a failed read names nothing. */
export class KnownValues {
  private readonly lists = new Map<VariableName, { at: number; values: Promise<ReadonlySet<string> | null> }>();

  constructor(
    private readonly read: (name: VariableName) => Promise<string[]>,
    private readonly maxAgeMs = 60_000,
    private readonly now: () => number = Date.now
  ) {}

  values(name: VariableName): Promise<ReadonlySet<string> | null> {
    const held = this.lists.get(name);
    if (held && this.now() - held.at <= this.maxAgeMs) {
      return held.values;
    }
    const values = this.read(name).then(
      (list) => new Set(list),
      () => {
        this.lists.delete(name);
        return null;
      }
    );
    this.lists.set(name, { at: this.now(), values });
    return values;
  }
}

const fold = (v: string) => v.trim().toLowerCase();

/** A notice for each filter value (up to NAMED) that is no known value of its field. */
export async function unknownValueNotices(filters: NormalizedQuery['filters'], known: KnownValues): Promise<Notice[]> {
  const notices: Notice[] = [];
  for (const [field, values] of Object.entries(filters) as Array<[FilterField, string[]]>) {
    const checked = CHECKED[field];
    const candidates = values.filter((v) => v !== NONE_GROUP);
    if (!checked || candidates.length === 0) {
      continue;
    }
    const list = await known.values(checked.list);
    if (!list) {
      continue;
    }
    for (const value of candidates) {
      if (list.has(value) || notices.length >= NAMED) {
        continue;
      }
      const same = [...list].find((k) => fold(k) === fold(value));
      notices.push({
        severity: 'warning',
        text: `Nothing matched ${field} ${JSON.stringify(value)}: it is no ${checked.noun} the service knows${same ? ` (values are case-sensitive: did you mean ${JSON.stringify(same)}?)` : ''}.`,
      });
    }
  }
  return notices;
}

/** Whether no row matched: every number in every frame is 0 or empty (no frame rows at all, too). */
export function matchedNothing(answer: Answer): boolean {
  return answer.frames.every((frame) =>
    frame.schema.fields.every(
      (field, i) => field.type !== 'number' || (frame.data.values[i] ?? []).every((v) => v === null || v === 0)
    )
  );
}

/** Adds unknownValueNotices to answers that matched nothing and have filters. */
export class UnknownValueExecutor implements Executor {
  constructor(
    private readonly inner: Executor,
    private readonly known: KnownValues
  ) {}

  async run(q: NormalizedQuery, priority?: Priority): Promise<Answer> {
    const answer = await this.inner.run(q, priority);
    if (Object.keys(q.filters).length === 0 || !matchedNothing(answer)) {
      return answer;
    }
    const notices = await unknownValueNotices(q.filters, this.known);
    return notices.length ? { ...answer, notices: [...answer.notices, ...notices] } : answer;
  }

  refusal(priority: Priority) {
    return this.inner.refusal?.(priority) ?? null;
  }
}
