/** Every query kind's part of the pipeline, keyed by kind: a kind without a spec does not compile. */
import type { QueryKind } from '../../contract';
import { errorBreakdown } from './error-breakdown';
import { stats } from './stats';
import { timeseries } from './timeseries';
import { topRules } from './top-rules';
import type { KindSpec } from './types';

export const KINDS: Record<QueryKind, KindSpec> = { stats, timeseries, topRules, errorBreakdown };
export type { KindSpec } from './types';
