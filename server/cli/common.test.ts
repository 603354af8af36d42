/** The command-line tools check DATABASE_URL's form as the service does, before any connection. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';

const ROOT = join(__dirname, '..', '..');
const cli = (tool: string, url: string) =>
  spawnSync(process.execPath, ['--import', 'tsx', `server/cli/${tool}.ts`], {
    cwd: ROOT,
    env: { ...process.env, DATABASE_URL: url },
    encoding: 'utf8',
    timeout: 60_000,
  });

test("a DATABASE_URL that is not a postgres:// URL is refused with the service's message, never repeating the value (exit 2)", () => {
  // Each was read by pg as something else: "getaddrinfo ENOTFOUND base", "no PostgreSQL user name specified".
  for (const [tool, url] of [
    ['migrate', '127.0.0.1:5432/db'],
    ['generate', 'localhost:5432/db'],
    ['refresh', 'postgres:pw-Qx1@127.0.0.1:5432/db'],
  ] as const) {
    const r = cli(tool, url);
    assert.equal(r.status, 2, `${tool} ${url}: exit ${r.status}, stderr ${r.stderr}`);
    assert.equal(
      r.stderr,
      'error: DATABASE_URL: must be a URL such as postgres://user:password@host:5432/database\n',
      `${tool} ${url}`
    );
    assert.doesNotMatch(
      r.stderr + r.stdout,
      /pw-Qx1|127\.0\.0\.1|localhost/,
      'the value (it may hold a password) is not repeated'
    );
  }
});
