/** Values for Grafana dashboard variables: rules, parsers, categories, metric types, source types, statuses. */
import type { Pool } from 'pg';
import { STATUSES, type VariableName, type VariableValue } from '../contract';
import type { RollupInfo } from '../query/catalog';
import { levels } from '../query/plan';
import { ident } from '../query/sql';

const SQL: Record<Exclude<VariableName, 'statuses' | 'metricTypes'>, string> = {
  rules: `SELECT rule_id AS value, rule_name || ' (' || rule_id || ')' AS text FROM rules ORDER BY rule_id`,
  parsers: `SELECT parser_id AS value, parser_name || ' (' || parser_id || ')' AS text FROM parsers ORDER BY parser_id`,
  categories: `SELECT DISTINCT rule_category AS value, rule_category AS text FROM rules ORDER BY 1`,
  sourceTypes: `SELECT DISTINCT source_type AS value, source_type AS text FROM parsers ORDER BY 1`,
};

/**
 * Metric types: those of the rules, and those of rows of any kind — read from the smallest
 * rollup of each width that holds the metric type (from the registry), not from raw rows.
 */
function metricTypesSql(rollups: readonly RollupInfo[]): string {
  const sources = levels(rollups, ['metricType']).map((r) => `SELECT metric_type FROM ${ident(r.name)}`);
  return `SELECT metric_type AS value, metric_type AS text FROM
            (${['SELECT metric_type FROM rules', ...sources].join(' UNION ')}) t ORDER BY 1`;
}

/** A variable's values in order; `limit` keeps the first ones (warming only needs to know whether a list is short). */
export async function variableValues(
  db: Pool,
  name: VariableName,
  rollups: readonly RollupInfo[],
  limit?: number
): Promise<VariableValue[]> {
  if (name === 'statuses') {
    return STATUSES.map((s) => ({ value: s, text: s })).slice(0, limit);
  }
  const sql = name === 'metricTypes' ? metricTypesSql(rollups) : SQL[name];
  if (limit === undefined) {
    return (await db.query(sql)).rows;
  }
  const { rows } = await db.query(`SELECT value, text FROM (${sql}) v ORDER BY value LIMIT $1`, [limit]);
  return rows;
}

/**
 * The lists as the endpoint serves them: each read at most once per `maxAgeMs`, concurrent asks
 * sharing one read, and the read taking its turn with the answers (`read` goes through the
 * read pool's admission). Asked directly, a flood of 200 connections on one list queued on the
 * pool until its connect timeout: 2,107 of them, and dashboard answers beside them, got "the
 * database is unavailable" from a healthy database. A failed read is not kept.
 */
export class VariableLists {
  private readonly held = new Map<VariableName, { at: number; values: Promise<VariableValue[]> }>();

  constructor(
    private readonly read: (name: VariableName) => Promise<VariableValue[]>,
    private readonly maxAgeMs = VARIABLES_MAX_AGE_MS,
    private readonly now: () => number = Date.now
  ) {}

  get(name: VariableName): Promise<VariableValue[]> {
    const held = this.held.get(name);
    if (held && this.now() - held.at <= this.maxAgeMs) {
      return held.values;
    }
    const values = this.read(name);
    this.held.set(name, { at: this.now(), values });
    values.catch(() => {
      if (this.held.get(name)?.values === values) {
        this.held.delete(name);
      }
    });
    return values;
  }
}

/** How old a list the endpoint serves may be: a rule added shows in a dashboard variable within this. */
export const VARIABLES_MAX_AGE_MS = 10_000;
