/**
 * The demo's live feed keeps the newest rows within about a second of the clock: fed every
 * 5 s, a now-relative panel's newest point counted up to 5 s that had no rows yet (throughput
 * read 0.86/s against a steady 2.17/s), with nothing to mark it.
 */
import assert from 'node:assert/strict';
import { test, before, after } from 'node:test';
import pino from 'pino';
import { Demo } from '../../server/demo/demo';
import { readDemoState } from '../../server/demo/state';
import { freshDatabase, type TestDatabase } from '../support/services';

let db: TestDatabase;
before(async () => (db = await freshDatabase()));
after(() => db?.drop());

test('the live feed trails the clock by about a second', async () => {
  const demo = await Demo.prepare(
    db.pool,
    'postgres',
    { days: 1, rowsPerHour: 120, seed: 3, live: true, rules: 4, parsers: 2 },
    pino({ level: 'silent' }),
    false
  );
  assert.ok(demo);
  demo.start();
  try {
    // Six seconds of samples, after a second to settle: more than one tick of the old feed.
    await new Promise((r) => setTimeout(r, 1000));
    let worst = 0;
    for (let i = 0; i < 20; i++) {
      const state = await readDemoState(db.pool);
      worst = Math.max(worst, Date.now() - state!.loadedTo);
      await new Promise((r) => setTimeout(r, 300));
    }
    assert.ok(worst < 3500, `the newest rows were up to ${worst} ms behind the clock`);
  } finally {
    await demo.stop();
  }
});
