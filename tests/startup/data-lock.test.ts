/** The data-folder lock (server/db/data-lock.ts) on its own: who counts as a live owner. */
import assert from 'node:assert/strict';
import { test, after } from 'node:test';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataFolderLocked, lockDataFolder } from '../../server/db/data-lock';

const dir = mkdtempSync(join(tmpdir(), 'ruleperf-lock-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const folder = join(dir, 'pglite');
const lockFile = `${folder}.lock`;

test('the same folder opened twice in one process: the second refuses, naming this pid', () => {
  const lock = lockDataFolder(folder);
  try {
    assert.throws(
      () => lockDataFolder(folder),
      (err: unknown) => err instanceof DataFolderLocked && err.pid === process.pid && err.message.includes(folder)
    );
  } finally {
    lock.release();
  }
  assert.equal(existsSync(lockFile), false, 'released');
});

test("this process's pid with another start time (a pid reused after a crash, as pid 1 in a container) is stale", () => {
  writeFileSync(lockFile, JSON.stringify({ pid: process.pid, host: hostname(), started: '1' }));
  const lock = lockDataFolder(folder);
  assert.equal(lock.takenOverFrom, process.pid, 'it says whose lock it took over');
  lock.release();
  assert.equal(lockDataFolder(folder).takenOverFrom, null, 'a free folder: nobody');
  rmSync(lockFile);
});

test("another machine's lock is respected (its process cannot be checked from here)", () => {
  writeFileSync(lockFile, JSON.stringify({ pid: 12345, host: `not-${hostname()}`, started: null }));
  assert.throws(() => lockDataFolder(folder), DataFolderLocked);
  rmSync(lockFile);
});

test('release leaves alone a lock that another process has taken over since', () => {
  const lock = lockDataFolder(folder);
  writeFileSync(lockFile, JSON.stringify({ pid: 1, host: hostname(), started: null }));
  lock.release();
  assert.equal(JSON.parse(readFileSync(lockFile, 'utf8')).pid, 1);
  rmSync(lockFile);
});

test('an unreadable lock file is treated as stale', () => {
  writeFileSync(lockFile, '{"pid": 4');
  const lock = lockDataFolder(folder);
  assert.equal(JSON.parse(readFileSync(lockFile, 'utf8')).pid, process.pid);
  lock.release();
});
