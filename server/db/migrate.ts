/**
 * Applies sql/ migrations: the shared read model (sql/common) plus one flavour
 * (sql/timescale or sql/postgres). Idempotent; records what it applied; refuses to
 * touch a database whose shape it does not know or that is newer than this code.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Pool } from 'pg';
import type { Queryable } from './types';
import {
  applyNativeChoice,
  rememberedNativeChoice,
  rememberNativeChoice,
  type NativeChoice,
  type NativeResult,
} from './native';

export type Flavour = 'timescale' | 'postgres';

export const SQL_DIR = join(__dirname, '..', '..', 'sql');
const MIGRATIONS_TABLE = 'ruleperf_schema_migrations';

export interface MigrationFile {
  version: number;
  name: string; // e.g. common/001_read_model.sql
  sql: string;
}

export interface MigrateOptions {
  /** Force a flavour; by default TimescaleDB when the extension is available. */
  flavour?: Flavour;
  compressAfter?: string;
  rawRetention?: string;
  /** Stop after this schema version (upgrade tests and the bench's comparison with older schemas). */
  toVersion?: number;
  /**
   * The C sketch functions (server/db/native.ts): 'auto' uses them when the ruleperf_native
   * extension is installed, 'off' puts PL/pgSQL back; either is kept in the database. By
   * default the choice last made by name ('auto' when none was), and untouched when
   * `toVersion` stops at an older schema.
   */
  native?: NativeChoice;
  log?: (line: string) => void;
}

export interface MigrateResult {
  flavour: Flavour;
  applied: string[];
  version: number;
  /** Whether the sketch functions run in C; absent when not looked at (`toVersion`). */
  native?: NativeResult;
}

export class MigrationRefused extends Error {}

const INTERVAL_RE = /^\d{1,5} (minutes?|hours?|days?|weeks?|months?|years?)$/;

export function loadMigrations(flavour: Flavour): MigrationFile[] {
  const files: MigrationFile[] = [];
  for (const dir of ['common', flavour]) {
    for (const file of readdirSync(join(SQL_DIR, dir)).filter((f) => /^\d{3}_.+\.sql$/.test(f))) {
      files.push({
        version: Number(file.slice(0, 3)),
        name: `${dir}/${file}`,
        sql: readFileSync(join(SQL_DIR, dir, file), 'utf8'),
      });
    }
  }
  // Within a version the shared file comes first, then the flavour's.
  return files.sort((a, b) => a.version - b.version || (a.name.startsWith('common/') ? -1 : 1));
}

const latest = new Map<Flavour, number>();

/**
 * The newest schema version of a flavour (flavours may add versions the other has no file for).
 * Read from the files once per flavour: every /readyz asks it, and reading the twenty-odd SQL
 * files each time was most of a readiness check's cost.
 */
export function latestVersion(flavour: Flavour = 'postgres'): number {
  let version = latest.get(flavour);
  if (version === undefined) {
    latest.set(flavour, (version = Math.max(...loadMigrations(flavour).map((m) => m.version))));
  }
  return version;
}

async function tableExists(db: Queryable, name: string): Promise<boolean> {
  const { rows } = await db.query('SELECT to_regclass($1) IS NOT NULL AS present', [name]);
  return rows[0].present;
}

export async function timescaleAvailable(db: Queryable): Promise<boolean> {
  const { rows } = await db.query("SELECT count(*)::int AS n FROM pg_available_extensions WHERE name = 'timescaledb'");
  return rows[0].n > 0;
}

/** The flavour and version recorded in the database, or null for an empty database. */
export async function schemaInfo(db: Queryable): Promise<{ flavour: Flavour; version: number } | null> {
  if (!(await tableExists(db, MIGRATIONS_TABLE))) {
    return null;
  }
  const { rows } = await db.query(
    `SELECT flavour, max(version)::int AS version FROM ${MIGRATIONS_TABLE} GROUP BY flavour`
  );
  if (rows.length !== 1) {
    throw new MigrationRefused(`${MIGRATIONS_TABLE} records ${rows.length} flavours; expected exactly one`);
  }
  return { flavour: rows[0].flavour, version: rows[0].version };
}

export async function migrate(db: Queryable, options: MigrateOptions = {}): Promise<MigrateResult> {
  // Its transactions need one connection throughout: a pool lends one for the whole migration.
  if (db instanceof Pool) {
    const client = await db.connect();
    try {
      return await migrate(client, options);
    } finally {
      client.release();
    }
  }
  const log = options.log ?? (() => undefined);
  const compressAfter = options.compressAfter ?? '7 days';
  const rawRetention = options.rawRetention ?? '90 days';
  for (const [name, value] of Object.entries({ compressAfter, rawRetention })) {
    if (!INTERVAL_RE.test(value)) {
      throw new MigrationRefused(`${name} must look like "7 days" (a number and a unit), got "${value}"`);
    }
  }

  const existing = await schemaInfo(db);
  if (!existing && (await tableExists(db, 'metrics'))) {
    throw new MigrationRefused(
      'this database already has a "metrics" table that ruleperf did not create (no ruleperf_schema_migrations); ' +
        'nothing was changed. Point DATABASE_URL at an empty database, or migrate that table yourself.'
    );
  }
  if (existing && existing.version > latestVersion(existing.flavour)) {
    throw new MigrationRefused(
      `the database is at schema version ${existing.version}, newer than this ruleperf (${latestVersion(existing.flavour)}); nothing was changed. Upgrade ruleperf.`
    );
  }
  let flavour: Flavour;
  if (existing) {
    flavour = existing.flavour;
    if (options.flavour && options.flavour !== flavour) {
      throw new MigrationRefused(
        `the database holds the ${flavour} flavour; refusing to switch it to ${options.flavour}`
      );
    }
  } else {
    flavour = options.flavour ?? ((await timescaleAvailable(db)) ? 'timescale' : 'postgres');
  }

  const applied: string[] = [];
  if (flavour === 'timescale') {
    await db.query('CREATE EXTENSION IF NOT EXISTS timescaledb');
  }
  await db.query(`CREATE TABLE IF NOT EXISTS ${MIGRATIONS_TABLE} (
      version integer NOT NULL, name text PRIMARY KEY, flavour text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
  const done = new Set(
    (await db.query(`SELECT name FROM ${MIGRATIONS_TABLE}`)).rows.map((r: { name: string }) => r.name)
  );
  for (const m of loadMigrations(flavour)) {
    if (done.has(m.name) || m.version > (options.toVersion ?? Infinity)) {
      continue;
    }
    log(`applying ${m.name}`);
    const sql = m.sql.replaceAll('{{COMPRESS_AFTER}}', compressAfter).replaceAll('{{RAW_RETENTION}}', rawRetention);
    await db.query('BEGIN');
    try {
      // As long as it takes: at start the migrations run on a pool whose statements stop at
      // DB_STATEMENT_TIMEOUT_MS, and building an index over a large raw table takes longer (the
      // service failed to start, and failed again at each restart).
      await db.query('SET LOCAL statement_timeout = 0');
      await db.query(sql);
      await db.query(`INSERT INTO ${MIGRATIONS_TABLE} (version, name, flavour) VALUES ($1, $2, $3)`, [
        m.version,
        m.name,
        flavour,
      ]);
      await db.query('COMMIT');
    } catch (err) {
      await db.query('ROLLBACK');
      throw new Error(`migration ${m.name} failed: ${(err as Error).message}`);
    }
    applied.push(m.name);
  }
  const version = Math.min(latestVersion(flavour), options.toVersion ?? Infinity);
  if (options.native) {
    await rememberNativeChoice(db, options.native);
  }
  const nativeChoice =
    options.native ?? (options.toVersion === undefined ? await rememberedNativeChoice(db) : undefined);
  if (!nativeChoice) {
    return { flavour, applied, version };
  }
  const native = await applyNativeChoice(db, nativeChoice);
  const kept =
    !options.native && nativeChoice === 'off'
      ? ' by `npm run migrate -- --native off`; `--native auto` turns them on'
      : '';
  log(
    native.enabled
      ? 'sketch functions: native (ruleperf_native, C)'
      : `sketch functions: PL/pgSQL (${native.reason}${kept})`
  );
  return { flavour, applied, version, native };
}
