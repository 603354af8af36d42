/**
 * What the pipeline needs of a query kind, in one place per kind: its parameters and
 * defaults, the dimensions it reads, whether its points are time buckets, whether names of
 * rules or parsers appear in it, how large its answer can be, how it reads the database, and
 * its frames. `KINDS` (index.ts) is a Record over every kind, so a kind missing a part is a
 * compile error, and the pipeline modules never branch on the kind.
 */
import type {
  DataFrameJSON,
  Notice,
  FilterField,
  GroupByField,
  RuleperfQuery,
  SeriesMetric,
  TopRulesSort,
} from '../../contract';
import type { Row } from '../measures';
import type { NormalizedQuery } from '../normalize';
import type { Plan } from '../plan';
import type { RuleSplit } from '../rule-split';
import type { RepeatedStatement, Statement } from '../sql';
import type { NativeFunctions } from '../../db/native';

export interface KindParams {
  groupBy: GroupByField | null;
  metrics: SeriesMetric[];
  limit: number;
  sortBy: TopRulesSort | null;
}

/** Runs statements (through the service's admission control). */
export interface Reader {
  rows(statement: Statement): Promise<Row[]>;
  /** Runs the statement on another admission slot if one is free at this moment (never waits for one); null when none is. */
  besideNow(statement: Statement): Promise<Row[]> | null;
  /** The rule id splitting the known rules in two even halves and their number, or null when there are too few to split (rule-split.ts). */
  ruleSplit(): Promise<RuleSplit | null>;
  /** What the ruleperf_native extension merges in C (server/db/native.ts): percentiles, top rules' bounds. */
  readonly native: NativeFunctions;
}

export interface KindRead {
  rows: Row[];
  /** What was run, for the query inspector (one text run with several sets of values as a RepeatedStatement, shown once). */
  statements: Array<{ title?: string; statement: Statement | RepeatedStatement }>;
  /** Notices only the read can tell (from rows it read beside those it returns). */
  notices?: Notice[];
}

/** Distinct values of each dimension (upper bounds, for budgets). */
export type Cardinality = (field: FilterField) => number;

export interface AnswerSize {
  /** Result rows read from the database at most. */
  rows: number;
  /** Values in the frames at most (points × series × fields). */
  cells: number;
  /** Frames at most (a grouped timeseries has one per series, the other kinds one). */
  frames: number;
}

export interface KindSpec {
  params(query: RuleperfQuery): KindParams;
  /** Dimensions the kind always reads, besides filters and grouping. */
  ownFields: readonly FilterField[];
  /** Points are time buckets (NormalizedQuery.bucketMs is set). */
  bucketed: boolean;
  /** Whether rule or parser names appear in the answer (renaming one changes it). */
  names(q: NormalizedQuery): { rules: boolean; parsers: boolean };
  size(q: NormalizedQuery, cardinality: Cardinality): AnswerSize;
  /** Whether its statement merges the latency histograms of every source row in range (percentiles over all groups); work.ts bounds those. */
  mergesHistograms(q: NormalizedQuery): boolean;
  read(db: Reader, q: NormalizedQuery, plan: Plan): Promise<KindRead>;
  /**
   * Frames of the answer; `computedAt` bounds the time the newest bucket covers. An array, or
   * a generator building each frame as it is asked for (a grouped timeseries has one per group:
   * the executor takes loop turns between them when they are many).
   */
  frames(q: NormalizedQuery, rows: Row[], computedAt: number): Iterable<DataFrameJSON>;
  /** Notices the rows call for, beside the ones every answer may carry. */
  notices?(q: NormalizedQuery, rows: Row[]): Notice[];
}

/** Series in a grouped answer: the groups the filters allow, at most `limit`, plus "other". */
export function seriesBound(q: NormalizedQuery, cardinality: Cardinality): number {
  if (!q.groupBy) {
    return 1;
  }
  const possible = Math.min(cardinality(q.groupBy) + 1, q.filters[q.groupBy]?.length ?? Infinity);
  return possible > q.limit ? q.limit + 1 : possible;
}
