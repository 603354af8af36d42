/**
 * Native sketches: when the optional `ruleperf_native` extension (native/, C) is installed on
 * the server, ruleperf's own sketch functions are pointed at its C versions, which return
 * exactly the same values 10–20 times faster (what building and refreshing rollups spends
 * most of its time on). Where it is not installed (AWS RDS, the embedded WASM database, a
 * user without the right to create extensions) everything stays in PL/pgSQL.
 *
 * The functions keep their names and identities (rollup statements, aggregates and
 * continuous aggregates refer to them), only their bodies change: each becomes a one-line
 * SQL function calling the C one, which the planner inlines. The PL/pgSQL definitions are
 * kept in `ruleperf_native_saved` to put back (`npm run migrate -- --native off`). This runs
 * after every migration, so a migration that redefines a function is followed again.
 */
import type { Queryable } from './types';

export const NATIVE_EXTENSION = 'ruleperf_native';

/** ruleperf's function (its signature) → the extension's C function that replaces its body. */
const REPLACED: ReadonlyArray<{ signature: string; args: string; returns: string; native: string }> = [
  {
    signature: 'ruleperf_sketch_from_keys(integer[])',
    args: 'keys integer[]',
    returns: 'bigint[]',
    native: 'ruleperf_native_from_keys',
  },
  {
    signature: 'ruleperf_sketch_compact(bigint[])',
    args: 'entries bigint[]',
    returns: 'bigint[]',
    native: 'ruleperf_native_compact',
  },
  {
    signature: 'ruleperf_sketch_coarsen(bigint[])',
    args: 'entries bigint[]',
    returns: 'bigint[]',
    native: 'ruleperf_native_coarsen',
  },
  {
    signature: 'ruleperf_sketch_merge_parts(ruleperf_sketch_part[])',
    args: 'parts ruleperf_sketch_part[]',
    returns: 'bigint[]',
    native: 'ruleperf_native_merge_parts',
  },
  {
    signature: 'ruleperf_sketch_rank_keys_walk(bigint[])',
    args: 'entries bigint[]',
    returns: 'integer[]',
    native: 'ruleperf_native_rank_keys',
  },
];

export type NativeChoice = 'auto' | 'off';

export interface NativeResult {
  /** Whether the sketch functions now run the C versions. */
  enabled: boolean;
  /** Why not, when they do not (and 'auto' was asked). */
  reason?: string;
}

/**
 * The choice `npm run migrate -- --native auto|off` made last, kept in the database: a migration
 * that names none (the service's own at start, `npm start`) keeps it. Before, the service's
 * start-up migration turned the C functions back on after an operator's `--native off`.
 */
const CHOICE_TABLE = `CREATE TABLE IF NOT EXISTS ruleperf_native_choice (
  only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row), choice text NOT NULL CHECK (choice IN ('auto', 'off')))`;

export async function rememberNativeChoice(db: Queryable, choice: NativeChoice): Promise<void> {
  // Two migrations creating it at once: one fails on the catalog's unique index; it is there then.
  await db.query(CHOICE_TABLE).catch((err: { code?: string }) => {
    if (err.code !== '23505' && err.code !== '42P07') {
      throw err;
    }
  });
  await db.query(
    `INSERT INTO ruleperf_native_choice (choice) VALUES ($1) ON CONFLICT (only_row) DO UPDATE SET choice = EXCLUDED.choice`,
    [choice]
  );
}

/** The choice last made by name ('auto' when none was). */
export async function rememberedNativeChoice(db: Queryable): Promise<NativeChoice> {
  const { rows } = await db.query(`SELECT to_regclass('ruleperf_native_choice') IS NOT NULL AS present`);
  if (!rows[0].present) {
    return 'auto';
  }
  const chosen = await db.query('SELECT choice FROM ruleperf_native_choice');
  return chosen.rows[0]?.choice === 'off' ? 'off' : 'auto';
}

async function extensionAvailable(db: Queryable): Promise<boolean> {
  try {
    const { rows } = await db.query('SELECT 1 FROM pg_available_extensions WHERE name = $1', [NATIVE_EXTENSION]);
    return rows.length > 0;
  } catch {
    return false; // a server that cannot list its extensions has none to offer
  }
}

const SAVED_TABLE = `CREATE TABLE IF NOT EXISTS ruleperf_native_saved (
  signature text PRIMARY KEY, definition text NOT NULL)`;

/** Points the sketch functions at the C versions ('auto', when installed) or back at PL/pgSQL ('off'). */
export async function applyNativeChoice(db: Queryable, choice: NativeChoice): Promise<NativeResult> {
  if (choice === 'off') {
    await restorePlpgsql(db);
    return { enabled: false, reason: 'turned off' };
  }
  if (!(await extensionAvailable(db))) {
    return { enabled: false, reason: `the ${NATIVE_EXTENSION} extension is not installed on this server` };
  }
  await db.query('BEGIN');
  try {
    await db.query(`CREATE EXTENSION IF NOT EXISTS ${NATIVE_EXTENSION}`);
    // A newer build installed on the server brings its version's functions.
    await db.query(`ALTER EXTENSION ${NATIVE_EXTENSION} UPDATE`);
    await db.query(SAVED_TABLE);
    // Schema names as regnamespace prints them: quoted where they need it.
    const extensionSchema = (
      await db.query('SELECT extnamespace::regnamespace::text AS schema FROM pg_extension WHERE extname = $1', [
        NATIVE_EXTENSION,
      ])
    ).rows[0].schema as string;
    for (const f of REPLACED) {
      const { rows } = await db.query(
        `SELECT p.prosrc, l.lanname, pg_get_functiondef(p.oid) AS definition, p.pronamespace::regnamespace::text AS schema
           FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang WHERE p.oid = to_regprocedure($1)`,
        [f.signature]
      );
      if (rows.length === 0) {
        continue; // this flavour or schema version has no such function
      }
      if (rows[0].lanname === 'sql' && String(rows[0].prosrc).includes(f.native)) {
        continue; // already native
      }
      await db.query(
        `INSERT INTO ruleperf_native_saved (signature, definition) VALUES ($1, $2)
           ON CONFLICT (signature) DO UPDATE SET definition = EXCLUDED.definition`,
        [f.signature, rows[0].definition]
      );
      const call = `${extensionSchema}.${f.native}`;
      // Same schema, name and arguments: the same function, with a new body.
      await db.query(
        `CREATE OR REPLACE FUNCTION ${rows[0].schema as string}.${f.signature.split('(')[0]}(${f.args}) RETURNS ${f.returns}
           LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT ${call}($1) $$`
      );
    }
    await db.query('COMMIT');
    return { enabled: true };
  } catch (err) {
    await db.query('ROLLBACK');
    // Installed but not ours to create (no privilege), or a broken build: PL/pgSQL serves.
    return { enabled: false, reason: `${NATIVE_EXTENSION} could not be enabled: ${(err as Error).message}` };
  }
}

/** Puts the PL/pgSQL definitions saved when the C versions were enabled back in place. */
async function restorePlpgsql(db: Queryable): Promise<void> {
  if (!(await db.query(`SELECT to_regclass('ruleperf_native_saved') IS NOT NULL AS present`)).rows[0].present) {
    return;
  }
  await db.query('BEGIN');
  try {
    const { rows } = await db.query('SELECT signature, definition FROM ruleperf_native_saved');
    for (const r of rows) {
      await db.query(r.definition as string);
    }
    await db.query('DELETE FROM ruleperf_native_saved');
    await db.query('COMMIT');
  } catch (err) {
    await db.query('ROLLBACK');
    throw err;
  }
}

/** Whether the sketch functions run the C versions now. */
export async function nativeEnabled(db: Queryable): Promise<boolean> {
  const { rows } = await db.query(
    `SELECT count(*)::int AS n FROM pg_proc p WHERE p.oid = to_regprocedure('ruleperf_sketch_from_keys(integer[])')
       AND p.prosrc LIKE '%ruleperf_native_from_keys%'`
  );
  return rows[0].n > 0;
}

/**
 * Whether queries may merge percentiles and top rules' coarse keys with the extension's C
 * functions: the sketch functions run in C (not turned off) and the installed extension has
 * them (an older build without one: all in SQL).
 */
export async function nativeQueries(db: Queryable): Promise<boolean> {
  const { rows } = await db.query(
    `SELECT to_regprocedure('ruleperf_native_percentiles(anyarray)') IS NOT NULL
        AND to_regprocedure('ruleperf_native_keys_at_agg(bigint[], float8)') IS NOT NULL AS present`
  );
  return rows[0].present === true && (await nativeEnabled(db));
}

/** The query functions the ruleperf_native extension serves, by what the installed build holds. */
export interface NativeFunctions {
  /** Percentiles and top rules' coarse keys merged in C (nativeQueries). */
  sketches: boolean;
  /** Top rules' bounds from rows partly outside the range (ruleperf_native 1.3: a range's first day read whole). Implies `sketches`, as `percentilesAgg` does (nativeFunctions sets neither without it). */
  withinBounds: boolean;
  /** Percentiles merged by an aggregate over the sketches rather than a function of an array of them (ruleperf_native 1.4). */
  percentilesAgg: boolean;
}

export const NO_NATIVE: NativeFunctions = { sketches: false, withinBounds: false, percentilesAgg: false };

export async function nativeFunctions(db: Queryable): Promise<NativeFunctions> {
  if (!(await nativeQueries(db))) {
    return NO_NATIVE;
  }
  const { rows } = await db.query(
    `SELECT to_regprocedure('ruleperf_native_keys_within_agg(bigint[], boolean, float8)') IS NOT NULL AS within,
            to_regprocedure('ruleperf_native_percentiles_agg(bigint[])') IS NOT NULL AS percentiles`
  );
  return { sketches: true, withinBounds: rows[0].within === true, percentilesAgg: rows[0].percentiles === true };
}
