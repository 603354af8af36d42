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

export async function variableValues(db: Pool, name: VariableName): Promise<VariableValue[]> {
  if (name === 'statuses') {
    return STATUSES.map((s) => ({ value: s, text: s }));
  }
  const { rows } = await db.query(SQL[name]);
  return rows;
}
