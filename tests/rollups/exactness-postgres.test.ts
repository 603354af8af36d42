import assert from 'node:assert/strict';
import { test, before, after } from 'node:test';
import { freshDatabase, type TestDatabase } from '../support/services';
import { checkExactness } from '../support/exactness';
import { refreshRollups } from '../../server/db/refresh';

let db: TestDatabase;
before(async () => {
  db = await freshDatabase({ flavour: 'postgres' });
});
after(async () => {
  await db.drop();
});

test('postgres flavour: rollups + live edge equal the raw table for random data, ranges and filters', async () => {
  const worst = await checkExactness(
    db.pool,
    async (until) => void (await refreshRollups(db.pool, 'postgres', { until })),
    Number(process.env.EXACTNESS_RUNS ?? 40)
  );
  assert.ok(worst.count > 0, 'the property compared no bucket with 3+ rows: the generator is too sparse');
  console.log(
    `buckets compared with 3+ rows: ${worst.count}; worst relative error: avg ${worst.avg.toExponential(2)}, percentiles ${(worst.percentile * 100).toFixed(3)} %`
  );
});
