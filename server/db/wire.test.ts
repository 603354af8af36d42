/** Framing the PostgreSQL protocol on the embedded database's port (wire.ts MessageFramer). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BadFrame, MESSAGE_MAX_BYTES, MessageFramer } from './wire';

const startup = () => {
  const body = Buffer.from('\0\x03\0\0user\0postgres\0\0', 'latin1');
  const m = Buffer.alloc(4 + body.length);
  m.writeInt32BE(m.length);
  body.copy(m, 4);
  return m;
};
const query = (sql: string) => {
  const body = Buffer.from(`${sql}\0`);
  const m = Buffer.alloc(5 + body.length);
  m.write('Q', 0, 'latin1');
  m.writeInt32BE(4 + body.length, 1);
  body.copy(m, 5);
  return m;
};

test('messages come whole, however the stream is cut: many in one chunk, one over many chunks', () => {
  const framer = new MessageFramer();
  const stream = Buffer.concat([
    startup(),
    query('SELECT 1'),
    query('SELECT 2'),
    query(`SELECT '${'x'.repeat(5000)}'`),
  ]);
  const got: Buffer[] = [];
  for (let at = 0; at < stream.length; at += 7) {
    got.push(...framer.push(stream.subarray(at, at + 7)));
  }
  assert.deepEqual(
    got.map((m) => m.length),
    [startup().length, query('SELECT 1').length, query('SELECT 2').length, query(`SELECT '${'x'.repeat(5000)}'`).length]
  );
  assert.deepEqual(Buffer.concat(got), stream);
  const all = new MessageFramer().push(stream);
  assert.equal(all.length, 4, 'all of them from one chunk');
});

test('lengths outside the protocol are refused, not looped on or thrown out of the socket handler', () => {
  assert.throws(() => new MessageFramer().push(Buffer.alloc(8)), BadFrame, 'a startup length of 0');
  const started = () => {
    const f = new MessageFramer();
    f.push(startup());
    return f;
  };
  assert.throws(() => started().push(Buffer.from([0x51, 0xff, 0xff, 0xff, 0xff])), BadFrame, 'a length of -1');
  assert.throws(() => started().push(Buffer.from([0x51, 0, 0, 0, 2])), BadFrame, 'shorter than its own length field');
  const huge = Buffer.alloc(5);
  huge.write('Q', 0, 'latin1');
  huge.writeInt32BE(MESSAGE_MAX_BYTES + 1, 1);
  assert.throws(() => started().push(huge), BadFrame, 'over the largest message taken');
  assert.throws(
    () => started().push(Buffer.from([0, 0, 0, 0, 4])),
    BadFrame,
    'a type no client sends (0: PGlite took it for a startup)'
  );
});
