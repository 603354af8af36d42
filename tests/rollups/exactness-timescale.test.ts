import assert from 'node:assert/strict';
import { test, before, after } from 'node:test';
import { checkExactness } from '../support/exactness';
import { embeddedTimescale } from '../support/embedded';
import { refreshRollups } from '../../server/db/refresh';

let db: Awaited<ReturnType<typeof embeddedTimescale>>;
before(async () => {
  db = await embeddedTimescale();
});
after(async () => {
  await db.stop();
});

test('timescale flavour (WASM TimescaleDB): continuous aggregates + live edge equal the raw table', async () => {
  // DELETE, not TRUNCATE: continuous aggregates learn of changes from DML invalidations.
  const worst = await checkExactness(
    db.pool,
    async (until) => void (await refreshRollups(db.pool, 'timescale', { until })),
    Number(process.env.EXACTNESS_RUNS_TIMESCALE ?? 12),
    'DELETE FROM metrics'
  );
  assert.ok(worst.count > 0, 'the property compared no bucket with 3+ rows');
  console.log(
    `buckets compared with 3+ rows: ${worst.count}; worst relative error: avg ${worst.avg.toExponential(2)}, percentiles ${(worst.percentile * 100).toFixed(3)} %`
  );
});
