import assert from 'node:assert/strict';
import { test } from 'node:test';
import { copiesFromClient, statementText } from './copy-in';

test('COPY … FROM STDIN is found in any case and spacing, among other statements, and however it is hidden', () => {
  for (const sql of [
    'COPY metrics(time, rule_id) FROM STDIN',
    'copy metrics from stdin with (format csv)',
    '  \n\tCoPy t\nFROM\n  StdIn',
    'SELECT 1; COPY t FROM STDIN;',
    '/* load */ COPY t FROM /* here */ STDIN',
    'COPY "Odd Table" FROM STDIN',
    // Past a lexer of its own (review): non-ASCII and long dollar-quote tags, backslash escapes.
    "SELECT $é$ ' $é$; COPY t FROM STDIN; --'",
    `SELECT $${'t'.repeat(70)}$ ' $${'t'.repeat(70)}$; COPY t FROM STDIN; --'`,
    "SELECT 'x\\''; COPY t FROM STDIN; --'",
  ]) {
    assert.equal(copiesFromClient(sql), true, sql);
  }
});

test('statements that do not name both words go through', () => {
  for (const sql of [
    'COPY t TO STDOUT',
    'COPY (SELECT 1) TO STDOUT',
    "COPY t FROM '/dev/blob'",
    'SELECT copy_count, stdin_rows FROM t',
    'INSERT INTO t SELECT * FROM u',
  ]) {
    assert.equal(copiesFromClient(sql), false, sql);
  }
});

test('the SQL of a Query or Parse message', () => {
  const q = Buffer.concat([Buffer.from('Q\0\0\0\0'), Buffer.from('COPY t FROM STDIN\0')]);
  assert.equal(statementText(q), 'COPY t FROM STDIN');
  const p = Buffer.concat([Buffer.from('P\0\0\0\0'), Buffer.from('s1\0COPY t FROM STDIN\0\0\0')]);
  assert.equal(statementText(p), 'COPY t FROM STDIN');
  assert.equal(statementText(Buffer.from([0x53, 0, 0, 0, 4])), null);
});
