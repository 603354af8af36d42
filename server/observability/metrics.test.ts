/** The hot-path metrics expose exactly what prom-client's own counters and histograms would. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { Counter, Histogram, Registry } from 'prom-client';
import { HotHistogram } from './histogram';
import { Tallies } from './tallies';
import { createMetrics } from './metrics';

const BUCKETS = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.5, 1];

test("a hot histogram renders as prom-client's Histogram does, for any observations and label values", async () => {
  const label = fc.oneof(fc.constantFrom('stats', 'hit', 'hourly_total', 'raw'), fc.string({ maxLength: 6 }));
  const observation = fc.tuple(
    label,
    label,
    fc.oneof(fc.constantFrom(...BUCKETS, 0, 2), fc.double({ min: 0, max: 3, noNaN: true }))
  );
  await fc.assert(
    fc.asyncProperty(fc.array(observation, { maxLength: 40 }), async (observations) => {
      const theirs = new Registry();
      const ours = new Registry();
      const reference = new Histogram({
        name: 'h_seconds',
        help: 'help "text"',
        labelNames: ['kind', 'cache'] as const,
        buckets: BUCKETS,
        registers: [theirs],
      });
      const hot = new HotHistogram({
        name: 'h_seconds',
        help: 'help "text"',
        labelNames: ['kind', 'cache'] as const,
        buckets: BUCKETS,
        registers: [ours],
      });
      for (const [kind, cache, v] of observations) {
        reference.observe({ kind, cache }, v);
        hot.observe({ kind, cache }, v);
      }
      assert.equal(await ours.metrics(), await theirs.metrics());
      const strip = (values: Array<{ labels: object; value: number; metricName?: string }>) =>
        values.map(({ labels, value, metricName }) => ({ labels, value, metricName }));
      assert.deepEqual(strip((await hot.get()).values), strip((await reference.get()).values));
    }),
    { numRuns: 300, seed: 18 }
  );
});

test('tallies reach their counter at every collection, exactly once', async () => {
  const registry = new Registry();
  let tallies: Tallies<'result'> | undefined;
  const counter = new Counter({
    name: 'c_total',
    help: 'c',
    labelNames: ['result'] as const,
    registers: [registry],
    collect: () => tallies?.flush(),
  });
  tallies = new Tallies(counter);
  counter.inc({ result: 'miss' }, 0);
  const hit = tallies.of('hit', { result: 'hit' });
  assert.equal(tallies.of('hit', { result: 'hit' }), hit, 'one tally per key');
  for (let i = 0; i < 5; i++) {
    hit.inc();
  }
  const value = async (result: string) => (await counter.get()).values.find((v) => v.labels.result === result)?.value;
  assert.equal(await value('hit'), 5);
  assert.equal(await value('hit'), 5, 'a second collection adds nothing');
  hit.inc();
  tallies.of('miss', { result: 'miss' }).inc();
  assert.match(await registry.metrics(), /c_total\{result="miss"\} 1\nc_total\{result="hit"\} 6/);
});

test("the service's metrics: hot counts show in /metrics and in get(), the zero series from the start", async () => {
  const m = createMetrics();
  const text = await m.registry.metrics();
  for (const r of ['hit', 'miss', 'stale', 'bypass']) {
    assert.match(text, new RegExp(`ruleperf_cache_requests_total\\{result="${r}"\\} 0`));
  }
  m.hot.cacheResult.hit.inc();
  m.hot.cacheResult.hit.inc();
  m.hot.nearHit.inc();
  m.hot.httpRequest('/api/v1/query', 200).inc();
  m.hot.httpRequest('/api/v1/query', 200).inc();
  m.hot.httpRequest('/api/v1/query', 400).inc();
  m.queryDuration.observe({ kind: 'stats', cache: 'hit', tier: 'hourly' }, 0.0003);
  const after = await m.registry.metrics();
  assert.match(after, /ruleperf_cache_requests_total\{result="hit"\} 2/);
  assert.match(after, /ruleperf_cache_near_hits_total 1/);
  assert.match(after, /ruleperf_http_requests_total\{route="\/api\/v1\/query",status="200"\} 2/);
  assert.match(after, /ruleperf_http_requests_total\{route="\/api\/v1\/query",status="400"\} 1/);
  assert.match(after, /ruleperf_query_duration_seconds_bucket\{le="0.0005",kind="stats",cache="hit",tier="hourly"\} 1/);
  assert.equal((await m.nearHits.get()).values[0].value, 1);
});

test('queue gauges read the watched admissions and loop turns at each collection', async () => {
  const m = createMetrics();
  const read = { waiting: 0, active: 0 };
  const turns = { depth: 0 };
  m.watchQueues({ read, background: { waiting: 1, active: 1 } }, turns);
  read.waiting = 7;
  read.active = 2;
  turns.depth = 3;
  const text = await m.registry.metrics();
  assert.match(text, /ruleperf_db_admission_waiting\{pool="read"\} 7/);
  assert.match(text, /ruleperf_db_admission_waiting\{pool="background"\} 1/);
  assert.match(text, /ruleperf_db_admission_active\{pool="read"\} 2/);
  assert.match(text, /ruleperf_loop_turns_waiting 3/);
  read.waiting = 0;
  assert.match(await m.registry.metrics(), /ruleperf_db_admission_waiting\{pool="read"\} 0/);
});
