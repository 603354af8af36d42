/** Values for Grafana dashboard variables: rules, parsers, categories, metric types, source types, statuses. */
import type { Pool } from 'pg';
import { STATUSES, type FilterField, type VariableName, type VariableValue } from '../contract';
import { COLUMN_OF } from '../query/columns';
import type { RollupInfo } from '../query/catalog';
import { valueSources } from '../query/plan';
import { ident } from '../query/sql';

/**
 * The lists from the rules and parsers tables, and the values the rollups hold beside them: a
 * rule deleted from `rules` (its executions kept) or one whose rows came before its entry (the
 * schema has no foreign keys) was in every panel yet offered by no dashboard variable. Those come
 * with their id as text.
 */
function listSql(name: Exclude<VariableName, 'statuses' | 'metricTypes'>, rollups: readonly RollupInfo[]): string {
  switch (name) {
    case 'rules':
      return `SELECT rule_id AS value, rule_name || ' (' || rule_id || ')' AS text FROM rules${heldBeside('ruleId', rollups, 'rules', 'rule_id')} ORDER BY 1`;
    case 'parsers':
      return `SELECT parser_id AS value, parser_name || ' (' || parser_id || ')' AS text FROM parsers${heldBeside('parserId', rollups, 'parsers', 'parser_id')} ORDER BY 1`;
    case 'categories':
      return `SELECT DISTINCT rule_category AS value, rule_category AS text FROM rules${heldBeside('ruleCategory', rollups)} ORDER BY 1`;
    case 'sourceTypes':
      return `SELECT DISTINCT source_type AS value, source_type AS text FROM parsers${heldBeside('sourceType', rollups)} ORDER BY 1`;
  }
}

/** ` UNION …`: the values of `field` the rollups hold and the table does not (`table.key`; no table: UNION drops repeats). */
function heldBeside(field: FilterField, rollups: readonly RollupInfo[], table?: string, key?: string): string {
  const held = heldValuesSql(field, rollups);
  if (!held) {
    return '';
  }
  return table
    ? ` UNION ALL SELECT h.v, h.v FROM (${held}) h(v) WHERE h.v IS NOT NULL AND NOT EXISTS (SELECT 1 FROM ${table} t WHERE t.${key} = h.v)`
    : ` UNION SELECT h.v, h.v FROM (${held}) h(v) WHERE h.v IS NOT NULL`;
}

/**
 * The distinct values of `field` in the rollups (what a list can read every 10 s; unknown-values.ts
 * looks further for one value, into raw rows not in the rollups yet): the coarsest rollup holding
 * it (all history, a few rows a day), the widest of an hour or less for the last two days (days
 * the coarsest has not yet), and the finest for the last two hours (those the hourly rollups have
 * not yet). Rule and parser ids are indexed: the coarsest is read one id at a time down its index
 * (thousands of rules, a few ms), not all its rows; the recent reads go down the bucket index.
 */
function heldValuesSql(field: FilterField, rollups: readonly RollupInfo[]): string | null {
  const sources = valueSources(rollups, field);
  if (!sources) {
    return null;
  }
  const column = ident(COLUMN_OF[field]);
  const { coarsest, hourly, finest, indexed } = sources;
  const reads = [
    { r: coarsest, since: null },
    ...(hourly ? [{ r: hourly, since: '2 days' }] : []),
    { r: finest, since: '2 hours' },
  ].filter((read, i, all) => all.findIndex((earlier) => earlier.r === read.r) === i);
  return reads
    .map(({ r, since }) => {
      if (since) {
        // Down the bucket index: the recent rows only (down the id index, with no recent row it
        // walked every entry: 207 ms for 1M minute rows once the data had stopped two hours).
        return `SELECT ${column} FROM ${ident(r.name)} WHERE bucket >= now() - interval '${since}'`;
      }
      if (!indexed) {
        return `SELECT ${column} FROM ${ident(r.name)}`;
      }
      // Down the (id, bucket) index, one id at a time.
      const next = (after: string) =>
        `SELECT ${column} FROM ${ident(r.name)} WHERE ${column} ${after} ORDER BY 1 LIMIT 1`;
      return `(WITH RECURSIVE ids(v) AS ((${next('IS NOT NULL')}) UNION ALL SELECT (${next('> ids.v')}) FROM ids WHERE ids.v IS NOT NULL) SELECT v FROM ids)`;
    })
    .join(' UNION ');
}

/** Metric types: those of the rules, and those of rows of any kind, which the rollups hold (from the registry). */
function metricTypesSql(rollups: readonly RollupInfo[]): string {
  return `SELECT metric_type AS value, metric_type AS text FROM rules${heldBeside('metricType', rollups)} ORDER BY 1`;
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
  const sql = name === 'metricTypes' ? metricTypesSql(rollups) : listSql(name, rollups);
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
  /**
   * The endpoint's JSON body, rendered once per list read and shared by every request (and its
   * gzip, compression.ts, kept beside it): rendered per request, 200 connections asking for a
   * list of 5,000 rules (356 KB) held the event loop so long that new connections waited seconds.
   */
  body: Buffer;
}

const heldList = (values: VariableValue[], staleSince?: number): HeldList => ({
  values,
  ...(staleSince === undefined ? {} : { staleSince }),
  body: Buffer.from(
    JSON.stringify(
      staleSince === undefined ? { values } : { values, stale: true, listedAt: new Date(staleSince).toISOString() }
    )
  ),
});

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
        return heldList(values);
      },
      (err: unknown): HeldList => {
        const last = this.lastRead.get(name);
        if (!last || this.now() - last.at > this.staleMaxMs) {
          throw err;
        }
        return heldList(last.values, last.at);
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
