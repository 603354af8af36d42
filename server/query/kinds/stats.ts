/** `stats`: one row of figures over the whole covered range. */
import { numberField, measures, type MeasureName } from '../measures';
import { mergedSelect, Params, sourceRows } from '../sql';
import type { KindSpec } from './types';

const FIELDS: MeasureName[] = [
  'executionCount',
  'avgExecutionTimeMs',
  'p50ExecutionTimeMs',
  'p95ExecutionTimeMs',
  'p99ExecutionTimeMs',
  'minExecutionTimeMs',
  'maxExecutionTimeMs',
  'recordsProcessed',
  'recordsFailed',
  'errorCount',
  'successCount',
  'timeoutCount',
  'errorRate',
];

export const stats: KindSpec = {
  params: () => ({ groupBy: null, metrics: [], limit: 0, sortBy: null }),
  ownFields: [],
  bucketed: false,
  names: () => ({ rules: false, parsers: false }),
  size: () => ({ rows: 1, cells: FIELDS.length, frames: 1 }),
  mergesHistograms: () => true,
  async read(db, q, plan) {
    const p = new Params();
    const src = sourceRows(q, plan.pieces, p, { shape: 'fine', bucketMs: null, group: null });
    const statement = {
      text: `WITH src AS (\n  ${src}\n)\n${mergedSelect([], true, db.native)}`,
      values: p.values,
    };
    return { rows: await db.rows(statement), statements: [{ statement }] };
  },
  frames(q, rows) {
    const m = measures(rows[0], (q.range.to - q.range.from) / 1000);
    return [
      {
        schema: { name: 'stats', fields: FIELDS.map((f) => numberField(f)) },
        data: { values: FIELDS.map((f) => [m[f]]) },
      },
    ];
  },
};
