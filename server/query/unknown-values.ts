/**
 * A filter value that is no value the service knows — the wrong case ("rule_execution"), a
 * stray space, a typo — gives the same empty answer as a quiet range, and a panel cannot tell
 * "no such rule" from "no executions". An answer in which nothing matched says so when one of
 * its filter values is unknown, with the known spelling where only case or spaces differ, or
 * else the closest known value (`rule-1` → `rule-0001`) when one is close.
 * Known values are the variables endpoint's lists (as fresh as the endpoint's, 10 s, and read
 * only for answers that matched nothing; they hold what the rules and parsers tables list and
 * what the rollups hold), and what a look into the data finds: the rollups, and raw rows not in
 * them yet (a late row, the last minutes). Statuses are checked by the request schema itself.
 */
import { closest } from '../closest-name';
import type { Pool } from 'pg';
import { NONE_GROUP, type FilterField, type Notice, type VariableName, type VariableValue } from '../contract';
import type { Priority } from '../db/admission';
import type { Answer, Executor } from './executor';
import type { NormalizedQuery } from './normalize';
import type { RollupInfo } from './catalog';
import { COLUMN_OF } from './columns';
import { valueSources } from './plan';
import { ident } from './sql';

const CHECKED: Partial<Record<FilterField, { list: VariableName; noun: string }>> = {
  metricType: { list: 'metricTypes', noun: 'metric type' },
  ruleId: { list: 'rules', noun: 'rule' },
  parserId: { list: 'parsers', noun: 'parser' },
  ruleCategory: { list: 'categories', noun: 'category' },
  sourceType: { list: 'sourceTypes', noun: 'source type' },
};

/** How long one look into the data may take (ms). */
export const LOOK_MS = 300;

/** At most this many unknown values named in one answer's notices. */
const NAMED = 5;

/** A list's values, and its entries' names (a rule's, a parser's) to the value each names. */
interface KnownList {
  values: ReadonlySet<string>;
  byName: ReadonlyMap<string, string>;
}

/**
 * Values as the reader gives them: a value, or a variable entry whose text is `name (value)`
 * (rules and parsers), which names it.
 */
function knownList(entries: ReadonlyArray<string | VariableValue>): KnownList {
  const values = new Set<string>();
  const byName = new Map<string, string>();
  for (const entry of entries) {
    const value = typeof entry === 'string' ? entry : entry.value;
    values.add(value);
    const text = typeof entry === 'string' ? null : entry.text;
    const suffix = ` (${value})`;
    if (text && text.endsWith(suffix) && text.length > suffix.length) {
      byName.set(fold(text.slice(0, -suffix.length)), value);
    }
  }
  return { values, byName };
}

/**
 * The variables' values, each list read again once it is older than `maxAgeMs`, and the values
 * the data holds; a failed read names nothing.
 */
export class KnownValues {
  private readonly lists = new Map<VariableName, { at: number; list: Promise<KnownList | null> }>();
  /** One look into the data at a time: an answer that cannot have its turn names nothing. */
  private looking = false;

  constructor(
    private readonly read: (name: VariableName) => Promise<ReadonlyArray<string | VariableValue>>,
    /** Which of `values` of `field` the data holds (valuesInData). */
    private readonly inData: (field: FilterField, values: string[]) => Promise<ReadonlySet<string>>,
    private readonly maxAgeMs = 60_000,
    private readonly now: () => number = Date.now
  ) {}

  /** Which of `values` are in the data; null when that cannot be told now (a look in progress, a failure). */
  async held(field: FilterField, values: string[]): Promise<ReadonlySet<string> | null> {
    if (this.looking) {
      return null;
    }
    this.looking = true;
    try {
      return await this.inData(field, values);
    } catch {
      return null;
    } finally {
      this.looking = false;
    }
  }

  async values(name: VariableName): Promise<ReadonlySet<string> | null> {
    return (await this.list(name))?.values ?? null;
  }

  /** The value a rule's or parser's name (any case) names, if one does. */
  async named(name: VariableName, text: string): Promise<string | undefined> {
    return (await this.list(name))?.byName.get(fold(text));
  }

  private list(name: VariableName): Promise<KnownList | null> {
    const held = this.lists.get(name);
    if (held && this.now() - held.at <= this.maxAgeMs) {
      return held.list;
    }
    const list = this.read(name).then(knownList, () => {
      this.lists.delete(name);
      return null;
    });
    this.lists.set(name, { at: this.now(), list });
    return list;
  }
}

const fold = (v: string) => v.trim().toLowerCase();

/** A list's values as an array, made once per list read (closest-name.ts keeps its work per array). */
const asArray = new WeakMap<ReadonlySet<string>, readonly string[]>();

function listed(list: ReadonlySet<string>): readonly string[] {
  let values = asArray.get(list);
  if (!values) {
    asArray.set(list, (values = [...list]));
  }
  return values;
}

/** A notice for each filter value (up to NAMED) that is no known value of its field. */
export async function unknownValueNotices(
  filters: NormalizedQuery['filters'],
  known: KnownValues,
  /** Set `unsure` when a list or a look into the data could not be had: an unknown value may go unnamed. */
  report: { unsure: boolean } = { unsure: false }
): Promise<Notice[]> {
  const notices: Notice[] = [];
  for (const [field, values] of Object.entries(filters) as Array<[FilterField, string[]]>) {
    const checked = CHECKED[field];
    const candidates = values.filter((v) => v !== NONE_GROUP);
    if (!checked || candidates.length === 0) {
      continue;
    }
    const list = await known.values(checked.list);
    if (!list) {
      report.unsure = true;
      continue;
    }
    const unlisted = candidates.filter((v) => !list.has(v)).slice(0, NAMED - notices.length);
    const held = unlisted.length > 0 ? await known.held(field, unlisted) : null;
    if (!held) {
      report.unsure ||= unlisted.length > 0;
      continue;
    }
    for (const value of unlisted.filter((v) => !held.has(v))) {
      const same = [...list, NONE_GROUP].find((k) => fold(k) === fold(value));
      // Said for what differs: spaces around it, or the case of its letters.
      const why = same === undefined ? '' : same === value.trim() ? 'spaces count' : 'values are case-sensitive';
      // A rule's or parser's name where its id goes: the id it names.
      const named = same === undefined ? await known.named(checked.list, value) : undefined;
      // Otherwise the closest known one (`rule-1` → `rule-0001`), if one is close.
      const near = same === undefined && named === undefined ? closest(value.slice(0, 64), listed(list)) : undefined;
      const hint = same
        ? ` (${why}: did you mean ${JSON.stringify(same)}?)`
        : named
          ? ` (it is the name of ${checked.noun} ${JSON.stringify(named)}: filters take ids, as the variables list them)`
          : near
            ? ` (did you mean ${JSON.stringify(near)}?)`
            : '';
      notices.push({
        severity: 'warning',
        text: `Nothing matched ${field} ${JSON.stringify(value)}: it is no ${checked.noun} the service knows${hint}.`,
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

  async run(q: NormalizedQuery, priority?: Priority, abandoned?: AbortSignal): Promise<Answer> {
    const answer = await this.inner.run(q, priority, abandoned);
    if (Object.keys(q.filters).length === 0 || !matchedNothing(answer)) {
      return answer;
    }
    const report = { unsure: false };
    const notices = await unknownValueNotices(q.filters, this.known, report);
    // A rule added a moment later makes the notice untrue with no row changed: kept briefly. So is
    // an answer whose values could not all be looked up (another look running, the database slow):
    // kept for hours, a typo's 0 went without its notice all that time.
    return notices.length || report.unsure
      ? { ...answer, notices: [...answer.notices, ...notices], shortLived: true }
      : answer;
  }

  refusal(priority: Priority) {
    return this.inner.refusal?.(priority) ?? null;
  }
}

/**
 * Which of `values` of `field` the data holds: in the rollups, the coarsest one with the dimension
 * (a few rows a day, all history), the widest of an hour or less (today's hours, which the
 * coarsest has not yet), and the finest, which holds the last minutes (for rules and parsers,
 * indexed there, all of it; for the others its last two hours); and in the raw rows no rollup
 * holds yet, above the finest one's watermark and in ranges changed but not refreshed (a late row
 * of a new category was "no category the service knows" until the next refresh). With no rollup
 * to look in, every value counts as held.
 */
export function valuesInData(
  db: Pick<Pool, 'connect'>,
  rollups: () => readonly RollupInfo[],
  /**
   * Whether raw rows are looked into too. Not on the embedded database: PGlite does not enforce
   * a statement timeout (a 1.5 s pg_sleep under a 300 ms one ran to its end), and the look would
   * hold its one session for as long as the pending ranges take to read.
   */
  rawRows = true,
  /** Told of a look that failed for another reason than its time limit. */
  onFailure: (err: Error) => void = () => undefined
): (field: FilterField, values: string[]) => Promise<ReadonlySet<string>> {
  return async (field, values) => {
    const found = valueSources(rollups(), field);
    if (!found) {
      return new Set(values);
    }
    const { indexed, finest } = found;
    const sources = new Set([found.coarsest, ...(found.hourly ? [found.hourly] : [])]);
    const column = ident(COLUMN_OF[field]);
    const held = [
      ...[...sources].map((r) => `EXISTS (SELECT 1 FROM ${ident(r.name)} WHERE ${column} = v)`),
      `EXISTS (SELECT 1 FROM ${ident(finest.name)} WHERE ${column} = v${indexed ? '' : ` AND bucket >= now() - interval '2 hours'`})`,
      ...(rawRows
        ? [
            `EXISTS (SELECT 1 FROM metrics WHERE ${column} = v AND time >= coalesce((SELECT watermark FROM ruleperf_rollup_status WHERE rollup = $2), '-infinity'))`,
            `EXISTS (SELECT 1 FROM ruleperf_pending_changes p JOIN metrics m ON m.time >= p.lo AND m.time <= p.hi WHERE m.${column} = v)`,
          ]
        : []),
    ].join(' OR ');
    // Bounded: raw rows in a wide range pending refresh (a late batch 11 days back) were read
    // whole, 1-3 s at 2.9M rows for five made-up values. Past it, nothing is named (and the
    // answer is kept briefly: UnknownValueExecutor).
    const client = await db.connect();
    try {
      await client.query('BEGIN');
      await client.query(`SET LOCAL statement_timeout = ${LOOK_MS}`);
      const { rows } = await client.query<{ v: string }>(
        `SELECT v FROM unnest($1::text[]) v WHERE ${held}`,
        rawRows ? [values, finest.name] : [values]
      );
      await client.query('COMMIT');
      client.release();
      return new Set(rows.map((r) => r.v));
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      // A timed-out look is expected; after any other failure the connection is not given back.
      const timedOut = (err as { code?: string }).code === '57014';
      client.release(timedOut ? undefined : (err as Error));
      if (!timedOut) {
        onFailure(err as Error);
      }
      throw err;
    }
  };
}
