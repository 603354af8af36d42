/**
 * The ruleperf_native extension in a real database (PostgreSQL flavour): `migrate` points the
 * sketch functions at C and back, and every rollup built with C holds exactly the rows the
 * PL/pgSQL functions build from the same raw rows (sketches, coarse sketches, rank keys).
 * Skipped, saying why, where the extension is not installed (`.ci/run` installs it).
 */
import assert from 'node:assert/strict';
import { describe, test, before, after } from 'node:test';
import { freshDatabase, nativeExtensionInstalled, startTestService, type TestDatabase } from '../support/services';
import { migrate } from '../../server/db/migrate';
import { NATIVE_EXTENSION, nativeEnabled, nativeFunctions, nativeQueries } from '../../server/db/native';
import { refreshRollups } from '../../server/db/refresh';
import { generateHistory } from '../../server/generator/history';

const END = new Date(Date.UTC(2026, 1, 3));

describe('ruleperf_native in the PostgreSQL flavour', async () => {
  const skip = (await nativeExtensionInstalled())
    ? false
    : `the ${NATIVE_EXTENSION} extension is not installed on this PostgreSQL (make -C native install)`;
  let db: TestDatabase;

  before(async () => {
    if (skip) {
      return;
    }
    db = await freshDatabase({ flavour: 'postgres', native: 'off' });
    // Two days at 2,000 rows an hour: most minute rows hold a few raw rows, hourly ones dozens.
    await generateHistory(
      db.pool,
      { days: 2, rowsPerHour: 2000, rules: 40, parsers: 6, seed: 11, end: END, method: 'copy' },
      () => undefined
    );
    await db.pool.query('ANALYZE metrics');
  });
  after(async () => {
    await db?.drop();
  });

  /** Every rollup's rows, in a fixed order, as text. */
  async function everyRollup(): Promise<Record<string, string[]>> {
    const { rows: names } = await db.pool.query('SELECT name FROM ruleperf_rollups ORDER BY position');
    const out: Record<string, string[]> = {};
    for (const { name } of names) {
      const { rows } = await db.pool.query(`SELECT t::text AS row FROM ${name} t ORDER BY t::text`);
      out[name] = rows.map((r) => r.row);
    }
    return out;
  }

  async function rebuild(): Promise<Record<string, string[]>> {
    const { rows: names } = await db.pool.query('SELECT name FROM ruleperf_rollups');
    for (const { name } of names) {
      await db.pool.query(`TRUNCATE ${name}`);
    }
    await db.pool.query(`UPDATE ruleperf_rollup_state SET watermark = '-infinity', retained_from = '-infinity'`);
    await db.pool.query('DELETE FROM ruleperf_invalidations');
    await refreshRollups(db.pool, 'postgres', { until: END, latenessMs: 0 });
    return everyRollup();
  }

  test('migrate switches the sketch functions to C and back, and says so', { skip }, async () => {
    assert.equal(await nativeEnabled(db.pool), false);
    const lines: string[] = [];
    const on = await migrate(db.pool, { native: 'auto', log: (l) => lines.push(l) });
    assert.deepEqual(on.native, { enabled: true });
    assert.ok(lines.includes('sketch functions: native (ruleperf_native, C)'), lines.join('\n'));
    assert.equal(await nativeEnabled(db.pool), true);
    assert.equal(await nativeQueries(db.pool), true);
    // Running again changes nothing; the saved PL/pgSQL bodies stay the PL/pgSQL ones.
    await migrate(db.pool, { native: 'auto' });
    const { rows: saved } = await db.pool.query('SELECT signature, definition FROM ruleperf_native_saved');
    assert.equal(saved.length, 5);
    for (const r of saved) {
      assert.match(r.definition, /LANGUAGE plpgsql/, r.signature);
    }
    const off = await migrate(db.pool, { native: 'off' });
    assert.equal(off.native?.enabled, false);
    assert.equal(await nativeEnabled(db.pool), false);
    assert.equal(await nativeQueries(db.pool), false, 'queries merge in SQL when the functions are PL/pgSQL');
    const { rows: langs } = await db.pool.query(
      `SELECT DISTINCT l.lanname FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
        WHERE p.proname IN ('ruleperf_sketch_from_keys', 'ruleperf_sketch_compact', 'ruleperf_sketch_coarsen',
                            'ruleperf_sketch_merge_parts', 'ruleperf_sketch_rank_keys_walk')`
    );
    assert.deepEqual(
      langs.map((r) => r.lanname),
      ['plpgsql']
    );
  });

  test(
    "an operator's --native off is kept by migrations that name no choice (the service's own at start)",
    { skip },
    async () => {
      await migrate(db.pool, { native: 'off' });
      const lines: string[] = [];
      await migrate(db.pool, { log: (l) => lines.push(l) });
      assert.equal(await nativeEnabled(db.pool), false, 'still PL/pgSQL');
      assert.ok(
        lines.some((l) => /sketch functions: PL\/pgSQL \(turned off by `npm run migrate -- --native off`/.test(l)),
        lines.join('\n')
      );
      const svc = await startTestService({ DATABASE_URL: db.url, CACHE_ENABLED: 'false' });
      await svc.stop();
      assert.equal(await nativeEnabled(db.pool), false, "the service's start-up migration keeps it");
      await migrate(db.pool, { native: 'auto' });
      assert.equal(await nativeEnabled(db.pool), true);
      await migrate(db.pool);
      assert.equal(await nativeEnabled(db.pool), true, 'and auto is kept as well');
    }
  );

  test('a database whose extension is an older version is brought up to date by migrate', { skip }, async () => {
    const other = await freshDatabase({ flavour: 'postgres', native: 'off' });
    try {
      // 1.1 had no aggregate: queries merge in SQL until it is updated; its rank bounds stay
      // (a service started before the update still calls them).
      await other.pool.query(`CREATE EXTENSION ${NATIVE_EXTENSION} VERSION '1.1'`);
      await migrate(other.pool, { native: 'auto' });
      const { rows } = await other.pool.query(
        `SELECT e.extversion, v.default_version AS newest,
                to_regprocedure('ruleperf_native_keys_at_agg(bigint[], float8)') IS NOT NULL AS aggregate,
                to_regprocedure('ruleperf_native_rank_bounds(bigint[], integer[], integer[], float8)') IS NOT NULL AS rank_bounds
           FROM pg_extension e, pg_available_extensions v WHERE e.extname = $1 AND v.name = $1`,
        [NATIVE_EXTENSION]
      );
      assert.deepEqual(rows[0], {
        extversion: rows[0].newest,
        newest: rows[0].newest,
        aggregate: true,
        rank_bounds: true,
      });
      assert.equal(await nativeQueries(other.pool), true);
      assert.deepEqual(
        await nativeFunctions(other.pool),
        { sketches: true, withinBounds: true, percentilesAgg: true },
        '1.4 reached'
      );
      // A server with an older build (1.3, no percentiles aggregate): percentiles merged over an
      // array of the group's rows, the rest as before.
      await other.pool.query(
        `ALTER EXTENSION ${NATIVE_EXTENSION} DROP AGGREGATE ruleperf_native_percentiles_agg(bigint[])`
      );
      await other.pool.query('DROP AGGREGATE ruleperf_native_percentiles_agg(bigint[])');
      assert.deepEqual(await nativeFunctions(other.pool), {
        sketches: true,
        withinBounds: true,
        percentilesAgg: false,
      });
      // 1.2, no bounds from rows partly outside the range either: top rules reads the range's
      // first day as before, the rest still in C.
      await other.pool.query(
        `ALTER EXTENSION ${NATIVE_EXTENSION} DROP AGGREGATE ruleperf_native_keys_within_agg(bigint[], boolean, float8)`
      );
      await other.pool.query('DROP AGGREGATE ruleperf_native_keys_within_agg(bigint[], boolean, float8)');
      assert.deepEqual(await nativeFunctions(other.pool), {
        sketches: true,
        withinBounds: false,
        percentilesAgg: false,
      });
    } finally {
      await other.drop();
    }
  });

  test('every rollup built in C equals the one built in PL/pgSQL, row for row', { skip }, async () => {
    await migrate(db.pool, { native: 'off' });
    const inPlpgsql = await rebuild();
    await migrate(db.pool, { native: 'auto' });
    assert.equal(await nativeEnabled(db.pool), true);
    const inC = await rebuild();
    const names = Object.keys(inPlpgsql);
    assert.ok(names.length >= 14, `every rollup compared (${names.length})`);
    for (const name of names) {
      assert.ok(inPlpgsql[name].length > 0, `${name} has rows`);
      assert.deepEqual(inC[name], inPlpgsql[name], name);
    }
  });
});
