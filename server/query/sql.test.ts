/** SQL shaping without a database: one SELECT per table read, parameters as the inspector shows them. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RollupInfo } from './catalog';
import type { NormalizedQuery } from './normalize';
import type { Piece } from './plan';
import { HOUR_MS as H } from './range';
import { Params, showStatement, sourceRows } from './sql';

const hourly: RollupInfo = {
  name: 'metrics_hourly_by_rule',
  tier: 'hourly_by_rule',
  source: 'metrics',
  bucketMs: H,
  dims: ['rule_id', 'rule_category', 'metric_type'],
  refreshEveryMs: 300_000,
  rankKeys: false,
};
const T0 = Date.parse('2026-06-10T00:00:00Z');
const q = (filters: NormalizedQuery['filters'] = {}): NormalizedQuery => ({
  kind: 'stats',
  filters,
  groupBy: null,
  metrics: [],
  limit: 0,
  sortBy: null,
  range: { from: T0, to: T0 + 5 * H },
  differsFromAsked: false,
  inWholeHours: false,
  movingStepMs: null,
  bucketMs: null,
  coarserThanAskedMs: null,
  coarserBecause: null,
  fields: [],
});
const raw = (from: number, to: number): Piece => ({ rollup: null, from, to });
const rolled = (from: number, to: number): Piece => ({ rollup: hourly, from, to });

test('pieces reading one table are one SELECT over their ranges, rollups first, adjacent ranges joined', () => {
  const p = new Params();
  const pieces = [
    raw(T0 + 60_000, T0 + H),
    rolled(T0 + H, T0 + 2 * H),
    rolled(T0 + 3 * H, T0 + 4 * H),
    rolled(T0 + 2 * H, T0 + 3 * H),
    raw(T0 + 4 * H, T0 + 4 * H + 30_000),
  ];
  const text = sourceRows(q({ ruleId: ['r1', 'r2'] }), pieces, p, {
    shape: 'counts',
    bucketMs: null,
    group: 'ruleId',
    notNull: ['ruleId'],
  });
  const selects = text.split('UNION ALL');
  assert.equal(selects.length, 2, text);
  assert.match(
    selects[0],
    /FROM "metrics_hourly_by_rule" WHERE bucket >= \$2 AND bucket < \$3 AND "rule_id" = ANY\(\$1::text\[\]\)/,
    'three adjacent hours are one range'
  );
  assert.match(selects[0], /AS bucket, "rule_id" AS grp, execution_count,/, 'the first SELECT names the columns');
  assert.match(
    selects[1],
    /FROM metrics WHERE \(\(time >= \$4 AND time < \$2\) OR \(time >= \$3 AND time < \$5\)\) AND "rule_id" = ANY\(\$1::text\[\]\) GROUP BY 1, 2/,
    'raw minutes at both ends: one scan'
  );
  assert.doesNotMatch(selects[1], / AS /, 'the others are positional');
  assert.doesNotMatch(text, /IS NOT NULL|coalesce/, 'a filter already keeps NULL rules out');
  assert.deepEqual(
    p.values,
    [['r1', 'r2'], new Date(T0 + H), new Date(T0 + 4 * H), new Date(T0 + 60_000), new Date(T0 + 4 * H + 30_000)],
    'the instants shared by rollup and raw ranges are one parameter each'
  );
  assert.ok(!text.includes('latency_sketch'), 'counts read no sketch');
});

test('an instant used twice is one parameter; other values never share one (their types may differ)', () => {
  const p = new Params();
  assert.equal(p.add(new Date(T0)), '$1');
  assert.equal(p.add('60 seconds'), '$2');
  assert.equal(p.add(new Date(T0)), '$1');
  assert.equal(p.add('60 seconds'), '$3');
  assert.equal(p.add(10), '$4');
  assert.equal(p.add(10), '$5');
});

test('parameters on one line; a text run twice shown once with what differs per run', () => {
  assert.equal(
    showStatement({ text: 'SELECT $1, $2', values: [new Date(T0), new Date(T0 + 1)] }, 'title'),
    '-- title\nSELECT $1, $2\n-- $1 = 2026-06-10T00:00:00Z, $2 = 2026-06-10T00:00:00.001Z'
  );
  assert.equal(showStatement({ text: 'SELECT 1', values: [] }), 'SELECT 1');
  const shown = showStatement({
    text: 'SELECT $1, $2',
    values: [['a'], new Date(T0)],
    runs: [
      [['a'], new Date(T0)],
      [['b', 'c'], new Date(T0)],
    ],
  });
  assert.equal(
    shown,
    'SELECT $1, $2\n-- run 1: $1 = ["a"]\n-- run 2: $1 = ["b","c"]\n-- every run: $2 = 2026-06-10T00:00:00Z'
  );
});
