/** `errorBreakdown`: errors and timeouts per value of a dimension, most failing first, with names for rules and parsers. */
import { measures, numberField, type MeasureName } from '../measures';
import { mergedSelect, Params, sourceRows } from '../sql';
import { DEFAULT_BREAKDOWN_GROUP, DEFAULT_ROW_LIMIT } from './defaults';
import { seriesBound, type KindSpec } from './types';

const COLUMNS: MeasureName[] = ['executionCount', 'errorCount', 'timeoutCount', 'errorRate'];

/** Where the names of a grouping's values live (fixed SQL). */
const NAMES: Partial<Record<string, { join: string; column: string }>> = {
  ruleId: { join: 'LEFT JOIN rules n ON n.rule_id = b.grp', column: 'n.rule_name' },
  parserId: { join: 'LEFT JOIN parsers n ON n.parser_id = b.grp', column: 'n.parser_name' },
};

export const errorBreakdown: KindSpec = {
  params: (query) => ({
    groupBy: query.groupBy ?? DEFAULT_BREAKDOWN_GROUP,
    metrics: [],
    limit: query.limit ?? DEFAULT_ROW_LIMIT,
    sortBy: null,
  }),
  ownFields: [],
  bucketed: false,
  names: (q) => ({ rules: q.groupBy === 'ruleId', parsers: q.groupBy === 'parserId' }),
  mergesHistograms: () => false,
  size(q, cardinality) {
    const rows = Math.min(q.limit, seriesBound(q, cardinality));
    return { rows, cells: rows * (COLUMNS.length + 2), frames: 1 };
  },
  async read(db, q, plan) {
    const p = new Params();
    const src = sourceRows(q, plan.pieces, p, { shape: 'counts', bucketMs: null, group: q.groupBy });
    const names = NAMES[q.groupBy!];
    const text = `WITH src AS (\n  ${src}\n)
SELECT b.*, ${names?.column ?? 'NULL::text'} AS name FROM (${mergedSelect(['grp'], false)}) b ${names?.join ?? ''}
ORDER BY b.error_count + b.timeout_count DESC, b.grp LIMIT ${p.add(q.limit)}`;
    const statement = { text, values: p.values };
    return { rows: await db.rows(statement), statements: [{ statement }] };
  },
  frames(q, rows) {
    const seconds = (q.range.to - q.range.from) / 1000;
    const ms = rows.map((r) => measures(r, seconds));
    const withNames = !!NAMES[q.groupBy!];
    return [
      {
        schema: {
          name: 'errorBreakdown',
          fields: [
            { name: q.groupBy!, type: 'string' },
            ...(withNames ? [{ name: 'name', type: 'string' as const }] : []),
            ...COLUMNS.map((c) => numberField(c)),
          ],
          meta: { preferredVisualisationType: 'table' },
        },
        data: {
          values: [
            rows.map((r) => r.grp),
            ...(withNames ? [rows.map((r) => r.name ?? null)] : []),
            ...COLUMNS.map((c) => ms.map((m) => m[c])),
          ],
        },
      },
    ];
  },
};
