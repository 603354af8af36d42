/**
 * The read pool's sessions carry the planner settings dashboard queries are tuned for
 * (server/db/pools.ts), and only the read pool: refreshes plan with the server's own.
 */
import assert from 'node:assert/strict';
import { test, after } from 'node:test';
import { loadConfig } from '../../server/config';
import { createPools } from '../../server/db/pools';
import { freshDatabase, type TestDatabase } from '../support/services';

const databases: TestDatabase[] = [];
after(async () => {
  await Promise.all(databases.map((db) => db.drop()));
});

async function settings(env: Record<string, string>) {
  const db = await freshDatabase({ migrate: false });
  databases.push(db);
  const pools = createPools(loadConfig({ DATABASE_URL: db.url, ...env }), db.url);
  try {
    const show = async (pool: typeof pools.read) =>
      (
        await pool.query(
          `SELECT current_setting('random_page_cost') AS random_page_cost,
                  current_setting('max_parallel_workers_per_gather') AS workers, current_setting('jit') AS jit`
        )
      ).rows[0];
    const server = (await db.pool.query(`SELECT current_setting('random_page_cost') AS v`)).rows[0].v;
    return { read: await show(pools.read), write: await show(pools.write), server };
  } finally {
    await pools.end();
  }
}

test('reads price a page out of order at 1.1 by default, without parallel workers or JIT; refreshes keep the server default', async () => {
  const { read, write, server } = await settings({});
  assert.deepEqual(read, { random_page_cost: '1.1', workers: '0', jit: 'off' });
  assert.notEqual(server, '1.1', "this server's default differs from the read pool's");
  assert.equal(write.random_page_cost, server, 'the server default for refreshes');
});

test('DB_RANDOM_PAGE_COST and DB_PARALLEL_WORKERS set the read pool', async () => {
  const { read } = await settings({ DB_RANDOM_PAGE_COST: '2.5', DB_PARALLEL_WORKERS: '2' });
  assert.deepEqual(read, { random_page_cost: '2.5', workers: '2', jit: 'off' });
});

test('a DB_RANDOM_PAGE_COST out of range is refused at start', () => {
  assert.throws(() => loadConfig({ DATABASE_URL: 'postgres://x/y', DB_RANDOM_PAGE_COST: '0' }), /DB_RANDOM_PAGE_COST/);
});
