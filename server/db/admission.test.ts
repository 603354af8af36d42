/** Admission control: bounded concurrency and queue, user work first, busy when it cannot start in time. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Abandoned, Admission, Busy } from './admission';

const gate = () => {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  return { open, opened };
};

test('at most `concurrency` run; the rest wait their turn, user work before background work', async () => {
  const a = new Admission({ concurrency: 1, maxQueue: 10, maxWaitMs: 5000 });
  const order: string[] = [];
  const first = gate();
  const running = a.run(async () => {
    order.push('first');
    await first.opened;
  });
  const background = a.run(async () => void order.push('background'), 'background');
  const user = a.run(async () => void order.push('user'));
  assert.equal(a.active, 1);
  assert.equal(a.waiting, 2);
  first.open();
  await Promise.all([running, background, user]);
  assert.deepEqual(order, ['first', 'user', 'background']);
  assert.equal(a.active, 0);
});

test('a full queue refuses at once; a wait past the limit refuses with Busy; failures free their slot', async () => {
  const a = new Admission({ concurrency: 1, maxQueue: 1, maxWaitMs: 50 });
  const hold = gate();
  const running = a.run(() => hold.opened);
  const waiting = a.run(async () => 'late');
  await assert.rejects(
    a.run(async () => 'x'),
    (err: unknown) => err instanceof Busy && /already waiting/.test(err.message)
  );
  await assert.rejects(waiting, (err: unknown) => err instanceof Busy && err.retryAfterSeconds >= 1);
  hold.open();
  await running;
  await assert.rejects(
    a.run(async () => Promise.reject(new Error('boom'))),
    /boom/
  );
  assert.equal(await a.run(async () => 'free again'), 'free again');
  assert.equal(a.active, 0);
});

test('a statement whose expected wait is past the limit is refused on arrival, not after waiting it out', async () => {
  let clock = 0;
  const a = new Admission({ concurrency: 2, maxQueue: 100, maxWaitMs: 125, now: () => clock });
  assert.equal(a.expectedWaitMs(), null, 'nothing is known before statements have run');
  // Eight statements of 100 ms each teach it the typical statement time.
  for (let i = 0; i < 8; i++) {
    await a.run(async () => void (clock += 100));
  }
  const hold = gate();
  const running = [a.run(() => hold.opened), a.run(() => hold.opened)];
  // Two slots busy: the 1st to 5th in the queue expect 50–250 ms (at most twice the 125 ms limit) and wait…
  const queued = Array.from({ length: 5 }, () => a.run(async () => 'ran'));
  assert.equal(a.waiting, 5);
  assert.equal(a.expectedWaitMs(), 300);
  // …the 6th would wait about 300 ms, hopeless: refused at once, with the expected wait in its message.
  const refused = performance.now();
  await assert.rejects(
    a.run(async () => 'x'),
    (err: unknown) => err instanceof Busy && /about 300 ms ahead/.test(err.message) && err.retryAfterSeconds === 1
  );
  assert.ok(performance.now() - refused < 50, 'refused without waiting');
  hold.open();
  await Promise.all(running);
  assert.deepEqual(await Promise.all(queued), ['ran', 'ran', 'ran', 'ran', 'ran']);
});

test('the estimate is the mean slot time without the slowest tenth: one runaway statement does not refuse a queue', async () => {
  let clock = 0;
  const a = new Admission({ concurrency: 1, maxQueue: 100, maxWaitMs: 1000, now: () => clock });
  for (let i = 0; i < 9; i++) {
    await a.run(async () => void (clock += i === 4 ? 60_000 : 100));
  }
  assert.equal(a.expectedWaitMs(), 100);
  // A mix (a quick and a slow answer in turn) is estimated by its mean: what the queue drains at.
  for (let i = 0; i < 32; i++) {
    await a.run(async () => void (clock += i % 2 ? 10 : 190));
  }
  assert.equal(a.expectedWaitMs(), (16 * 10 + 12 * 190) / 28, 'the last 32, the 4 slowest left out');
});

test('tryRun takes a slot only if one is free at that moment, and never queues', async () => {
  const a = new Admission({ concurrency: 2, maxQueue: 10, maxWaitMs: 5000 });
  const hold = gate();
  const first = a.run(() => hold.opened);
  const beside = a.tryRun(async () => 'beside');
  assert.ok(beside, 'one slot was free');
  assert.equal(await beside, 'beside');
  const second = a.run(() => hold.opened);
  assert.equal(
    a.tryRun(async () => 'none'),
    null,
    'both slots held'
  );
  assert.equal(a.waiting, 0);
  hold.open();
  await Promise.all([first, second]);
  assert.equal(a.active, 0);
});

test('a busy answer says what the database is when told (the embedded one serves one statement at a time)', async () => {
  const a = new Admission({
    concurrency: 1,
    maxQueue: 1,
    maxWaitMs: 30,
    busyHint: 'the embedded database is one session',
  });
  const hold = gate();
  const running = a.run(() => hold.opened);
  const waiting = a.run(async () => 'late');
  await assert.rejects(
    a.run(async () => 'x'),
    (err: unknown) => err instanceof Busy && /already waiting: the embedded database is one session/.test(err.message)
  );
  await assert.rejects(
    waiting,
    (err: unknown) => err instanceof Busy && /within 30 ms: the embedded database is one session/.test(err.message)
  );
  hold.open();
  await running;
});

test('work whose asker has gone leaves the queue at once and never runs; work already running runs on', async () => {
  const a = new Admission({ concurrency: 1, maxQueue: 10, maxWaitMs: 5000 });
  const ran: string[] = [];
  const first = gate();
  const firstAsker = new AbortController();
  const running = a.run(
    async () => {
      ran.push('first');
      await first.opened;
    },
    'user',
    firstAsker.signal
  );
  const gone = new AbortController();
  const queued = a.run(async () => void ran.push('gone'), 'user', gone.signal);
  const next = a.run(async () => void ran.push('next'));
  assert.equal(a.waiting, 2);
  gone.abort();
  await assert.rejects(queued, Abandoned);
  assert.equal(a.waiting, 1, 'left the queue while the slot is held');
  firstAsker.abort(); // too late to matter: it started
  first.open();
  await Promise.all([running, next]);
  assert.deepEqual(ran, ['first', 'next']);
  assert.equal(a.active, 0);
  const already = new AbortController();
  already.abort();
  await assert.rejects(
    a.run(async () => void ran.push('never'), 'user', already.signal),
    Abandoned
  );
  assert.deepEqual(ran, ['first', 'next']);
  assert.equal(a.active, 0);
});
