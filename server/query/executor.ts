/**
 * Runs one normalized query against the database: reads the rollups' state, plans which
 * tier answers each stretch of the covered range, lets the kind read its rows (the whole
 * answer on one admission slot), and shapes the frames with what the answer is.
 */
import type { Pool } from 'pg';
import type { DataFrameJSON, Notice } from '../contract';
import type { Admission, Busy, Priority } from '../db/admission';
import { isStatementTimeout } from '../db/pools';
import { NO_NATIVE, type NativeFunctions } from '../db/native';
import type { RollupInfo } from './catalog';
import { KINDS } from './kinds';
import type { Reader } from './kinds/types';
import { hasInexactInteger, hasUnreadableLatency, INEXACT_INTEGER_NOTICE, UNREADABLE_LATENCY_NOTICE } from './measures';
import type { NormalizedQuery } from './normalize';
import { plan, tiersOf, type Plan, type RollupState, type RowsPerBucket } from './plan';
import { RuleSplitSource } from './rule-split';
import { showStatement, type Statement } from './sql';
import { mapInTurns } from './turns';
import type { DatabaseState, WatermarkSource } from './watermarks';

export interface Answer {
  frames: DataFrameJSON[];
  /** Rollups read, coarsest first, then `raw` when raw rows were read. */
  tiers: string[];
  /** The newest watermark of the rollups this query can use (epoch ms): rows after it came from the raw table. */
  watermark: number | null;
  /** Whether the answer reads raw rows past every rollup's watermark (it changes as rows arrive). */
  touchesLiveEdge: boolean;
  sql: string;
  notices: Notice[];
  /** When it was computed (epoch ms): data after this instant is not in it. */
  computedAt: number;
  /**
   * Whether it says something that may soon stop being true although no row changes (a filter
   * value no list holds yet: unknown-values.ts): cached as briefly as an answer of the live edge.
   */
  shortLived?: boolean;
}

/** What answers a normalized query from the database (QueryExecutor, or a decorator of it). */
export interface Executor {
  /** `abandoned`: aborts when nobody waits for the answer any more (dropped if not begun). */
  run(q: NormalizedQuery, priority?: Priority, abandoned?: AbortSignal): Promise<Answer>;
  /** Why `run` would be refused at once if called now (the database is too busy), or null. */
  refusal?(priority: Priority): Busy | null;
}

export interface ExecutorMetrics {
  /** One statement sent, labelled by the finest tier it reads. */
  dbQuery(finestTier: string): void;
}

function rollupStates(state: DatabaseState): Map<string, RollupState> {
  return new Map(
    state.status.map((s) => [
      s.rollup,
      { watermark: s.watermark?.getTime() ?? null, retainedFrom: s.retainedFrom?.getTime() ?? null },
    ])
  );
}

/**
 * Notices about the rollups an answer used: a refresh long overdue. Nothing is missing then (rows
 * a refresh has not taken in are read raw, pending changes too), but answers are slower, and it
 * says something is wrong with the refreshes (the numbers probe found "may be missing" untrue).
 */
function overdueNotices(state: DatabaseState, used: readonly string[], now: number): Notice[] {
  const notices: Notice[] = [];
  for (const s of state.status.filter((x) => used.includes(x.rollup))) {
    const overdue = s.lastRefreshAt ? now - s.lastRefreshAt.getTime() > 2 * s.refreshEveryMs : true;
    if (!overdue) {
      continue;
    }
    notices.push({
      severity: 'warning',
      text: s.lastRefreshAt
        ? `Rollup ${s.rollup} was last refreshed ${Math.round((now - s.lastRefreshAt.getTime()) / 60000)} min ago (expected every ${Math.round(s.refreshEveryMs / 60000)} min): the rows it has not taken in are read from the raw table, so answers stay exact but are slower; the service log says why refreshes stopped.`
        : `Rollup ${s.rollup} has never been refreshed; its range is read from raw rows.`,
    });
  }
  return notices;
}

/**
 * Values from which turning an answer into JSON (rendering it, encoding it for the cache) takes
 * milliseconds: done a slice per loop turn (mapInTurns).
 */
export const MANY_VALUES = 50_000;

/** The values a frame holds (every column). */
export function frameValues(frame: DataFrameJSON): number {
  let n = 0;
  for (const column of frame.data.values) {
    n += column.length;
  }
  return n;
}

/** valueCount per answer: an answer never changes, and the service and the cache store both ask, on every hit too. */
const counted = new WeakMap<Answer, number>();

/** The values an answer's frames hold (every column of every frame). */
export function valueCount(answer: Answer): number {
  let n = counted.get(answer);
  if (n === undefined) {
    n = answer.frames.reduce((sum, frame) => sum + frameValues(frame), 0);
    counted.set(answer, n);
  }
  return n;
}

export class QueryExecutor implements Executor {
  private readonly ruleSplits: RuleSplitSource;

  constructor(
    private readonly db: Pool,
    private readonly state: WatermarkSource,
    private readonly rollups: () => readonly RollupInfo[],
    private readonly admission: Admission,
    private readonly metrics: ExecutorMetrics,
    /** Refuses answers that would read too much (work.ts), once their plan is known. */
    private readonly work?: {
      check(q: NormalizedQuery, pieces: Plan['pieces']): number;
      observe(work: number, ms: number): void;
      /** Measured rollup sizes, for choosing among rollups of one width (plan.ts). */
      rowsPerBucket?: RowsPerBucket;
    },
    /** What the ruleperf_native extension merges in C (server/db/native.ts). */
    private readonly native: NativeFunctions = NO_NATIVE,
    /** Whether the database runs statements side by side (the embedded PGlite runs one at a time: a second slot would only queue). */
    private readonly sideBySide = true
  ) {
    this.ruleSplits = new RuleSplitSource(db);
  }

  /**
   * One admission slot for the whole answer: the state read, then its statements — on that
   * slot one at a time, or beside it on a slot that happens to be free (top rules' groups).
   */
  run(q: NormalizedQuery, priority: Priority = 'user', abandoned?: AbortSignal): Promise<Answer> {
    return this.admission.run(() => this.answer(q), priority, abandoned);
  }

  refusal(priority: Priority): Busy | null {
    return this.admission.refusal(priority);
  }

  private async answer(q: NormalizedQuery): Promise<Answer> {
    const state = await this.state.current();
    const rollupState = rollupStates(state);
    const p = plan({
      range: q.range,
      fields: q.fields,
      rollups: this.rollups(),
      state: rollupState,
      pending: state.pending,
      bucketMs: q.bucketMs,
      rowsPerBucket: (rollup) => this.work?.rowsPerBucket?.(rollup),
    });
    const work = this.work?.check(q, p.pieces) ?? 0;
    const tiers = tiersOf(p.pieces);
    // Statements queued or running on this answer's own slot.
    let onSlot = 0;
    let slotTurn: Promise<unknown> = Promise.resolve();
    const finest = tiers[tiers.length - 1] ?? 'none';
    const query = (statement: Statement) => () => {
      this.metrics.dbQuery(finest);
      return this.db.query(statement.text, statement.values);
    };
    // On another slot if one is free at this moment; never waits for one.
    const besideNow = (statement: Statement) => {
      const beside = this.sideBySide ? this.admission.tryRun(query(statement)) : null;
      return beside ? beside.then((result) => result.rows) : null;
    };
    const reader: Reader = {
      native: this.native,
      rows: async (statement) => {
        const beside = onSlot > 0 ? besideNow(statement) : null;
        if (beside) {
          return beside;
        }
        onSlot++;
        const turn = slotTurn.then(query(statement)).finally(() => onSlot--);
        slotTurn = turn.catch(() => undefined);
        return (await turn).rows;
      },
      besideNow,
      ruleSplit: () => this.ruleSplits.current(),
    };
    const spec = KINDS[q.kind];
    // What large answers cost per unit of work keeps the work limit within the statement timeout (work.ts).
    const started = performance.now();
    const read = await spec.read(reader, q, p).catch((err: unknown) => {
      if (isStatementTimeout(err)) {
        this.work?.observe(work, performance.now() - started);
      }
      throw err;
    });
    this.work?.observe(work, performance.now() - started);
    const computedAt = Date.now();
    const used = [...new Set(p.pieces.flatMap((piece) => (piece.rollup ? [piece.rollup.name] : [])))];
    const watermarks = used
      .map((name) => rollupState.get(name)?.watermark ?? null)
      .filter((w): w is number => w !== null);
    // Frames of many rows (30-60 ms for a 90-day grouped timeseries) a slice per loop turn, so
    // heavy answers finishing together interleave with what else arrives (a small answer: no
    // turn). Still on the slot: freeing it first let the next heavy read start while these rows
    // wait, and peak memory under 50 such requests rose from 227-257 to 312-372 MB.
    const frames = await mapInTurns(spec.frames(q, read.rows, computedAt), (frame) => frame, frameValues);
    return {
      frames,
      tiers,
      watermark: watermarks.length ? Math.max(...watermarks) : null,
      touchesLiveEdge: p.live,
      sql: read.statements.map((s) => showStatement(s.statement, s.title)).join('\n\n'),
      notices: [
        ...overdueNotices(state, used, computedAt),
        ...(read.rows.some(hasUnreadableLatency) ? [UNREADABLE_LATENCY_NOTICE] : []),
        ...(read.rows.some(hasInexactInteger) ? [INEXACT_INTEGER_NOTICE] : []),
        ...(read.notices ?? []),
        ...(spec.notices?.(q, read.rows) ?? []),
      ],
      computedAt,
    };
  }
}
