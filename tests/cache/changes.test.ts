/**
 * Rows changed in settled buckets reach every cached answer over them, on every instance, and
 * no other (real PostgreSQL and Redis, two instances sharing one cache): late rows back-filled,
 * rows deleted and rows updated in a past hour, at once (pending, before any refresh) and
 * again once a refresh rewrote the buckets.
 */
import assert from 'node:assert/strict';
import { test, before, after } from 'node:test';
import { postJson, startTestService, uniqueName, type TestDatabase } from '../support/services';
import { historyDatabase, DAY, HOUR } from '../support/fixture';
import { rawStats } from '../../testkit/raw';
import { refreshRollups } from '../../server/db/refresh';
import type { RunningService } from '../../server/main';

let db: TestDatabase;
const services: RunningService[] = [];
const hour0 = Math.floor((Date.now() - DAY) / HOUR) * HOUR; // a settled past hour
/** Overlaps the changed hour; the other one ends before it. */
const overlapping = { from: hour0 - 2 * HOUR + 7 * 60_000, to: hour0 + 2 * HOUR + 13_000 };
const elsewhere = { from: hour0 - 6 * HOUR + 5 * 60_000, to: hour0 - 3 * HOUR - 17_000 };

before(async () => {
  db = await historyDatabase({ days: 3, rowsPerHour: 300, refreshedHoursAgo: 1 });
  const prefix = uniqueName('changes').replace(/_/g, '-');
  // Followed by NOTIFY and a poll; the near cache on, as in production.
  for (let i = 0; i < 2; i++) {
    services.push(await startTestService({ DATABASE_URL: db.url, CACHE_PREFIX: prefix, CHANGES_POLL_MS: '200' }));
  }
});
after(async () => {
  await Promise.all(services.map((s) => s.stop()));
  await db?.drop();
});

async function ask(
  svc: RunningService,
  range: { from: number; to: number },
  q: Record<string, unknown> = { kind: 'stats' }
) {
  const r = await postJson(`${svc.url}/api/v1/query`, { range, queries: [{ refId: 'A', ...q }] });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const frame = r.body.results.A.frames[0];
  return { values: frame.data.values, meta: frame.schema.meta.custom };
}

const count = async (range: { from: number; to: number }) => (await rawStats(db.pool, range.from, range.to)).get('')!.n;

/** Waits until `check` holds on every instance (the change reaches each through NOTIFY or its poll). */
async function everywhere(check: (svc: RunningService) => Promise<boolean>, what: string) {
  const deadline = Date.now() + 5000;
  for (const svc of services) {
    while (!(await check(svc))) {
      assert.ok(Date.now() < deadline, `${what} within 5 s`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

for (const [name, change] of [
  [
    'late rows back-filled',
    `INSERT INTO metrics (time, metric_type, rule_id, status, execution_time_ms) SELECT $1::timestamptz + g * interval '7 seconds', 'RULE_EXECUTION', 'rule-0001', 'SUCCESS', 3 FROM generate_series(1, 40) g`,
  ],
  [
    'rows deleted',
    `DELETE FROM metrics WHERE time >= $1::timestamptz AND time < $1::timestamptz + interval '20 minutes' AND status = 'SUCCESS'`,
  ],
  [
    'rows updated',
    `UPDATE metrics SET status = 'ERROR' WHERE time >= $1::timestamptz + interval '20 minutes' AND time < $1::timestamptz + interval '40 minutes'`,
  ],
] as const) {
  test(`${name} in a settled hour: overlapping answers change on every instance before the refresh and after it, others stay cached`, async () => {
    for (const svc of services) {
      await ask(svc, overlapping);
      await ask(svc, elsewhere);
      await ask(svc, overlapping, { kind: 'topRules', limit: 5 });
    }
    const before = (await ask(services[0], overlapping)).values;
    const untouched = await ask(services[1], elsewhere);
    assert.equal(untouched.meta.cache, 'hit');
    await db.pool.query(change, [new Date(hour0 + 5 * 60_000)]);
    const truth = await count(overlapping);
    const changed = async (svc: RunningService) => {
      const now = await ask(svc, overlapping);
      return now.values[0][0] === truth && JSON.stringify(now.values) !== JSON.stringify(before);
    };
    // No refresh yet (the scheduler may be minutes away, or off): the pending change moves the
    // answers' version, and the miss reads the changed rows raw.
    await everywhere(changed, 'the changed answer before any refresh');
    for (const svc of services) {
      const other = await ask(svc, elsewhere);
      assert.equal(other.meta.cache, 'hit', 'a pending change the answer does not overlap drops nothing');
      assert.equal(other.meta.computedAt, untouched.meta.computedAt);
    }
    await refreshRollups(db.pool, 'postgres', { until: new Date(Date.now() - HOUR) });
    await everywhere(changed, 'the changed answer after the refresh');
    for (const svc of services) {
      const top = await ask(svc, overlapping, { kind: 'topRules', limit: 5 });
      assert.notEqual(top.meta.cache, 'stale');
      const other = await ask(svc, elsewhere);
      assert.equal(other.meta.cache, 'hit', 'an answer the change does not overlap is not dropped');
      assert.equal(other.meta.computedAt, untouched.meta.computedAt, 'the same cached answer');
      assert.equal(other.values[0][0], await count(elsewhere));
    }
  });
}

test('a second late statement inside a range already pending reaches cached answers too (no refresh between)', async () => {
  const range = { from: hour0 - 20 * HOUR + 11_000, to: hour0 - 12 * HOUR - 3_000 };
  const at = new Date(hour0 - 15 * HOUR + 30_000);
  const late = `INSERT INTO metrics (time, metric_type, rule_id, status, execution_time_ms) VALUES ($1, 'RULE_EXECUTION', 'rule-0003', 'ERROR', 9)`;
  for (const step of ['first', 'second'] as const) {
    for (const svc of services) {
      await ask(svc, range);
      assert.equal((await ask(svc, range)).meta.cache, 'hit', 'cached before the late row');
    }
    // The same instant both times: the pending range's bounds do not move, its entries do.
    await db.pool.query(late, [at]);
    const truth = await count(range);
    await everywhere(async (svc) => (await ask(svc, range)).values[0][0] === truth, `the ${step} late row`);
  }
});

test('a renamed rule reaches cached top-rules answers on every instance; stats answers stay cached', async () => {
  const range = { from: hour0 - 8 * HOUR, to: hour0 - 5 * HOUR };
  const names = async (svc: RunningService) => {
    const r = await ask(svc, range, { kind: 'topRules', limit: 40 });
    return r.values[1] as string[];
  };
  for (const svc of services) {
    await names(svc);
    await ask(svc, range);
  }
  const statsBefore = await ask(services[0], range);
  const { rows } = await db.pool.query(
    "UPDATE rules SET rule_name = rule_name || ' (renamed)' WHERE rule_id = 'rule-0002' RETURNING rule_name"
  );
  await everywhere(async (svc) => (await names(svc)).includes(rows[0].rule_name), 'the new name');
  const statsAfter = await ask(services[0], range);
  assert.equal(statsAfter.meta.cache, 'hit');
  assert.equal(statsAfter.meta.computedAt, statsBefore.meta.computedAt, 'a stats answer shows no names: kept');
});

test('a rule moved to another category: top rules filtered by the category its executions recorded still list it, shown as it is now, with a notice saying why', async () => {
  const range = { from: hour0 - 8 * HOUR, to: hour0 - 5 * HOUR };
  const { rows } = await db.pool.query(
    `SELECT rule_id, rule_category FROM metrics WHERE rule_category IS NOT NULL AND time >= $1 AND time < $2 LIMIT 1`,
    [new Date(range.from), new Date(range.to)]
  );
  const [{ rule_id: ruleId, rule_category: recorded }] = rows;
  const svc = services[0];
  const top = async () => {
    const r = await postJson(`${svc.url}/api/v1/query`, {
      range,
      queries: [{ refId: 'A', kind: 'topRules', limit: 1000, ruleCategory: recorded }],
    });
    const frame = r.body.results.A.frames[0];
    const at = (frame.data.values[0] as string[]).indexOf(ruleId);
    return {
      category: at < 0 ? undefined : frame.data.values[2][at],
      notices: ((frame.schema.meta.notices ?? []) as Array<{ text: string }>).map((n) => n.text),
    };
  };
  const before = await top();
  assert.equal(before.category, recorded);
  assert.ok(!before.notices.some((t) => /filter keeps the executions recorded/.test(t)), 'no notice while they agree');
  await db.pool.query(`UPDATE rules SET rule_category = 'moved-elsewhere' WHERE rule_id = $1`, [ruleId]);
  try {
    let after = await top();
    for (let i = 0; i < 100 && after.category !== 'moved-elsewhere'; i++) {
      await new Promise((r) => setTimeout(r, 50));
      after = await top();
    }
    assert.equal(after.category, 'moved-elsewhere', 'still listed (its executions say so), under its category now');
    const notice = after.notices.find((t) => /filter keeps the executions recorded/.test(t));
    assert.ok(notice?.includes(`${ruleId} (now "moved-elsewhere")`), String(notice));
  } finally {
    await db.pool.query(`UPDATE rules SET rule_category = $2 WHERE rule_id = $1`, [ruleId, recorded]);
  }
});

test('a change below the watermark reaches a cached answer by NOTIFY, long before the next poll; live rows announce nothing', async () => {
  const listening = async () =>
    (
      await db.pool.query(
        `SELECT count(*)::int AS n FROM pg_stat_activity
         WHERE datname = current_database() AND application_name = 'ruleperf-changes' AND query = 'LISTEN ruleperf_changes'`
      )
    ).rows[0].n as number;
  const others = await listening();
  const listener = await startTestService({ DATABASE_URL: db.url, CHANGES_POLL_MS: '60000' });
  // It starts listening in the background: the change must come after.
  for (const deadline = Date.now() + 5000; (await listening()) <= others;) {
    assert.ok(Date.now() < deadline, 'the new instance listens within 5 s');
    await new Promise((r) => setTimeout(r, 20));
  }
  const announced: string[] = [];
  const client = await db.pool.connect();
  try {
    client.on('notification', (n) => announced.push(n.payload ?? ''));
    await client.query('LISTEN ruleperf_changes');
    const range = { from: hour0 - 30 * HOUR + 7_000, to: hour0 - 26 * HOUR - 5_000 };
    await ask(listener, range);
    assert.equal((await ask(listener, range)).meta.cache, 'hit', 'cached before the change');
    await db.pool.query(
      `INSERT INTO metrics (time, metric_type, rule_id, status, execution_time_ms) VALUES (now() + interval '2 seconds', 'RULE_EXECUTION', 'rule-0001', 'SUCCESS', 4)`
    );
    await db.pool.query(
      `DELETE FROM metrics WHERE time >= $1::timestamptz AND time < $1::timestamptz + interval '10 minutes'`,
      [new Date(range.from + HOUR)]
    );
    const truth = await count(range);
    const deadline = Date.now() + 2000; // the poll is a minute away
    while ((await ask(listener, range)).values[0][0] !== truth) {
      assert.ok(Date.now() < deadline, 'the changed answer within 2 s, by NOTIFY');
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.deepEqual(announced, ['pending'], 'the delete announced once; the live row not at all');
  } finally {
    client.release();
    await listener.stop();
  }
});
