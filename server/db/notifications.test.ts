/** Taking the embedded worker's own notifications out of a statement's reply. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { takeNotifications } from './notifications';

const message = (type: string, body: Buffer) => {
  const m = Buffer.alloc(5 + body.length);
  m.write(type, 0, 'latin1');
  m.writeInt32BE(4 + body.length, 1);
  body.copy(m, 5);
  return m;
};
const notification = (channel: string, payload: string) => {
  const pid = Buffer.alloc(4);
  pid.writeInt32BE(42);
  return message('A', Buffer.concat([pid, Buffer.from(`${channel}\0${payload}\0`)]));
};
const commandComplete = message('C', Buffer.from('INSERT 0 1\0'));
const ready = message('Z', Buffer.from('I'));

test('the channel’s notifications are taken out, the rest kept in order', () => {
  const reply = Buffer.concat([
    commandComplete,
    notification('ruleperf_changes', 'raw'),
    notification('other', 'x'),
    notification('ruleperf_changes', '12'),
    ready,
  ]);
  const { reply: out, taken } = takeNotifications(reply, 'ruleperf_changes');
  assert.equal(taken, 2);
  assert.deepEqual(Buffer.from(out), Buffer.concat([commandComplete, notification('other', 'x'), ready]));
});

test('a reply without them is returned as it is; a channel that only begins the same is not taken', () => {
  const reply = Buffer.concat([commandComplete, notification('ruleperf_changes_old', 'x'), ready]);
  const result = takeNotifications(reply, 'ruleperf_changes');
  assert.equal(result.taken, 0);
  assert.equal(result.reply, reply);
});

test('a reply ending in a partial message is left whole past it', () => {
  const partial = Buffer.concat([notification('ruleperf_changes', 'raw'), ready.subarray(0, 3)]);
  const { reply: out, taken } = takeNotifications(partial, 'ruleperf_changes');
  assert.equal(taken, 1);
  assert.deepEqual(Buffer.from(out), ready.subarray(0, 3));
});

test('a statement that changes the shared session is seen (SET, RESET, DISCARD, UNLISTEN), others not', () => {
  for (const tag of ['UNLISTEN', 'DISCARD ALL', 'RESET', 'SET']) {
    const reply = Buffer.concat([message('C', Buffer.from(`${tag}\0`)), ready]);
    assert.equal(takeNotifications(reply, 'ruleperf_changes').changesSession, true, tag);
  }
  assert.equal(takeNotifications(Buffer.concat([commandComplete, ready]), 'ruleperf_changes').changesSession, false);
});
