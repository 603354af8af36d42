/** What an answer row's figures are made of: exact sums, and bounded digits where a figure is an estimate. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { measures, significant } from './measures';

const row = {
  execution_count: 3,
  exec_time_sum: 10,
  exec_time_min: 1.0000001,
  exec_time_max: 12.345678901234567,
  error_count: 1,
  pct: [2.718281828459045, 9.87654321987, 12.35],
};

test('percentiles carry six significant digits and stay within the exact extremes', () => {
  const m = measures(row, 7);
  assert.equal(m.p50ExecutionTimeMs, 2.71828);
  assert.equal(m.p95ExecutionTimeMs, 9.87654);
  // Above the exact maximum (as a sketch bucket's value can be): the maximum itself, every digit.
  assert.equal(m.p99ExecutionTimeMs, 12.345678901234567);
  // Just below it, where rounding up would pass it: the maximum.
  assert.equal(measures({ ...row, pct: [1, 1, 12.3456789] }, 7).p99ExecutionTimeMs, row.exec_time_max);
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
