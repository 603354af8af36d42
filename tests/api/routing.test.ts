/** The aggregate navigator's decisions, without a database. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chooseRoute, RouteError } from '../../server/query/router';
import type { RollupInfo } from '../../server/query/catalog';

const H = 3_600_000;
const D = 24 * H;
const FULL = ['metric_type', 'rule_id', 'parser_id', 'rule_category', 'source_type', 'status'];
const rollups: RollupInfo[] = [
  { name: 'metrics_hourly', tier: 'hourly', source: 'metrics', bucketMs: H, dims: FULL, refreshEveryMs: 300_000, rankKeys: true },
  { name: 'metrics_daily', tier: 'daily', source: 'metrics_hourly', bucketMs: D, dims: FULL, refreshEveryMs: H, rankKeys: true },
  { name: 'metrics_hourly_by_type', tier: 'hourly_by_type', source: 'metrics_hourly', bucketMs: H, dims: ['metric_type', 'status'], refreshEveryMs: 300_000, rankKeys: false },
  { name: 'metrics_daily_by_type', tier: 'daily_by_type', source: 'metrics_daily', bucketMs: D, dims: ['metric_type', 'status'], refreshEveryMs: H, rankKeys: false },
  { name: 'metrics_hourly_total', tier: 'hourly_total', source: 'metrics_hourly_by_type', bucketMs: H, dims: [], refreshEveryMs: 300_000, rankKeys: false },
  { name: 'metrics_daily_total', tier: 'daily_total', source: 'metrics_daily_by_type', bucketMs: D, dims: [], refreshEveryMs: H, rankKeys: false },
  { name: 'metrics_hourly_by_rule', tier: 'hourly_by_rule', source: 'metrics_hourly', bucketMs: H, dims: ['rule_id', 'rule_category', 'metric_type'], refreshEveryMs: 300_000, rankKeys: true },
  { name: 'metrics_daily_by_rule', tier: 'daily_by_rule', source: 'metrics_daily', bucketMs: D, dims: ['rule_id', 'rule_category', 'metric_type'], refreshEveryMs: H, rankKeys: true },
];
const now = Date.parse('2026-06-10T13:37:42.123Z');
const route = (spanMs: number, extra: Partial<Parameters<typeof chooseRoute>[0]> = {}) =>
  chooseRoute({ kind: 'stats', granularity: 'auto', from: now - spanMs, to: now, neededDims: [], rollups, dailyFromMs: 7 * D, ...extra });

test('auto picks hourly below 7 days and daily from 7 days; the threshold is configurable', () => {
  assert.equal(route(H).primary.bucketMs, H);
  assert.equal(route(6.9 * D).primary.bucketMs, H);
  assert.equal(route(7 * D).primary.bucketMs, D);
  assert.equal(route(30 * D).primary.bucketMs, D);
  assert.equal(route(3 * D, { dailyFromMs: 2 * D }).primary.bucketMs, D);
  assert.equal(route(30 * D, { granularity: 'hourly' }).primary.bucketMs, H);
  assert.equal(route(H, { granularity: 'daily' }).primary.bucketMs, D);
});

test('the smallest rollup holding the needed dimensions answers; a finer one fills after its watermark', () => {
  assert.equal(route(30 * D).primary.name, 'metrics_daily_total');
  assert.equal(route(30 * D).finer?.name, 'metrics_hourly_total');
  assert.equal(route(30 * D, { neededDims: ['rule_id'] }).primary.name, 'metrics_daily_by_rule', 'top rules');
  assert.equal(route(30 * D, { neededDims: ['rule_id', 'metric_type'] }).finer?.name, 'metrics_hourly_by_rule');
  assert.equal(route(30 * D, { neededDims: ['metric_type', 'status'] }).primary.name, 'metrics_daily_by_type');
  assert.equal(route(30 * D, { neededDims: ['rule_id', 'parser_id'] }).primary.name, 'metrics_daily');
  assert.equal(route(30 * D, { neededDims: ['rule_id', 'parser_id'] }).finer?.name, 'metrics_hourly');
  assert.equal(route(D, { neededDims: ['rule_category'] }).primary.name, 'metrics_hourly_by_rule');
  assert.equal(route(D, { neededDims: ['rule_category', 'parser_id'] }).primary.name, 'metrics_hourly');
  assert.equal(route(D, { neededDims: ['rule_category', 'parser_id'] }).finer, null);
  assert.throws(() => route(D, { neededDims: ['no_such_dim'] }), RouteError);
});

test('ranges align outward to the buckets: a minute later gives the same aligned range', () => {
  const a = route(D);
  const b = chooseRoute({ kind: 'stats', granularity: 'auto', from: now - D + 60_000, to: now + 60_000, neededDims: [], rollups, dailyFromMs: 7 * D });
  assert.equal(a.alignedFrom % H, 0);
  assert.equal(a.alignedTo % H, 0);
  assert.ok(a.alignedFrom <= now - D && a.alignedTo >= now);
  assert.deepEqual([a.alignedFrom, a.alignedTo], [b.alignedFrom, b.alignedTo]);
  const daily = route(30 * D);
  assert.equal(daily.alignedFrom % D, 0);
  assert.equal(daily.alignedTo % D, 0);
});

test('a timeseries never uses buckets finer than Grafana asked for', () => {
  const ts = (span: number, intervalMs?: number, maxDataPoints?: number) =>
    route(span, { kind: 'timeseries', intervalMs, maxDataPoints }).bucketMs;
  assert.equal(ts(D, 60_000), H);
  assert.equal(ts(D, 2 * H), 2 * H);
  assert.equal(ts(D, 90 * 60_000), 2 * H, 'rounded up to whole rollup buckets');
  assert.equal(ts(6 * D, 60_000, 24), 6 * H, 'no more points than maxDataPoints');
  assert.equal(ts(30 * D, 60_000), D);
  assert.equal(ts(60 * D, 3 * D), 3 * D);
  const r = route(D, { kind: 'timeseries', intervalMs: 2 * H });
  assert.equal(r.alignedFrom % (2 * H), 0, 'aligned to the answer buckets');
});
