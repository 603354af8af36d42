/** Readiness: one look at the database serves the checks arriving together, and a new look follows soon after. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Pool } from 'pg';
import { latestVersion } from '../db/migrate';
import { READINESS_REUSE_MS, readiness } from './readiness';

test('a flood of checks shares one look at the database; a check after READINESS_REUSE_MS looks again', async () => {
  let queries = 0;
  let up = true;
  const pool = {
    async query(sql: string) {
      queries++;
      await new Promise((r) => setTimeout(r, 20));
      if (!up) {
        throw new Error('connection refused');
      }
      return sql.includes('to_regclass')
        ? { rows: [{ present: true }] }
        : { rows: [{ flavour: 'postgres', version: latestVersion('postgres') }] };
    },
  } as unknown as Pool;
  const check = readiness({ pool, cacheState: () => 'up' });
  const flood = await Promise.all(Array.from({ length: 200 }, () => check()));
  assert.ok(flood.every((r) => r.status === 'ready'));
  assert.equal(queries, 2, 'one look (two statements) for 200 checks');
  up = false;
  await new Promise((r) => setTimeout(r, READINESS_REUSE_MS + 10));
  const down = await check();
  assert.equal(down.status, 'not_ready', 'the database going away is seen within READINESS_REUSE_MS');
  assert.equal(down.database.ok, false);
  up = true;
  assert.equal((await check()).status, 'ready', 'a failed look is not kept: the database back is seen at once');
});

test('a database that does not answer in time is reported not ready at once, saying so; the look goes on and is shared', async () => {
  let release: () => void = () => undefined;
  let queries = 0;
  const pool = {
    async query(sql: string) {
      queries++;
      await new Promise<void>((r) => (release = r)); // a session held by a long statement
      return sql.includes('to_regclass')
        ? { rows: [{ present: true }] }
        : { rows: [{ flavour: 'postgres', version: latestVersion('postgres') }] };
    },
  } as unknown as Pool;
  const check = readiness({ pool, cacheState: () => 'up', answerWithinMs: 100 });
  const asked = Date.now();
  const held = await check();
  assert.ok(Date.now() - asked < 1000, `answered after ${Date.now() - asked} ms`);
  assert.equal(held.status, 'not_ready');
  assert.match(held.database.error!, /did not answer within 100 ms/);
  const again = check();
  release();
  await new Promise((r) => setTimeout(r, 10));
  release();
  assert.equal((await again).status, 'ready', 'the same look, answered');
  assert.equal(queries, 2, 'one look (two statements) for both checks');
});
