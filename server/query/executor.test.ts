/** The executor holds one admission slot per answer, and never waits for a second one while holding it. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Pool } from 'pg';
import { Admission } from '../db/admission';
import { NO_NATIVE } from '../db/native';
import { QueryExecutor } from './executor';
import { normalized, SMALL_CATALOG, NOW } from './testing';
import type { WatermarkSource } from './watermarks';
import { HOUR_MS } from './range';

/**
 * A database where every statement takes `ms`, logging what ran and how many ran at once.
 * Top rules' first phase finds six candidate rules, so its second phase runs two statements
 * side by side.
 */
function fakeDatabase(ms: number, ruleSplit: { at: string; rules: number } | null = null) {
  const log: string[] = [];
  let running = 0;
  let most = 0;
  // First-phase halves in flight, and the most at once.
  let halves = 0;
  let halvesMost = 0;
  const pool = {
    async query(text: string) {
      if (text.includes('FROM rules')) {
        log.push('rule split');
        return { rows: ruleSplit === null ? [] : [ruleSplit] };
      }
      running++;
      most = Math.max(most, running);
      const exact = text.includes('AS execution_count');
      const half = text.includes('COLLATE "C" <') ? ' below' : text.includes('COLLATE "C" >=') ? ' from' : '';
      log.push(exact ? 'statement exact' : `statement${half}`);
      halves += half ? 1 : 0;
      halvesMost = Math.max(halvesMost, halves);
      await new Promise((r) => setTimeout(r, ms));
      running--;
      halves -= half ? 1 : 0;
      const candidates = Array.from({ length: 6 }, (_, i) => ({ grp: `rule-${i}`, lo: i, hi: i + 1 }));
      return { rows: text.includes('/ 16)') && !exact ? candidates : [] };
    },
  } as unknown as Pool;
  const state = {
    async current() {
      log.push('state');
      return { status: [], pending: [] };
    },
  } as unknown as WatermarkSource;
  return { pool, state, log, most: () => most, halvesMost: () => halvesMost };
}

const HOURS_AGO = (n: number) => ({ from: NOW - n * HOUR_MS, to: NOW - (n - 1) * HOUR_MS });

test('one slot carries a whole answer: its state read and its statement are not split by another answer', async () => {
  const db = fakeDatabase(5);
  const admission = new Admission({ concurrency: 1, maxQueue: 10, maxWaitMs: 5000 });
  const executor = new QueryExecutor(db.pool, db.state, () => SMALL_CATALOG, admission, { dbQuery: () => undefined });
  await Promise.all([
    executor.run(normalized({ range: HOURS_AGO(3) })),
    executor.run(normalized({ range: HOURS_AGO(2) })),
  ]);
  assert.deepEqual(
    db.log.map((l) => l.split(' ')[0]),
    ['state', 'statement', 'state', 'statement'],
    db.log.join(', ')
  );
  assert.equal(db.most(), 1);
});

test("a statement beside the one on an answer's slot uses a free slot, or waits for its own, never for another", async () => {
  const db = fakeDatabase(5);
  // Two slots, both taken by top-rules answers that each want statements side by side:
  // were they to wait for a second slot while holding one, neither could finish.
  const admission = new Admission({ concurrency: 2, maxQueue: 10, maxWaitMs: 2000 });
  const executor = new QueryExecutor(db.pool, db.state, () => SMALL_CATALOG, admission, { dbQuery: () => undefined });
  const top = (n: number) =>
    executor.run(normalized({ kind: 'topRules', range: HOURS_AGO(n), limit: 10, sortBy: 'p95ExecutionTimeMs' }));
  const started = performance.now();
  await Promise.all([top(3), top(2)]);
  assert.ok(performance.now() - started < 1000, 'no answer waited for a slot the other held');
  assert.equal(db.log.filter((l) => l === 'statement exact').length, 4, 'two exact statements per answer');
  assert.ok(db.most() <= 2, `at most the admitted concurrency at once (${db.most()})`);
  assert.equal(admission.active, 0);
  // Alone, an answer runs its two exact statements side by side on the free slot.
  const alone = fakeDatabase(5);
  const roomy = new QueryExecutor(alone.pool, alone.state, () => SMALL_CATALOG, admission, {
    dbQuery: () => undefined,
  });
  const answer = await roomy.run(
    normalized({ kind: 'topRules', range: HOURS_AGO(4), limit: 10, sortBy: 'p95ExecutionTimeMs' })
  );
  assert.equal(alone.most(), 2, 'side by side');
  assert.match(answer.sql, /phase 2: exact answers for \d+ and \d+ candidates, side by side/);
  assert.equal(admission.active, 0);
  // With one slot, the second waits for the first on it, and the inspector says so.
  const queued = fakeDatabase(5);
  const oneSlot = new Admission({ concurrency: 1, maxQueue: 10, maxWaitMs: 2000 });
  const after = await new QueryExecutor(queued.pool, queued.state, () => SMALL_CATALOG, oneSlot, {
    dbQuery: () => undefined,
  }).run(normalized({ kind: 'topRules', range: HOURS_AGO(4), limit: 10, sortBy: 'p95ExecutionTimeMs' }));
  assert.equal(queued.most(), 1);
  assert.match(after.sql, /phase 2: exact answers for \d+ and \d+ candidates, one after the other/);
  assert.equal(oneSlot.active, 0);
});

test("top rules' first phase reads two halves of the rules side by side on a free slot, and one statement when none is free", async () => {
  const query = normalized({ kind: 'topRules', range: HOURS_AGO(3), limit: 10, sortBy: 'p95ExecutionTimeMs' });
  const phaseOne = (log: string[]) => log.filter((l) => l.startsWith('statement') && l !== 'statement exact');

  // A million known rules: the first phase reads enough rows to split.
  const many = { at: 'rule-3', rules: 1_000_000 };
  const roomy = fakeDatabase(5, many);
  const two = new Admission({ concurrency: 2, maxQueue: 10, maxWaitMs: 2000 });
  const answer = await new QueryExecutor(roomy.pool, roomy.state, () => SMALL_CATALOG, two, {
    dbQuery: () => undefined,
  }).run(query);
  assert.deepEqual(phaseOne(roomy.log).sort(), ['statement below', 'statement from'], roomy.log.join(', '));
  assert.equal(roomy.halvesMost(), 2, 'the halves ran side by side');
  assert.match(answer.sql, /phase 1 \(1\/2, side by side\): candidate rules below rule-3/);
  assert.match(answer.sql, /phase 1 \(2\/2, side by side\): candidate rules from rule-3 on/);
  assert.equal(two.active, 0);

  // One slot: no second one is free, so the first phase is one statement over every rule.
  const busy = fakeDatabase(5, many);
  const one = new Admission({ concurrency: 1, maxQueue: 10, maxWaitMs: 2000 });
  await new QueryExecutor(busy.pool, busy.state, () => SMALL_CATALOG, one, { dbQuery: () => undefined }).run(query);
  assert.deepEqual(phaseOne(busy.log), ['statement'], busy.log.join(', '));

  // A database that runs one statement at a time (the embedded PGlite): one statement, although a slot is free.
  const single = fakeDatabase(5, many);
  await new QueryExecutor(
    single.pool,
    single.state,
    () => SMALL_CATALOG,
    two,
    { dbQuery: () => undefined },
    undefined,
    NO_NATIVE,
    false
  ).run(query);
  assert.deepEqual(phaseOne(single.log), ['statement'], single.log.join(', '));

  // Too few rows to split (ten rules over an hour), or no split point: one statement, although a slot is free.
  for (const split of [{ at: 'rule-3', rules: 10 }, null]) {
    const few = fakeDatabase(5, split);
    await new QueryExecutor(few.pool, few.state, () => SMALL_CATALOG, two, { dbQuery: () => undefined }).run(query);
    assert.deepEqual(phaseOne(few.log), ['statement'], few.log.join(', '));
  }
});
