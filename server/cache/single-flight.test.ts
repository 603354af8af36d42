/** One computation per key at a time; it is told to give up only once every caller has gone. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { getEventListeners } from 'node:events';
import { SingleFlight } from './single-flight';

/** A computation that waits until released, recording the signal it was given. */
function pending() {
  const signals: AbortSignal[] = [];
  let release!: (v: string) => void;
  const compute = (abandoned: AbortSignal) => {
    signals.push(abandoned);
    return new Promise<string>((r) => (release = r));
  };
  return { compute, signals, release: (v: string) => release(v) };
}

test('joined callers share one computation, abandoned only when every one of them has gone', async () => {
  const flights = new SingleFlight<string>();
  const p = pending();
  const a = new AbortController();
  const b = new AbortController();
  const first = flights.run('k', p.compute, a.signal);
  const second = flights.run('k', p.compute, b.signal);
  assert.equal(first.joined, false);
  assert.equal(second.joined, true);
  assert.equal(p.signals.length, 1);
  a.abort();
  assert.equal(p.signals[0].aborted, false, 'one caller still waits');
  b.abort();
  assert.equal(p.signals[0].aborted, true, 'nobody waits');
  // A caller arriving now does not join the abandoned computation: it starts its own.
  const third = flights.run('k', p.compute, new AbortController().signal);
  assert.equal(third.joined, false);
  assert.equal(p.signals.length, 2);
  assert.equal(p.signals[1].aborted, false);
  p.release('done');
  assert.equal(await third.promise, 'done');
});

test('a caller without a signal (warming, a stale refresh) keeps the computation wanted to its end', async () => {
  const flights = new SingleFlight<string>();
  const p = pending();
  const user = new AbortController();
  flights.run('k', p.compute, user.signal);
  const warming = flights.run('k', p.compute);
  user.abort();
  assert.equal(p.signals[0].aborted, false);
  p.release('kept');
  assert.equal(await warming.promise, 'kept');
  // Finished: the key is free again.
  const q = pending();
  assert.equal(flights.run('k', q.compute).joined, false);
});

test('a caller already gone when it asks starts nothing that is wanted', () => {
  const flights = new SingleFlight<string>();
  const p = pending();
  const gone = new AbortController();
  gone.abort();
  flights.run('k', p.compute, gone.signal);
  assert.equal(p.signals[0].aborted, true);
});

test('a finished computation lets go of its askers signals (one may outlive it: a connection carries many requests)', async () => {
  const flights = new SingleFlight<string>();
  const asker = new AbortController();
  for (let i = 0; i < 20; i++) {
    const p = pending();
    const { promise } = flights.run(`k${i}`, p.compute, asker.signal);
    assert.equal(getEventListeners(asker.signal, 'abort').length, 1);
    p.release('done');
    await promise;
  }
  assert.equal(getEventListeners(asker.signal, 'abort').length, 0);
});
