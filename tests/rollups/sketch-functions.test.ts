/**
 * Schema 6 rewrote the sketch functions in PL/pgSQL for speed (schema 9 answers the rank keys
 * of one- and two-entry sketches with an inlined expression), and the optional ruleperf_native
 * extension runs them in C (server/db/native.ts). Continuous aggregates and stored rank keys
 * made by the SQL versions of schemas 1 and 4 must keep meaning the same thing, so for random
 * inputs (sorted or not, repeated keys, zero counts, empty, NULL) each function returns
 * exactly what the old definition returns: in PL/pgSQL, and in C where the extension is
 * installed (`.ci/run` builds it; elsewhere that half is skipped, saying so).
 */
import assert from 'node:assert/strict';
import { describe, test, before, after } from 'node:test';
import fc from 'fast-check';
import { freshDatabase, nativeExtensionInstalled, type TestDatabase } from '../support/services';
import { mergedSelect } from '../../server/query/sql';
import { coarseBounds } from '../../server/query/kinds/top-rules';
import {
  NATIVE_EXTENSION,
  nativeEnabled,
  NO_NATIVE,
  type NativeChoice,
  type NativeFunctions,
} from '../../server/db/native';

describe('sketch functions', async () => {
  const installed = await nativeExtensionInstalled();
  for (const [variant, native] of [
    ['PL/pgSQL', 'off'],
    ['C (ruleperf_native)', 'auto'],
  ] as Array<[string, NativeChoice]>) {
    describe(
      `sketch functions in ${variant}`,
      {
        skip:
          native === 'auto' && !installed
            ? `the ${NATIVE_EXTENSION} extension is not installed on this PostgreSQL (make -C native install)`
            : false,
      },
      () => sketchFunctionTests(native)
    );
  }
});

function sketchFunctionTests(native: NativeChoice) {
  let db: TestDatabase;
  before(async () => {
    db = await freshDatabase({ flavour: 'postgres', native });
    assert.equal(await nativeEnabled(db.pool), native === 'auto', 'the functions run in the language asked for');
    // The schema-1 and schema-4 definitions, as they were.
    await db.pool.query(`
    CREATE FUNCTION old_from_keys(keys integer[]) RETURNS bigint[] LANGUAGE sql IMMUTABLE AS $$
      SELECT coalesce(array_agg((k::bigint << 32) | c ORDER BY k), '{}'::bigint[])
      FROM (SELECT k, count(*) AS c FROM unnest(keys) AS k GROUP BY k) AS s $$;
    CREATE FUNCTION old_compact(entries bigint[]) RETURNS bigint[] LANGUAGE sql IMMUTABLE AS $$
      SELECT coalesce(array_agg((k << 32) | c ORDER BY k), '{}'::bigint[])
      FROM (SELECT e >> 32 AS k, sum(e & 4294967295)::bigint AS c FROM unnest(entries) AS e GROUP BY 1) AS s $$;
    CREATE FUNCTION old_coarsen(entries bigint[]) RETURNS bigint[] LANGUAGE sql IMMUTABLE AS $$
      SELECT old_compact(array(SELECT (((e >> 32) / 16) << 32) | (e & 4294967295) FROM unnest(entries) AS e)) $$;
    CREATE FUNCTION old_rank_keys(entries bigint[]) RETURNS integer[] LANGUAGE sql IMMUTABLE AS $$
      WITH e AS (SELECT (x >> 32)::int AS k, (x & 4294967295)::float8 AS c FROM unnest(entries) AS x),
           cum AS (SELECT k, c, sum(c) OVER (ORDER BY k) - c AS before, sum(c) OVER () AS n FROM e)
      SELECT ARRAY[
        min(k) FILTER (WHERE before <= floor(0.95 * (n - 1)) AND floor(0.95 * (n - 1)) < before + c),
        min(k) FILTER (WHERE before <= least(n - 1, ceil(0.95 * n)) AND least(n - 1, ceil(0.95 * n)) < before + c),
        min(k) FILTER (WHERE before <= floor(0.99 * (n - 1)) AND floor(0.99 * (n - 1)) < before + c),
        min(k) FILTER (WHERE before <= least(n - 1, ceil(0.99 * n)) AND least(n - 1, ceil(0.99 * n)) < before + c)]
      FROM cum $$;`);
  });
  after(async () => {
    await db.drop();
  });

  // Keys cluster (ties matter) and span the whole range.
  const key = fc.oneof(fc.integer({ min: 1480, max: 1530 }), fc.integer({ min: 0, max: 4000 }));
  const keys = fc.array(key, { maxLength: 60 });
  const entry = fc.tuple(key, fc.integer({ min: 0, max: 50 })).map(([k, c]) => `${(BigInt(k) << 32n) | BigInt(c)}`);
  const smallEntry = fc.tuple(key, fc.integer({ min: 0, max: 2 })).map(([k, c]) => `${(BigInt(k) << 32n) | BigInt(c)}`);
  /** A compact sorted sketch (what rollups store), or an arbitrary list of entries. */
  const sketch = fc.oneof(
    fc
      .uniqueArray(key, { maxLength: 40 })
      .chain((ks) =>
        fc.tuple(
          ...ks
            .sort((a, b) => a - b)
            .map((k) => fc.integer({ min: 1, max: 1000 }).map((c) => `${(BigInt(k) << 32n) | BigInt(c)}`))
        )
      ),
    fc.array(entry, { maxLength: 40 }),
    // One or two entries of small counts, in either order: the cases schema 9 answers inline.
    fc.array(smallEntry, { minLength: 1, maxLength: 2 }),
    smallEntry.map((e) => [e, e])
  );

  async function same(sql: string, args: unknown[]) {
    const { rows } = await db.pool.query(sql, args);
    assert.deepEqual(rows[0].new, rows[0].old, `${sql} ${JSON.stringify(args)}`);
  }

  test('from_keys, compact, coarsen and rank keys equal their schema-1/4 definitions', async () => {
    await fc.assert(
      fc.asyncProperty(keys, sketch, async (k, s) => {
        await same('SELECT ruleperf_sketch_from_keys($1::int[])::text AS new, old_from_keys($1::int[])::text AS old', [
          k,
        ]);
        await same(
          'SELECT ruleperf_sketch_compact($1::bigint[])::text AS new, old_compact($1::bigint[])::text AS old',
          [s]
        );
        await same(
          'SELECT ruleperf_sketch_coarsen($1::bigint[])::text AS new, old_coarsen($1::bigint[])::text AS old',
          [s]
        );
        await same(
          'SELECT ruleperf_sketch_rank_keys($1::bigint[])::text AS new, old_rank_keys($1::bigint[])::text AS old',
          [s]
        );
      }),
      { numRuns: 300 }
    );
    for (const fn of ['from_keys($1::int[])', 'compact($1::bigint[])', 'coarsen($1::bigint[])']) {
      await same(`SELECT ruleperf_sketch_${fn}::text AS new, old_${fn}::text AS old`, [null]);
    }
    await same('SELECT ruleperf_sketch_rank_keys(NULL)::text AS new, old_rank_keys(NULL)::text AS old', []);
  });

  test('merging sketches as parts equals compacting their concatenation', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(sketch, { maxLength: 6 }), async (parts) => {
        await same(
          `SELECT ruleperf_sketch_merge_parts(array(SELECT ROW(p::bigint[])::ruleperf_sketch_part FROM jsonb_array_elements_text($1::jsonb) AS p))::text AS new,
                old_compact(array(SELECT e FROM jsonb_array_elements_text($1::jsonb) AS p, unnest(p::bigint[]) AS e))::text AS old`,
          [JSON.stringify(parts.map((p) => `{${p.join(',')}}`))]
        );
      }),
      { numRuns: 200 }
    );
  });

  // Queries merge percentiles in C only where the extension serves the sketch functions.
  if (native !== 'auto') {
    return;
  }
  // Percentiles in C: over an array of the group's rows (ruleperf_native 1.0–1.3), or as an aggregate (1.4).
  const IN_C_ARRAY: NativeFunctions = { sketches: true, withinBounds: false, percentilesAgg: false };
  const IN_C_AGGREGATE: NativeFunctions = { sketches: true, withinBounds: false, percentilesAgg: true };
  test('large merges (hundreds of entries, which C sums in an array indexed by key) equal SQL: merged sketches and percentiles', async () => {
    // Compact sketches of daily and hourly rows: hundreds of keys each, mostly in one cluster,
    // some of zero counts (kept, as SQL's GROUP BY keeps them).
    const bigSketch = fc
      .uniqueArray(fc.oneof(fc.integer({ min: 1300, max: 1900 }), key), { minLength: 100, maxLength: 700 })
      .chain((ks) =>
        fc.tuple(
          ...ks
            .sort((a, b) => a - b)
            .map((k) =>
              fc
                .oneof(fc.constant(0), fc.integer({ min: 1, max: 5000 }), fc.integer({ min: 1, max: 5000 }))
                .map((c) => `${(BigInt(k) << 32n) | BigInt(c)}`)
            )
        )
      );
    // Up to 12: past 8 the aggregate stops merging in key order and sums the rest in its array.
    const parts = fc.array(bigSketch, { minLength: 1, maxLength: 12 });
    await fc.assert(
      fc.asyncProperty(parts, async (ps) => {
        const arg = JSON.stringify(ps.map((p) => `{${p.join(',')}}`));
        await same(
          `SELECT ruleperf_sketch_merge_parts(array(SELECT ROW(p::bigint[])::ruleperf_sketch_part FROM jsonb_array_elements_text($1::jsonb) AS p))::text AS new,
                old_compact(array(SELECT e FROM jsonb_array_elements_text($1::jsonb) AS p, unnest(p::bigint[]) AS e))::text AS old`,
          [arg]
        );
        const rows = JSON.stringify(ps.map((p) => ({ grp: 'g', s: `{${p.join(',')}}` })));
        const src = `src AS (
          SELECT x.grp, 1::bigint AS execution_count, 0::float8 AS exec_time_sum, 0::float8 AS exec_time_min,
            0::float8 AS exec_time_max, 0::bigint AS records_processed, 0::bigint AS records_failed, 0::bigint AS error_count,
            0::bigint AS success_count, 0::bigint AS timeout_count, x.s::bigint[] AS latency_sketch
          FROM jsonb_to_recordset($1::jsonb) AS x(grp text, s text))`;
        const run = async (merge: NativeFunctions) =>
          (await db.pool.query(`WITH ${src} ${mergedSelect(['grp'], true, merge)}`, [rows])).rows;
        const inSql = await run(NO_NATIVE);
        assert.deepEqual(await run(IN_C_ARRAY), inSql);
        assert.deepEqual(await run(IN_C_AGGREGATE), inSql);
      }),
      // Shrinking arrays of hundreds of entries takes minutes: the first failure is reported.
      { numRuns: 60, endOnFailure: true }
    );
  });

  test('percentiles merged by a query: the same float8 values in C as in SQL', async () => {
    // Groups of sketches (some NULL, some of zero counts) as a query's source rows; the figures
    // other than percentiles are constants here.
    // Up to 12 rows a group: the aggregate merges the first 8 sketches in key order, then sorts.
    const groups = fc.array(fc.array(fc.option(sketch, { nil: null }), { minLength: 1, maxLength: 12 }), {
      minLength: 1,
      maxLength: 4,
    });
    const src = `src AS (
      SELECT x.grp, 1::bigint AS execution_count, 0::float8 AS exec_time_sum, 0::float8 AS exec_time_min,
        0::float8 AS exec_time_max, 0::bigint AS records_processed, 0::bigint AS records_failed, 0::bigint AS error_count,
        0::bigint AS success_count, 0::bigint AS timeout_count, x.s::bigint[] AS latency_sketch
      FROM jsonb_to_recordset($1::jsonb) AS x(grp text, s text))`;
    const run = async (merge: NativeFunctions, rows: string) =>
      (await db.pool.query(`WITH ${src} ${mergedSelect(['grp'], true, merge)} ORDER BY a.grp`, [rows])).rows;
    let compared = 0;
    await fc.assert(
      fc.asyncProperty(groups, async (gs) => {
        const rows = JSON.stringify(
          gs.flatMap((parts, g) => parts.map((p) => ({ grp: `g${g}`, s: p === null ? null : `{${p.join(',')}}` })))
        );
        const inSql = await run(NO_NATIVE, rows);
        const inC = await run(IN_C_ARRAY, rows);
        assert.deepEqual(inC, inSql, rows);
        assert.deepEqual(await run(IN_C_AGGREGATE, rows), inSql, rows);
        compared += inC.filter((r) => typeof r.p50 === 'number').length;
      }),
      { numRuns: 200 }
    );
    assert.ok(compared > 100, `percentiles were compared (${compared} groups)`);
  });

  test("1.1's rank bounds in C (kept for services started before an upgrade): the merged keys lie between them, never looser than min and max", async () => {
    // Parts as rollup rows hold them: compact sketches of one to a few thousand values, many of
    // a value or two (minute rows), each with its schema-4 rank keys.
    const part = fc
      .tuple(fc.uniqueArray(key, { minLength: 1, maxLength: 12 }), fc.constantFrom(2, 1000))
      .chain(([ks, most]) =>
        fc.tuple(
          ...ks
            .sort((a, b) => a - b)
            .map((k) => fc.integer({ min: 1, max: most }).map((c) => `${(BigInt(k) << 32n) | BigInt(c)}`))
        )
      );
    const groups = fc.array(fc.array(part, { minLength: 1, maxLength: 12 }), { minLength: 1, maxLength: 4 });
    const src = `src AS (SELECT x.grp, 0.5::float8 AS exec_time_min, 1e9::float8 AS exec_time_max, x.s::bigint[] AS latency_sketch FROM jsonb_to_recordset($1::jsonb) AS x(grp text, s text))`;
    let tighter = 0;
    let compared = 0;
    await fc.assert(
      fc.asyncProperty(groups, fc.constantFrom(0.95, 0.99), async (gs, level) => {
        const rows = JSON.stringify(
          gs.flatMap((parts, g) => parts.map((p) => ({ grp: `g${g}`, s: `{${p.join(',')}}` })))
        );
        const i = level === 0.95 ? 1 : 3;
        const { rows: bounds } = await db.pool.query(
          `WITH ${src}, parts AS (
             SELECT grp, (SELECT sum(e & 4294967295) FROM unnest(latency_sketch) AS e)::bigint AS n, old_rank_keys(latency_sketch) AS rk FROM src)
           SELECT grp, ruleperf_native_rank_bounds(array_agg(n), array_agg(rk[${i}]), array_agg(rk[${i + 1}]), $2::float8) AS b,
             min(rk[${i}]) AS min_lo, max(rk[${i + 1}]) AS max_hi
           FROM parts GROUP BY grp ORDER BY grp`,
          [rows, level]
        );
        // The keys at ranks floor(h) and ceil(h) of each group's merged sketch, as top rules' SQL reads them.
        const { rows: exact } = await db.pool.query(
          `WITH ${src}, ${coarseBounds(level, false)} SELECT grp, klo, khi FROM bounds ORDER BY grp`,
          [rows]
        );
        assert.equal(exact.length, bounds.length);
        bounds.forEach((b, g) => {
          const [lo, hi] = b.b as number[];
          const at = `${rows} at ${level}: bounds ${lo}..${hi}, merged keys ${exact[g].klo}..${exact[g].khi}`;
          assert.ok(lo <= exact[g].klo && exact[g].khi <= hi, at);
          assert.ok(lo >= b.min_lo && hi <= b.max_hi, `never looser than min and max: ${at}`);
          tighter += lo > b.min_lo || hi < b.max_hi ? 1 : 0;
          compared++;
        });
      }),
      // A failure is reported as found: shrinking these inputs takes minutes of queries.
      { numRuns: 300, endOnFailure: true }
    );
    // Groups of several parts, some of few values, are where the weighing pays.
    assert.ok(tighter > compared / 5, `tighter than min and max in ${tighter} of ${compared} groups`);
  });

  test("top rules' coarse keys at a rank: the same keys in C as in SQL", async () => {
    // Up to 12 rows a group: the aggregate merges the first 8 sketches in key order, then sorts.
    const groups = fc.array(fc.array(fc.option(sketch, { nil: null }), { minLength: 1, maxLength: 12 }), {
      minLength: 1,
      maxLength: 4,
    });
    const src = `src AS (
      SELECT x.grp, 0.5::float8 AS exec_time_min, 1e9::float8 AS exec_time_max, x.s::bigint[] AS latency_sketch
      FROM jsonb_to_recordset($1::jsonb) AS x(grp text, s text))`;
    const run = async (level: number, nativeSketches: boolean, rows: string) =>
      (
        await db.pool.query(
          `WITH ${src}, ${coarseBounds(level, nativeSketches)} SELECT grp, klo, khi FROM bounds ORDER BY grp`,
          [rows]
        )
      ).rows;
    let compared = 0;
    await fc.assert(
      fc.asyncProperty(groups, fc.constantFrom(0.95, 0.99), async (gs, level) => {
        const rows = JSON.stringify(
          gs.flatMap((parts, g) => parts.map((p) => ({ grp: `g${g}`, s: p === null ? null : `{${p.join(',')}}` })))
        );
        const [inSql, inC] = [await run(level, false, rows), await run(level, true, rows)];
        assert.deepEqual(inC, inSql, rows);
        compared += inC.filter((r) => r.klo !== null).length;
      }),
      { numRuns: 200 }
    );
    assert.ok(compared > 100, `keys were compared (${compared} groups)`);
  });

  test("top rules' coarse keys over groups of thousands of entries (C sums its running state): the same keys as SQL", async () => {
    // A rule over weeks: hundreds of rows of a few dozen coarse keys each, so the aggregate's
    // state fills and is summed many times (its capacity doubling from 64) and merges on from the sums.
    const coarse = fc
      .uniqueArray(fc.integer({ min: 60, max: 130 }), { minLength: 12, maxLength: 40 })
      .chain((ks) =>
        fc.tuple(
          ...ks
            .sort((a, b) => a - b)
            .map((k) => fc.integer({ min: 0, max: 3000 }).map((c) => `${(BigInt(k) << 32n) | BigInt(c)}`))
        )
      );
    const group = fc.array(coarse, { minLength: 350, maxLength: 450 });
    const src = `src AS (
      SELECT x.grp, 0.5::float8 AS exec_time_min, 1e9::float8 AS exec_time_max, x.s::bigint[] AS latency_sketch
      FROM jsonb_to_recordset($1::jsonb) AS x(grp text, s text))`;
    const run = async (level: number, nativeSketches: boolean, rows: string) =>
      (
        await db.pool.query(
          `WITH ${src}, ${coarseBounds(level, nativeSketches)} SELECT grp, klo, khi FROM bounds ORDER BY grp`,
          [rows]
        )
      ).rows;
    let entries = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(group, { minLength: 1, maxLength: 2 }),
        fc.constantFrom(0.95, 0.99),
        async (gs, level) => {
          const rows = JSON.stringify(
            gs.flatMap((parts, g) => parts.map((p) => ({ grp: `g${g}`, s: `{${p.join(',')}}` })))
          );
          assert.deepEqual(await run(level, true, rows), await run(level, false, rows));
          entries = Math.max(entries, ...gs.map((parts) => parts.reduce((n, p) => n + p.length, 0)));
        }
      ),
      // Shrinking thousands of entries takes minutes: the first failure is reported.
      { numRuns: 25, endOnFailure: true }
    );
    assert.ok(entries > 4096, `a group held thousands of entries (${entries})`);
  });

  test("top rules' keys from rows partly outside the range (its first day read whole): they bound the range's keys for random parts of those rows lying in it", async () => {
    // Coarse keys close together (ties and zero counts matter), rows inside the range, and
    // rows partly outside it with how many of each entry's values lie inside.
    const k = fc.integer({ min: 0, max: 30 });
    const insideRow = fc.array(fc.tuple(k, fc.integer({ min: 0, max: 40 })), { maxLength: 6 });
    const outsideRow = fc.array(
      fc
        .tuple(k, fc.integer({ min: 0, max: 40 }))
        .chain(([key, c]) => fc.tuple(fc.constant(key), fc.constant(c), fc.integer({ min: 0, max: c }))),
      { maxLength: 6 }
    );
    const asSketch = (row: Array<[number, number]>) =>
      `{${row.map(([key, c]) => `${(BigInt(key) << 32n) | BigInt(c)}`).join(',')}}`;
    /** Entries summed by key, ascending. */
    const summed = (entries: Array<[number, number]>) => {
      const by = new Map<number, number>();
      for (const [key, c] of entries) {
        by.set(key, (by.get(key) ?? 0) + c);
      }
      return [...by.entries()].sort((a, b) => a[0] - b[0]);
    };
    const keyAt = (entries: Array<[number, number]>, r: number) => {
      let before = 0;
      for (const [key, c] of entries) {
        if (before <= r && r < before + c) {
          return key;
        }
        before += c;
      }
      return null;
    };
    let bounded = 0;
    let withoutLower = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(insideRow, { maxLength: 4 }),
        fc.array(fc.tuple(outsideRow, fc.boolean()), { maxLength: 3 }),
        fc.constantFrom(0.5, 0.95, 0.99),
        fc.nat(),
        async (inside, outsideRows, level, levelRow) => {
          const outside = outsideRows.map(([row]) => row);
          // Outside rows flagged true, or NULL (a row of unknown place counts as outside); the
          // level on one row only (the others NULL), as any row may bring it.
          const all = [
            ...inside.map((row) => ({ s: asSketch(row), o: false as boolean | null })),
            ...outsideRows.map(([row, unknown]) => ({
              s: asSketch(row.map(([key, c]) => [key, c])),
              o: unknown ? null : true,
            })),
          ];
          const rows = JSON.stringify(all.map((r, i) => ({ ...r, l: i === levelRow % all.length ? level : null })));
          const { rows: got } = await db.pool.query(
            `SELECT ruleperf_native_keys_within_agg(x.s::bigint[], x.o, x.l) AS kk,
                      ruleperf_native_keys_at_agg(x.s::bigint[], $2::float8) AS whole
                 FROM jsonb_to_recordset($1::jsonb) AS x(s text, o boolean, l float8)`,
            [rows, level]
          );
          const kk = got[0].kk as Array<number | null> | null;
          const inRange = summed([
            ...inside.flat(),
            ...outside.flat().map(([key, , c]) => [key, c] as [number, number]),
          ]);
          const every = summed([...inside.flat(), ...outside.flat().map(([key, c]) => [key, c] as [number, number])]);
          const nInside = inside.flat().reduce((n, [, c]) => n + c, 0);
          const nEvery = every.reduce((n, [, c]) => n + c, 0);
          const where = `${rows} at ${level}: ${JSON.stringify(kk)}`;
          if (nEvery === 0) {
            assert.equal(kk, null, where);
            return;
          }
          assert.ok(kk !== null && kk[1] !== null, where);
          // Without a row inside, the range may hold no value: no lower bound.
          assert.equal(kk[0] === null, nInside === 0, where);
          withoutLower += kk[0] === null ? 1 : 0;
          if (outside.length === 0) {
            assert.deepEqual(kk, got[0].whole, `with every row inside, the keys at the ranks: ${where}`);
          }
          const n = inRange.reduce((m, [, c]) => m + c, 0);
          if (n === 0) {
            return;
          }
          const h = level * (n - 1);
          const [low, high] = [keyAt(inRange, Math.floor(h)), keyAt(inRange, Math.ceil(h))];
          if (kk[0] !== null && low !== null) {
            assert.ok(kk[0] <= low, `lower bound ${kk[0]} above the range's key ${low}: ${where}`);
          }
          if (high !== null) {
            assert.ok(high <= kk[1]!, `upper bound ${kk[1]} below the range's key ${high}: ${where}`);
          }
          bounded += 1;
        }
      ),
      { numRuns: 600 }
    );
    assert.ok(bounded > 300 && withoutLower > 10, `ranges bounded: ${bounded}; without a lower bound: ${withoutLower}`);
  });
}
