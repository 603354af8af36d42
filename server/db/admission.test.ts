/** Admission control: bounded concurrency and queue, user work first, busy when it cannot start in time. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Admission, Busy } from './admission';

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
