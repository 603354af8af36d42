/** What an answer row's figures are made of: exact sums, and bounded digits where a figure is an estimate. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { columnsRead, measure, measures, significant, type MeasureName } from './measures';

const row = {
  execution_count: 3,
  exec_time_sum: 10,
  exec_time_min: 1.0000001,
  exec_time_max: 12.345678901234567,
  error_count: 1,
  p50: 2.718281828459045,
  p95: 9.87654321987,
  p99: 12.35,
};

test('percentiles carry six significant digits and stay within the exact extremes', () => {
  const m = measures(row, 7);
  assert.equal(m.p50ExecutionTimeMs, 2.71828);
  assert.equal(m.p95ExecutionTimeMs, 9.87654);
  // Above the exact maximum (as a sketch bucket's value can be): the maximum itself, every digit.
  assert.equal(m.p99ExecutionTimeMs, 12.345678901234567);
  // Just below it, where rounding up would pass it: the maximum.
  assert.equal(measures({ ...row, p50: 1, p95: 1, p99: 12.3456789 }, 7).p99ExecutionTimeMs, row.exec_time_max);
});

test('averages keep every digit; throughput and error rate ten significant digits; counts exact', () => {
  const m = measures(row, 7);
  assert.equal(m.avgExecutionTimeMs, 10 / 3);
  assert.equal(m.throughputPerSecond, 0.4285714286);
  assert.equal(m.errorRate, 0.3333333333);
  assert.equal(m.executionCount, 3);
  assert.equal(
    measures({ ...row, execution_count: 9_007_199_254_740_991 }, 1).throughputPerSecond,
    9_007_199_254_740_991
  );
});

test('significant digits: integers and non-finite values pass through', () => {
  assert.equal(significant(123456789, 3), 123456789);
  assert.equal(significant(Infinity, 3), Infinity);
  assert.equal(significant(0.000123456, 3), 0.000123);
});

test('each figure reads only the columns columnsRead names for it (an answer fetches no others)', () => {
  const full = {
    ...row,
    records_processed: 40,
    records_failed: 2,
    success_count: 1,
    timeout_count: 1,
  };
  for (const name of Object.keys(measures(full, 7)) as MeasureName[]) {
    const columns = columnsRead([name]);
    const only = Object.fromEntries(columns.map((c) => [c, full[c as keyof typeof full]]));
    assert.equal(measure(only, 7, name), measure(full, 7, name), `${name} from ${columns.join(', ')}`);
    assert.notEqual(measure(full, 7, name), null, `${name} has a value to compare`);
  }
  assert.deepEqual(columnsRead(['errorCount', 'p95ExecutionTimeMs']), [
    'execution_count',
    'error_count',
    'exec_time_min',
    'exec_time_max',
    'p95',
  ]);
});

test('significant digits are exactly those of toPrecision: any double, sketch values, and values near a half', () => {
  const reference = (v: number, d: number) =>
    Number.isInteger(v) || !Number.isFinite(v) ? v : Number(v.toPrecision(d));
  const GAMMA = 1.016129032258064;
  const values = fc.oneof(
    fc.double({ noNaN: true }),
    fc.double({ min: 1e-9, max: 1e9, noNaN: true }),
    fc.integer({ min: -1500, max: 1500 }).map((k) => GAMMA ** k),
    // Halves at the sixth and tenth digit, where rounding goes up or down on the last bit.
    fc
      .tuple(fc.integer({ min: 100_000, max: 9_999_999_999 }), fc.integer({ min: 0, max: 14 }))
      .map(([n, k]) => (n + 0.5) / 10 ** k)
  );
  fc.assert(
    fc.property(values, fc.constantFrom(6, 10), (v, d) => {
      assert.ok(Object.is(significant(v, d), reference(v, d)), `${v} to ${d} digits`);
    }),
    { numRuns: 20_000, seed: 3 }
  );
});
