/**
 * The exactness property shared by both flavours: for random raw rows (ties, zeros,
 * nulls, wide latency ranges), a random refresh point (so part of the range is the
 * live edge), and random ranges, filters and groupings, the service's answer equals
 * the raw table's: counts, sums, min and max exactly, averages to 1e-9, percentiles
 * within 1 % of percentile_cont.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Pool } from 'pg';
import { queryRunner, columns } from '../../testkit/runner';
import { rawStats, relErr } from '../../testkit/raw';

const BASE = Date.parse('2026-01-05T00:00:00Z');
const SPAN = 3 * 86_400_000;
const POOLS = {
  metricType: ['RULE_EXECUTION', 'PARSER_EXECUTION', 'ENRICHMENT'],
  ruleId: ['r1', 'r2', 'r3'],
  parserId: ['p1', 'p2'],
  ruleCategory: ['auth', 'net'],
  sourceType: ['syslog', 'dns'],
  status: ['SUCCESS', 'ERROR', 'TIMEOUT'],
};

const latency = fc.oneof(
  fc.constant(0),
  fc.integer({ min: 1, max: 40 }), // many ties
  fc.double({ min: -3, max: 5, noNaN: true }).map((e) => Math.round(Math.pow(10, e) * 1000) / 1000)
);

const rowArb = fc.record({
  // Most rows in the first day, so buckets hold enough rows for percentiles to matter.
  offset: fc.oneof(
    { weight: 4, arbitrary: fc.integer({ min: 0, max: 86_400_000 - 1 }) },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: SPAN - 1 }) }
  ),
  metricType: fc.constantFrom(...POOLS.metricType),
  ruleId: fc.option(fc.constantFrom(...POOLS.ruleId), { nil: null }),
  parserId: fc.option(fc.constantFrom(...POOLS.parserId), { nil: null }),
  ruleCategory: fc.option(fc.constantFrom(...POOLS.ruleCategory), { nil: null }),
  sourceType: fc.constantFrom(...POOLS.sourceType),
  status: fc.constantFrom('SUCCESS', 'SUCCESS', 'SUCCESS', 'ERROR', 'TIMEOUT'),
  latency,
  processed: fc.integer({ min: 0, max: 5000 }),
});

const FILTER_VALUES = {
  metricType: fc.subarray(POOLS.metricType, { minLength: 1 }),
  ruleId: fc.subarray(POOLS.ruleId, { minLength: 1 }),
  parserId: fc.constantFrom(...POOLS.parserId),
  ruleCategory: fc.constantFrom(...POOLS.ruleCategory),
  status: fc.subarray(POOLS.status, { minLength: 1 }),
};
type FilterName = keyof typeof FILTER_VALUES;
/** Mostly zero to two filters, so most answers have rows to compare. */
const filterArb = fc
  .subarray(Object.keys(FILTER_VALUES) as FilterName[], { maxLength: 2 })
  .chain((names) =>
    fc.record(
      Object.fromEntries(names.map((n) => [n, FILTER_VALUES[n]])) as Record<string, fc.Arbitrary<string | string[]>>
    )
  );

const queryArb = fc.record({
  from: fc.integer({ min: -3_600_000, max: 86_400_000 }),
  length: fc.integer({ min: 60_000, max: SPAN }),
  filters: filterArb,
  granularity: fc.constantFrom('auto', 'hourly', 'daily') as fc.Arbitrary<'auto' | 'hourly' | 'daily'>,
  groupBy: fc.constantFrom(undefined, 'ruleId', 'status', 'metricType') as fc.Arbitrary<
    'ruleId' | 'status' | 'metricType' | undefined
  >,
});

export interface Worst {
  /** Buckets compared that held three or more rows (where percentiles are not just min/max). */
  count: number;
  avg: number;
  percentile: number;
}

export async function checkExactness(
  pool: Pool,
  refresh: (until: Date) => Promise<void>,
  runs: number,
  clear = 'TRUNCATE metrics'
): Promise<Worst> {
  const run = await queryRunner(pool);
  const worst: Worst = { count: 0, avg: 0, percentile: 0 };
  let lastFailure = '';
  await fc.assert(
    fc.asyncProperty(
      fc.array(rowArb, { minLength: 20, maxLength: 2000, size: 'large' }),
      fc.integer({ min: 0, max: SPAN }),
      fc.array(queryArb, { minLength: 1, maxLength: 4 }),
      async (rows, untilOffset, queries) => {
        try {
          await pool.query(clear);
          await pool.query(
            `INSERT INTO metrics (time, metric_type, rule_id, parser_id, rule_category, source_type, status, execution_time_ms, records_processed)
         SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::float8[], $9::bigint[])`,
            [
              rows.map((r) => new Date(BASE + r.offset)),
              rows.map((r) => r.metricType),
              rows.map((r) => r.ruleId),
              rows.map((r) => r.parserId),
              rows.map((r) => r.ruleCategory),
              rows.map((r) => r.sourceType),
              rows.map((r) => r.status),
              rows.map((r) => r.latency),
              rows.map((r) => r.processed),
            ]
          );
          await refresh(new Date(BASE + untilOffset));
          for (const spec of queries) {
            const range = { from: BASE + spec.from, to: BASE + spec.from + spec.length };
            const { q, answer } = await run(range, {
              refId: 'A',
              kind: 'timeseries',
              granularity: spec.granularity,
              ...spec.filters,
              groupBy: spec.groupBy,
              metrics: [
                'executionCount',
                'avgExecutionTimeMs',
                'p50ExecutionTimeMs',
                'p95ExecutionTimeMs',
                'p99ExecutionTimeMs',
                'maxExecutionTimeMs',
                'errorCount',
                'timeoutCount',
                'recordsProcessed',
              ],
            });
            const groupColumn = spec.groupBy
              ? { ruleId: 'rule_id', status: 'status', metricType: 'metric_type' }[spec.groupBy]
              : undefined;
            const exact = await rawStats(pool, q.range.from, q.range.to, spec.filters, groupColumn, q.bucketMs!);
            for (const frame of answer.frames) {
              const c = columns(frame);
              const group = spec.groupBy ? frame.schema.name! : '';
              for (let i = 0; i < c.time.length; i++) {
                const t = c.time[i] as number;
                const expected = exact.get(`${t}|${group}`);
                const context = `bucket ${new Date(t).toISOString()} group "${group}" tiers ${answer.tiers.join('+')}`;
                const n = expected?.n ?? 0;
                assert.equal(c.executionCount[i], n, `count, ${context}`);
                if (!expected) {
                  continue;
                }
                assert.equal(c.errorCount[i], expected.errors, `errors, ${context}`);
                assert.equal(c.timeoutCount[i], expected.timeouts, `timeouts, ${context}`);
                assert.equal(c.recordsProcessed[i], expected.processed, `records, ${context}`);
                assert.equal(c.maxExecutionTimeMs[i], expected.max, `max, ${context}`);
                const avgErr = relErr(c.avgExecutionTimeMs[i], expected.sum! / n);
                assert.ok(avgErr <= 1e-9, `avg off by ${avgErr}, ${context}`);
                worst.avg = Math.max(worst.avg, avgErr);
                if (n >= 3) {
                  worst.count++;
                }
                for (const p of ['p50', 'p95', 'p99'] as const) {
                  const err = relErr(c[`${p}ExecutionTimeMs`][i], expected[p]);
                  assert.ok(
                    err <= 0.01,
                    `${p} ${c[`${p}ExecutionTimeMs`][i]} vs exact ${expected[p]} (${(err * 100).toFixed(3)} %), ${context}`
                  );
                  worst.percentile = Math.max(worst.percentile, err);
                }
              }
            }
            // Groups the service left out must be empty in the raw table too.
            if (spec.groupBy) {
              const total = (await rawStats(pool, q.range.from, q.range.to, spec.filters)).get('')?.n ?? 0;
              const answered = answer.frames.reduce(
                (s, f) => s + (columns(f).executionCount as number[]).reduce((a, b) => a + b, 0),
                0
              );
              assert.equal(answered, total, 'every execution in the range is in some group');
            }
          }
        } catch (err) {
          lastFailure = (err as Error).message;
          throw err;
        }
      }
    ),
    // The counterexample (thousands of rows) is too long to read: report the failed check instead.
    {
      numRuns: runs,
      endOnFailure: true,
      reporter: (details) => {
        if (details.failed) {
          throw new Error(`exactness failed after ${details.numRuns} runs (seed ${details.seed}): ${lastFailure}`);
        }
      },
    }
  );
  return worst;
}
