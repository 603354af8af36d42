/**
 * The contract's dimension names and the SQL columns that hold them. Only the SQL layer
 * (this folder's sql.ts, plan.ts and the kinds) speaks column names; normalized queries,
 * cache keys and frames use the contract's names.
 */
import { FILTER_FIELDS, type FilterField } from '../contract';

export const COLUMN_OF: Record<FilterField, string> = {
  metricType: 'metric_type',
  ruleId: 'rule_id',
  parserId: 'parser_id',
  ruleCategory: 'rule_category',
  sourceType: 'source_type',
  status: 'status',
};

const FIELD_OF = new Map(FILTER_FIELDS.map((f) => [COLUMN_OF[f], f]));

/** The contract names of a rollup's dimension columns (columns the contract does not know are dropped). */
export function fieldsOfColumns(columns: readonly string[]): FilterField[] {
  return columns.flatMap((c) => (FIELD_OF.has(c) ? [FIELD_OF.get(c)!] : []));
}
