/**
 * The summary at the end of `npm test` names what failed: CI shows only the end of a long log.
 * The TAP comes from node's own test runner on a small file of passing, failing and nested tests.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { jestFailures, parseTap, summary } from './test-all';

test("the summary names each failed test with its file and its error's first line, and leaves out passed tests and parents", () => {
  const dir = mkdtempSync(join(tmpdir(), 'ruleperf-tap-'));
  try {
    const file = join(dir, 'sample.test.js');
    writeFileSync(
      file,
      `const { test, describe } = require('node:test');
const assert = require('node:assert/strict');
test('passes', () => {});
test('compares', () => assert.equal(1, 2, 'one is not two'));
describe('a group', () => {
  test('throws', () => { throw new Error('broken\\nsecond line'); });
  test('also passes', () => {});
});
test.skip('skipped', () => {});
test.todo('not yet', () => { throw new Error('todo'); });
test('quotes', () => { throw new Error("it's \\"quoted\\""); });
`
    );
    const broken = join(dir, 'broken.test.js');
    writeFileSync(broken, `throw new TypeError('cannot load');\n`);
    let tap = '';
    try {
      execFileSync(process.execPath, ['--test', '--test-reporter=tap', file, broken], {
        encoding: 'utf8',
        cwd: dir,
        env: { ...process.env, NODE_TEST_CONTEXT: undefined }, // else it reports to this runner, not as TAP
      });
    } catch (e) {
      tap = (e as { stdout: string }).stdout; // it exits 1: two tests fail
    }
    const counts = parseTap(tap);
    assert.equal(counts.failed, 4, tap);
    assert.equal(counts.passed, 2);
    assert.equal(counts.failures.length, 4, counts.failures.join('\n'));
    const [broke, ...others] = [...counts.failures].sort((a) => (a.includes('broken.test.js') ? -1 : 1));
    assert.match(broke, /broken\.test\.js: TypeError: cannot load$/);
    assert.doesNotMatch(broke, /broken\.test\.js › /, 'the path once');
    assert.match(others[0], /sample\.test\.js › compares: one is not two$/);
    assert.match(others[1], /sample\.test\.js › a group › throws: broken$/);
    assert.match(others[2], /sample\.test\.js › quotes: it's "quoted"$/);
    const text = summary([{ suite: 'server', ...counts, seconds: 1 }]);
    assert.match(text, /✖ .*sample\.test\.js › compares: one is not two/);
    assert.doesNotMatch(text, /passes/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a jest report's failed tests are named the same way, and a suite that did not run by its message", () => {
  const failures = jestFailures({
    testResults: [
      {
        name: join(process.cwd(), 'src/a.test.ts'),
        assertionResults: [
          { status: 'passed', fullName: 'fine' },
          {
            status: 'failed',
            fullName: 'Editor sends the limit',
            failureMessages: ['\nexpect(received).toBe(expected)\n…'],
          },
        ],
      },
      { name: join(process.cwd(), 'src/b.test.ts'), message: 'Cannot find module x', assertionResults: [] },
      {
        name: join(process.cwd(), 'src/c.test.ts'),
        message: '',
        assertionResults: [{ status: 'passed', fullName: 'ok' }],
      },
    ],
  });
  assert.deepEqual(failures, [
    'src/a.test.ts › Editor sends the limit: expect(received).toBe(expected)',
    'src/b.test.ts: Cannot find module x',
  ]);
});
