/**
 * A DATABASE_URL the service cannot get past at start is refused with what to do about it,
 * as the command-line tools say it (server/db/connect-hints.ts), and never with its password.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { PG_HOST, PG_PORT, startTestService } from '../support/services';
import { StartupError } from '../../server/main';

const refusal = async (url: string): Promise<string> => {
  try {
    const svc = await startTestService({ DATABASE_URL: url, CACHE_ENABLED: 'false' });
    await svc.stop();
  } catch (err) {
    assert.ok(err instanceof StartupError, String(err));
    return err.message;
  }
  assert.fail(`the service started on ${url}`);
};

test('a server that does not answer, a database not created and an unknown host are each told what to do', async () => {
  assert.equal(
    await refusal('postgres://postgres:pw-Qx1@127.0.0.1:1/x'),
    'connect ECONNREFUSED 127.0.0.1:1\nNo PostgreSQL answers at 127.0.0.1:1: start it, or fix the host and port in DATABASE_URL.'
  );
  const missing = await refusal(`postgres://postgres:pw-Qx1@${PG_HOST}:${PG_PORT}/ruleperf_no_such_database`);
  assert.equal(
    missing,
    `database "ruleperf_no_such_database" does not exist\nCreate it first: createdb -h ${PG_HOST} -p ${PG_PORT} -U postgres ruleperf_no_such_database (or CREATE DATABASE "ruleperf_no_such_database" in psql).`
  );
  const unknown = await refusal('postgres://postgres:pw-Qx1@nosuchhost.invalid/x');
  assert.match(
    unknown,
    /^getaddrinfo (ENOTFOUND|EAI_AGAIN) nosuchhost\.invalid\n(No host named nosuchhost\.invalid is known|The name nosuchhost\.invalid could not be looked up)/
  );
  assert.doesNotMatch(missing + unknown, /pw-Qx1/);
});

test('npm start prints the refusal and its hint as error: lines, without the password (exit 1)', () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'server/main.ts'], {
    cwd: join(__dirname, '..', '..'),
    env: {
      ...process.env,
      DATABASE_URL: 'postgres://postgres:pw-Qx1@127.0.0.1:1/x',
      PORT: '0',
      CACHE_ENABLED: 'false',
      LOG_LEVEL: 'silent',
    },
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.equal(r.status, 1, r.stderr);
  assert.equal(
    r.stderr,
    'error: connect ECONNREFUSED 127.0.0.1:1\nNo PostgreSQL answers at 127.0.0.1:1: start it, or fix the host and port in DATABASE_URL.\n'
  );
  assert.doesNotMatch(r.stdout, /pw-Qx1/);
});
