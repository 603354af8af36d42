/** The bench's size options and the latency-vs-size chart up to 100M rows. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseScale, rowsLabel } from '../../bench/lib/options';
import { latencyChart } from '../../bench/lib/report';

test('--scale reads 1m … 100m, k and plain counts; refuses what it cannot read', () => {
  assert.deepEqual(
    ['1m', '10m', '45M', '100m', '250k', '1.5m', '5000'].map(parseScale),
    [1e6, 1e7, 45e6, 1e8, 250_000, 1_500_000, 5000]
  );
  assert.throws(() => parseScale('100g'), /cannot read "100g"/);
  assert.throws(() => parseScale('-1m'), /cannot read/);
  assert.throws(() => parseScale('100'), /fewer rows than the 720 hours/);
  assert.deepEqual([1e6, 45e6, 1e8, 1_500_000, 250_000].map(rowsLabel), ['1M', '45M', '100M', '1.5M', '250k']);
});

test('the latency chart places 100M on the log axis after 45M, each series a point per size', () => {
  const sizes = [1e6, 1e7, 45e6, 1e8];
  const svg = latencyChart(
    [
      { name: 'raw table', points: sizes.map((x) => [x, x / 2000] as [number, number]) },
      { name: 'ruleperf uncached', points: sizes.map((x) => [x, 10] as [number, number]) },
    ],
    't'
  );
  assert.equal((svg.match(/<circle/g) ?? []).length, 8);
  const xOf = (label: string) => Number(new RegExp(`<text x="([\\d.]+)"[^>]*>${label} rows</text>`).exec(svg)![1]);
  assert.ok(xOf('1M') < xOf('10M') && xOf('10M') < xOf('45M') && xOf('45M') < xOf('100M'));
  assert.ok(Math.abs(xOf('100M') - xOf('10M') - (xOf('10M') - xOf('1M'))) < 0.5, 'log scale: a decade is a decade');
});
