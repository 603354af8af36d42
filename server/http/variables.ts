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

/** A list as served: its values, and when it was read where that read is a fallback. */
export interface HeldList {
  values: VariableValue[];
  /** Set when the database could not give the list just now: when this one was read (epoch ms). */
  staleSince?: number;
}

/**
 * The lists as the endpoint serves them: each read at most once per `maxAgeMs`, concurrent asks
 * sharing one read, and the read taking its turn with the answers (`read` goes through the
 * read pool's admission). Asked directly, a flood of 200 connections on one list queued on the
 * pool until its connect timeout: 2,107 of them, and dashboard answers beside them, got "the
 * database is unavailable" from a healthy database. A failed read is not kept: while a list
 * read before is held (at most `staleMaxMs` old), that one is served instead, marked stale, and
 * read again after `maxAgeMs`; with none, the failure is the answer. A dashboard's variables
 * kept erroring while the database was down or busy though the cache still served its panels.
 */
export class VariableLists {
  private readonly held = new Map<VariableName, { at: number; list: Promise<HeldList> }>();
  private readonly lastRead = new Map<VariableName, { at: number; values: VariableValue[] }>();

  constructor(
    private readonly read: (name: VariableName) => Promise<VariableValue[]>,
    private readonly maxAgeMs = VARIABLES_MAX_AGE_MS,
    private readonly now: () => number = Date.now,
    private readonly staleMaxMs = VARIABLES_STALE_MAX_MS
  ) {}

  /** The values, as fresh as the database can give them now (see the class). */
  async get(name: VariableName): Promise<VariableValue[]> {
    return (await this.list(name)).values;
  }

  list(name: VariableName): Promise<HeldList> {
    const held = this.held.get(name);
    if (held && this.now() - held.at <= this.maxAgeMs) {
      return held.list;
    }
    const at = this.now();
    const list = this.read(name).then(
      (values): HeldList => {
        this.lastRead.set(name, { at, values });
        return { values };
      },
      (err: unknown): HeldList => {
        const last = this.lastRead.get(name);
        if (!last || this.now() - last.at > this.staleMaxMs) {
          throw err;
        }
        return { values: last.values, staleSince: last.at };
      }
    );
    this.held.set(name, { at, list });
    list.catch(() => {
      if (this.held.get(name)?.list === list) {
        this.held.delete(name);
      }
    });
    return list;
  }
}

/** How long a list read before is served while the database cannot give one (1 hour). */
export const VARIABLES_STALE_MAX_MS = 3_600_000;

/** How old a list the endpoint serves may be: a rule added shows in a dashboard variable within this. */
export const VARIABLES_MAX_AGE_MS = 10_000;
