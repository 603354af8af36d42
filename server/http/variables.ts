/** Values for Grafana dashboard variables: rules, parsers, categories, metric types, source types, statuses. */
import type { Pool } from 'pg';
import { STATUSES, type VariableName, type VariableValue } from '../contract';

const SQL: Record<Exclude<VariableName, 'statuses'>, string> = {
  rules: `SELECT rule_id AS value, rule_name || ' (' || rule_id || ')' AS text FROM rules ORDER BY rule_id`,
  parsers: `SELECT parser_id AS value, parser_name || ' (' || parser_id || ')' AS text FROM parsers ORDER BY parser_id`,
  categories: `SELECT DISTINCT rule_category AS value, rule_category AS text FROM rules ORDER BY 1`,
  metricTypes: `SELECT metric_type AS value, metric_type AS text FROM
                  (SELECT metric_type FROM rules UNION SELECT metric_type FROM metrics_daily_by_type
                   UNION SELECT metric_type FROM metrics_hourly_by_type) t ORDER BY 1`,
  sourceTypes: `SELECT DISTINCT source_type AS value, source_type AS text FROM parsers ORDER BY 1`,
};

/** A variable's values in order; `limit` keeps the first ones (warming only needs to know whether a list is short). */
export async function variableValues(db: Pool, name: VariableName, limit?: number): Promise<VariableValue[]> {
  if (name === 'statuses') {
    return STATUSES.map((s) => ({ value: s, text: s })).slice(0, limit);
  }
  if (limit === undefined) return (await db.query(SQL[name])).rows;
  const { rows } = await db.query(`SELECT value, text FROM (${SQL[name]}) v ORDER BY value LIMIT $1`, [limit]);
  return rows;
}
