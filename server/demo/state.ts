/**
 * What the embedded demo has loaded, kept in the database beside the rows (so it moves,
 * and is lost, with the data folder): the model it was generated with, how far back the
 * history should reach, the span [loaded_from, loaded_to) whose rows are in `metrics`, and
 * built_from, from where the history's rollups are built (a stop can fall between the two).
 * Every load writes its rows and moves these marks in one transaction, so a stop at any
 * moment resumes without a gap or a duplicate row.
 */
import type { PoolClient } from 'pg';
import type { Queryable } from '../db/types';

export interface DemoState {
  seed: number;
  rowsPerHour: number;
  rules: number;
  parsers: number;
  historyFrom: number;
  loadedFrom: number;
  loadedTo: number;
  /** The rollups include the history from here; above loadedFrom when a stop left rows unbuilt. */
  builtFrom: number;
}

export async function ensureDemoTable(db: Queryable): Promise<void> {
  await db.query(`CREATE TABLE IF NOT EXISTS ruleperf_demo (
    id            boolean PRIMARY KEY DEFAULT true CHECK (id),
    seed          bigint NOT NULL,
    rows_per_hour integer NOT NULL,
    rules         integer NOT NULL,
    parsers       integer NOT NULL,
    history_from  timestamptz NOT NULL,
    loaded_from   timestamptz NOT NULL,
    loaded_to     timestamptz NOT NULL)`);
  // Folders from before built_from was kept: null reads as "built as far as loaded".
  await db.query('ALTER TABLE ruleperf_demo ADD COLUMN IF NOT EXISTS built_from timestamptz');
}

export async function readDemoState(db: Queryable): Promise<DemoState | null> {
  const { rows } = await db.query('SELECT * FROM ruleperf_demo');
  if (!rows.length) {
    return null;
  }
  const r = rows[0];
  return {
    seed: Number(r.seed),
    rowsPerHour: r.rows_per_hour,
    rules: r.rules,
    parsers: r.parsers,
    historyFrom: r.history_from.getTime(),
    loadedFrom: r.loaded_from.getTime(),
    loadedTo: r.loaded_to.getTime(),
    builtFrom: (r.built_from ?? r.loaded_from).getTime(),
  };
}

export async function writeDemoState(db: Queryable, s: DemoState): Promise<void> {
  await db.query(
    `INSERT INTO ruleperf_demo (seed, rows_per_hour, rules, parsers, history_from, loaded_from, loaded_to, built_from)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT (id) DO UPDATE SET seed = $1, rows_per_hour = $2, rules = $3, parsers = $4,
       history_from = $5, loaded_from = $6, loaded_to = $7, built_from = $8`,
    [
      s.seed,
      s.rowsPerHour,
      s.rules,
      s.parsers,
      new Date(s.historyFrom),
      new Date(s.loadedFrom),
      new Date(s.loadedTo),
      new Date(s.builtFrom),
    ]
  );
}

const MARK_COLUMNS = { loadedFrom: 'loaded_from', loadedTo: 'loaded_to', builtFrom: 'built_from' } as const;
export type DemoMark = keyof typeof MARK_COLUMNS;

/** Moves one mark (the column from a fixed list); inside a load's transaction for the loaded ones. */
export async function moveMark(db: Queryable, mark: DemoMark, ms: number): Promise<void> {
  await db.query(`UPDATE ruleperf_demo SET ${MARK_COLUMNS[mark]} = $1`, [new Date(ms)]);
}

/** Runs `fn` in a transaction on one client and moves the loaded marks with it. */
export async function inTransaction<T>(client: PoolClient, fn: () => Promise<T>): Promise<T> {
  await client.query('BEGIN');
  try {
    const result = await fn();
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}
