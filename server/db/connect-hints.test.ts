/** What the service's start-up and the command-line tools add to a database error they cannot get past. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import net from 'node:net';
import { Client } from 'pg';
import { connectHint, withConnectHint } from './connect-hints';

const error = (code: string, message = 'x') => Object.assign(new Error(message), { code });
const URL_WITH_PASSWORD = 'postgres://ops:pw-Qx1@db.example:6543/metrics';

test('each error a first try meets gets what to do, read from the URL, never with its password', () => {
  const hints = {
    ECONNREFUSED: 'No PostgreSQL answers at db.example:6543: start it, or fix the host and port in DATABASE_URL.',
    ENOTFOUND:
      'No host named db.example is known: fix the host in DATABASE_URL (an IP address such as 127.0.0.1 needs no name lookup).',
    EAI_AGAIN:
      'The name db.example could not be looked up (the DNS did not answer): check the network, or use an IP address in DATABASE_URL.',
    '3D000': 'Create it first: createdb -h db.example -p 6543 -U ops metrics (or CREATE DATABASE "metrics" in psql).',
    '28P01': 'Check the user and password in DATABASE_URL (user ops).',
  };
  for (const [code, hint] of Object.entries(hints)) {
    assert.equal(connectHint(error(code), URL_WITH_PASSWORD), hint, code);
    assert.doesNotMatch(hint, /pw-Qx1/);
  }
  assert.equal(connectHint(error('57014'), URL_WITH_PASSWORD), '', 'other errors: the error alone');
  assert.equal(connectHint(error('ECONNREFUSED'), 'socket:/var/run/postgresql?db=x'), '', 'a socket: no host to name');
  assert.equal(connectHint(error('ECONNREFUSED'), undefined), '');
  assert.equal(
    withConnectHint(error('ECONNREFUSED', 'connect ECONNREFUSED 10.0.0.1:6543'), URL_WITH_PASSWORD),
    `connect ECONNREFUSED 10.0.0.1:6543\n${hints.ECONNREFUSED}`
  );
  assert.equal(withConnectHint(error('57014', 'canceled'), URL_WITH_PASSWORD), 'canceled');
  // localhost refused on both its addresses: an AggregateError with no message of its own.
  const both = Object.assign(
    new AggregateError([error('ECONNREFUSED', 'connect ECONNREFUSED ::1:6543'), error('ECONNREFUSED', 'b')], ''),
    { code: 'ECONNREFUSED' }
  );
  assert.equal(withConnectHint(both, URL_WITH_PASSWORD), `connect ECONNREFUSED ::1:6543\n${hints.ECONNREFUSED}`);
});

test('a server that closes the connection at once (something else listening there) gets a hint too', async () => {
  // node-pg's bare "Connection terminated unexpectedly" was the one start-up error without one.
  const closer = net.createServer((socket) => socket.destroy());
  await new Promise<void>((resolve) => closer.listen(0, '127.0.0.1', resolve));
  const port = (closer.address() as net.AddressInfo).port;
  const url = `postgres://ops:pw-Qx1@127.0.0.1:${port}/metrics`;
  try {
    const client = new Client({ connectionString: url });
    const err = await client.connect().then(
      () => null,
      (e: unknown) => e
    );
    assert.match(
      withConnectHint(err, url),
      new RegExp(
        `^Connection terminated unexpectedly\\n127\\.0\\.0\\.1:${port} closed the connection without a word: check that PostgreSQL listens there`
      )
    );
  } finally {
    closer.close();
  }
});
