/** Which changes an answer depends on. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Pool } from 'pg';
import type { Logger } from 'pino';
import { affects, ChangeFeed, type Change } from './change-feed';

const change = (over: Partial<Change>): Change => ({
  id: 1,
  from: null,
  to: null,
  ruleId: null,
  parserId: null,
  at: 0,
  ...over,
});
const scope = (over = {}) => ({
  range: { from: 1000, to: 2000 },
  names: { rules: false, parsers: false },
  filters: {},
  ...over,
});

test('rewritten rows: only answers whose range overlaps them', () => {
  assert.equal(affects(change({ from: 1500, to: 1600 }), scope()), true);
  assert.equal(affects(change({ from: 500, to: 1000 }), scope()), true, 'the first instant is in the range');
  assert.equal(affects(change({ from: 2000, to: 2500 }), scope()), false, 'the end is exclusive');
  assert.equal(affects(change({ from: 0, to: 999 }), scope()), false);
});

test('renamed rules and parsers: only answers that show names, and only for the rules they show', () => {
  assert.equal(affects(change({ ruleId: 'r1' }), scope()), false, 'a stats answer shows no names');
  assert.equal(
    affects(change({ ruleId: 'r1' }), scope({ names: { rules: true, parsers: false } })),
    true,
    'top rules over every rule'
  );
  assert.equal(
    affects(change({ ruleId: 'r1' }), scope({ names: { rules: true, parsers: false }, filters: { ruleId: ['r2'] } })),
    false
  );
  assert.equal(affects(change({ parserId: 'p1' }), scope({ names: { rules: true, parsers: false } })), false);
  assert.equal(affects(change({ parserId: 'p1' }), scope({ names: { rules: false, parsers: true } })), true);
});

/** A change log held in memory, read as the feed's query reads ruleperf_changes (ids after the last seen). */
function fakeLog() {
  const rows: Array<{ id: number; lo: number | null; hi: number | null; rule_id: null; parser_id: null; at: number }> =
    [];
  const db = {
    query: async (sql: string, params?: unknown[]) => {
      if (sql.includes('to_regclass')) {
        return { rows: [{ present: true }] };
      }
      const after = Number(params![0]);
      const skipped = Array.isArray(params![1]) ? (params![1] as number[]) : [];
      return { rows: rows.filter((r) => r.id > after || skipped.includes(r.id)) };
    },
  };
  return { rows, db: db as unknown as Pool };
}

/** A feed on a log held in memory, with the SQL of every query it sends. */
function recordedFeed(log: ReturnType<typeof fakeLog>) {
  const asked: string[] = [];
  const recording = {
    query: async (sql: string, params?: unknown[]) => {
      asked.push(sql);
      return log.db.query(sql, params as unknown[]);
    },
  };
  const logger = { warn: () => undefined, debug: () => undefined } as unknown as Logger;
  const feed = new ChangeFeed(recording as unknown as Pool, {
    pollMs: 60_000,
    keepMs: 60_000,
    listenUrl: null,
    logger,
  });
  return { feed, asked };
}

test('versionOf: remembered per frozen query, and worked out again once a change arrives or is forgotten', async () => {
  const log = fakeLog();
  const logger = { warn: () => undefined, debug: () => undefined } as unknown as Logger;
  const feed = new ChangeFeed(log.db, { pollMs: 60_000, keepMs: 300, listenUrl: null, logger });
  log.rows.push({ id: 1, lo: 1500, hi: 1600, rule_id: null, parser_id: null, at: Date.now() });
  await feed.start();
  const q = Object.freeze({ from: 1000, to: 2000 });
  let scopes = 0;
  const scopeOf = (o: { from: number; to: number }) => {
    scopes++;
    return scope({ range: o });
  };
  assert.equal(feed.versionOf(q, scopeOf), '1');
  assert.equal(feed.versionOf(q, scopeOf), '1');
  assert.equal(scopes, 1, 'the second ask is remembered');

  log.rows.push({ id: 2, lo: 0, hi: 100, rule_id: null, parser_id: null, at: Date.now() });
  await feed.poll();
  assert.equal(feed.versionOf(q, scopeOf), '1', 'a change outside the range leaves the version');
  log.rows.push({ id: 3, lo: 1900, hi: 2500, rule_id: null, parser_id: null, at: Date.now() });
  await feed.poll();
  assert.equal(feed.versionOf(q, scopeOf), '3', 'a change in the range is seen at once');

  // Kept 300 ms here: once they are forgotten they no longer count, remembered or not.
  await new Promise((r) => setTimeout(r, 350));
  await feed.poll();
  assert.equal(feed.versionOf(q, scopeOf), '0', 'forgotten changes no longer count');

  log.rows.push({ id: 4, lo: 1900, hi: 2500, rule_id: null, parser_id: null, at: Date.now() });
  await feed.poll();
  const open = { from: 1000, to: 2000 };
  assert.equal(feed.versionOf(open, scopeOf), '4');
  open.to = 1800;
  assert.equal(feed.versionOf(open, scopeOf), '0', 'an owner that can change is never remembered');
  await feed.stop();
});

test('pending changes: an overlapping answer gets a version of its own at once, another one for each further entry, and never an earlier one back', async () => {
  const changes: Array<{ id: number; lo: number; hi: number; rule_id: null; parser_id: null; at: number }> = [];
  const pending: Array<{ lo: number; hi: number; n: number }> = [];
  const reads: string[] = [];
  const db = {
    query: async (sql: string, params?: unknown[]) => {
      if (sql.includes('to_regclass')) {
        return { rows: [{ present: true, log: true, view: true }] };
      }
      reads.push(['ruleperf_changes', 'ruleperf_invalidations'].filter((t) => sql.includes(t)).join(' + '));
      return {
        rows: [{ changes: changes.filter((r) => r.id > Number(params![0])), pending: pending.map((p) => ({ ...p })) }],
      };
    },
  } as unknown as Pool;
  const logger = { warn: () => undefined, debug: () => undefined } as unknown as Logger;
  const feed = new ChangeFeed(db, { pollMs: 60_000, keepMs: 300, listenUrl: null, logger });
  await feed.start();
  assert.deepEqual(reads, ['ruleperf_changes + ruleperf_invalidations'], 'both read in one statement (one snapshot)');
  const q = Object.freeze({ from: 1000, to: 2000 });
  const scopeOf = (o: { from: number; to: number }) => scope({ range: o });
  const seen = new Set<string>([feed.versionOf(q, scopeOf)]);
  const isNew = (what: string) => {
    const v = feed.versionOf(q, scopeOf);
    assert.ok(!seen.has(v), `${what}: a version not seen before (${v})`);
    seen.add(v);
  };
  assert.equal(feed.versionOf(q, scopeOf), '0');

  pending.push({ lo: 2500, hi: 2600, n: 1 });
  await feed.poll();
  assert.equal(feed.versionOf(q, scopeOf), '0', 'a pending change outside the range leaves the version');

  pending.unshift({ lo: 1500, hi: 1500, n: 1 });
  await feed.poll();
  isNew('a late row in the range');
  pending[0].n = 2; // a second statement with rows at the same instant
  await feed.poll();
  isNew('a second change inside the pending range');

  // Consumed by a refresh that writes no change row (TimescaleDB's own job): not the version from before.
  pending.shift();
  await feed.poll();
  isNew('the entries gone without a change row');
  // The same bounds pending again (a batch sent twice): not a version seen while the first was pending.
  pending.unshift({ lo: 1500, hi: 1500, n: 2 });
  await feed.poll();
  isNew('the same entries pending again');
  pending.shift();
  // (logged "later", so that it outlives the gone entries below)
  changes.push({ id: 7, lo: 1500, hi: 1500, rule_id: null, parser_id: null, at: Date.now() + 60_000 });
  await feed.poll();
  isNew('the refresh logs the change');
  // Gone entries count for keepMs (300 ms here), as long as entries stored under them can live.
  await new Promise((r) => setTimeout(r, 350));
  await feed.poll();
  assert.equal(feed.versionOf(q, scopeOf), '7');
  await feed.stop();
});

test('a failed read of pending changes still reads the change log (renames and refreshes keep reaching the cache), and is retried less and less often', async () => {
  let pendingReads = 0;
  const db = {
    query: async (sql: string) => {
      if (sql.includes('to_regclass')) {
        return { rows: [{ present: true, log: true, view: true }] };
      }
      if (sql.includes('ruleperf_invalidations')) {
        pendingReads++;
        throw new Error('permission denied');
      }
      return { rows: [{ id: 3, lo: 1500, hi: 1600, rule_id: null, parser_id: null, at: Date.now() }] };
    },
  } as unknown as Pool;
  const logger = { warn: () => undefined, debug: () => undefined } as unknown as Logger;
  const feed = new ChangeFeed(db, { pollMs: 20, keepMs: 60_000, listenUrl: null, logger });
  await feed.start();
  assert.equal(feed.version(scope()), '3');
  assert.equal(pendingReads, 1);
  // 30 polls of 20 ms: retried after 20, 40, 80, 160 ms... not at every poll.
  await new Promise((r) => setTimeout(r, 600));
  assert.ok(pendingReads >= 2 && pendingReads <= 6, `${pendingReads} pending reads in 600 ms`);
  await feed.stop();
});

test('the database down fails both reads: the pending read is not put off for it', async () => {
  let down = true;
  let pendingReads = 0;
  const db = {
    query: async (sql: string) => {
      if (sql.includes('to_regclass')) {
        return { rows: [{ present: true, log: true, view: true }] };
      }
      if (down) {
        throw new Error('connect ECONNREFUSED');
      }
      if (!sql.includes('ruleperf_invalidations')) {
        return { rows: [] }; // the change log alone
      }
      pendingReads++;
      return { rows: [{ changes: [], pending: [] }] };
    },
  } as unknown as Pool;
  const logger = { warn: () => undefined, debug: () => undefined } as unknown as Logger;
  const feed = new ChangeFeed(db, { pollMs: 20, keepMs: 60_000, listenUrl: null, logger });
  await feed.start();
  await new Promise((r) => setTimeout(r, 300)); // 15 polls, all failing
  down = false;
  await feed.poll();
  assert.equal(pendingReads, 1, 'the first poll with the database back reads the pending changes');
  await feed.stop();
});

test('a poll asked during a read gets a read of its own after it: a change committed meanwhile is not left to the next timer', async () => {
  const log = fakeLog();
  const logger = { warn: () => undefined, debug: () => undefined } as unknown as Logger;
  let reads = 0;
  let release: () => void = () => undefined;
  let begun: () => void = () => undefined;
  const secondReadBegun = new Promise<void>((r) => (begun = r));
  const slowDb = {
    query: async (sql: string, params?: unknown[]) => {
      const snapshot = await log.db.query(sql, params as unknown[]);
      if (!sql.includes('to_regclass') && ++reads === 2) {
        begun();
        await new Promise<void>((r) => (release = r)); // the read a notification finds under way
      }
      return snapshot;
    },
  };
  const feed = new ChangeFeed(slowDb as unknown as Pool, { pollMs: 60_000, keepMs: 60_000, listenUrl: null, logger });
  await feed.start();
  const q = Object.freeze({ from: 1000, to: 2000 });
  const scopeOf = (o: { from: number; to: number }) => scope({ range: o });
  const first = feed.poll(); // its snapshot is taken before the change commits
  await secondReadBegun;
  log.rows.push({ id: 7, lo: 1500, hi: 1600, rule_id: null, parser_id: null, at: Date.now() });
  const second = feed.poll(); // the NOTIFY of that change
  const third = feed.poll();
  release();
  await Promise.all([first, second, third]);
  assert.equal(reads, 3, 'one more read, shared by the calls made during the first');
  assert.equal(feed.versionOf(q, scopeOf), '7');
  await feed.stop();
});

test('a poll resolves after the read that follows it, even while notifications keep coming; after stop, polls read nothing', async () => {
  const { feed, asked } = recordedFeed(fakeLog());
  const reads = () => asked.filter((sql) => !sql.includes('to_regclass')).length;
  await feed.start();
  const before = reads();
  const stream = setInterval(() => void feed.poll(), 5); // a notification every 5 ms
  const streamEnds = Date.now() + 1500;
  try {
    await feed.poll();
    assert.ok(Date.now() < streamEnds, 'answered while the notifications still came');
    assert.ok(reads() - before <= 3, `${reads() - before} reads before it was answered`);
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(
      reads() - before <= 2 + 300 / 50 + 1,
      `${reads() - before} reads: spaced 50 ms apart, not one per notification`
    );
  } finally {
    clearInterval(stream);
  }
  await feed.stop();
  const stopped = reads();
  await feed.poll();
  assert.equal(reads(), stopped, 'no read after stop');
});

test('a change committed after one with a higher id is still read, by its id; later reads ask for what is new and skipped, not the window again', async () => {
  const log = fakeLog();
  const { feed, asked } = recordedFeed(log);
  const at = Date.now();
  log.rows.push({ id: 1, lo: 0, hi: 10, rule_id: null, parser_id: null, at });
  log.rows.push({ id: 3, lo: 0, hi: 10, rule_id: null, parser_id: null, at }); // 2 is still being written
  await feed.start();
  const q = Object.freeze({ from: 1000, to: 2000 });
  const scopeOf = (o: { from: number; to: number }) => scope({ range: o });
  assert.equal(feed.versionOf(q, scopeOf), '0');
  log.rows.push({ id: 2, lo: 1500, hi: 1600, rule_id: null, parser_id: null, at }); // commits now
  await feed.poll();
  assert.equal(feed.versionOf(q, scopeOf), '2', 'the late-committed change counts');
  const later = asked.filter((sql) => sql.includes('ruleperf_changes') && !sql.includes('to_regclass')).slice(1);
  assert.ok(later.length > 0 && later.every((sql) => !sql.includes('now() -')), 'no window read after the first');
  await feed.stop();
});
