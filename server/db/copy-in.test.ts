import assert from 'node:assert/strict';
import { test } from 'node:test';
import { copiesFromClient, statementText, withoutQuoted } from './copy-in';

test('COPY … FROM STDIN is found in any case and spacing, among other statements', () => {
  for (const sql of [
    'COPY metrics(time, rule_id) FROM STDIN',
    'copy metrics from stdin with (format csv)',
    '  \n\tCoPy t\nFROM\n  StdIn',
    'SELECT 1; COPY t FROM STDIN;',
    '/* load */ COPY t FROM STDIN',
    '-- a comment\nCOPY t FROM STDIN',
    'COPY "Odd Table" FROM STDIN',
  ]) {
    assert.equal(copiesFromClient(sql), true, sql);
  }
});

test('other statements, and the words inside strings, comments and quoted names, are not a COPY from the client', () => {
  for (const sql of [
    'COPY t TO STDOUT',
    'COPY (SELECT 1) TO STDOUT',
    "COPY t FROM '/dev/blob'",
    "SELECT 'COPY t FROM STDIN'",
    "SELECT E'it\\'s; COPY t FROM STDIN'",
    'SELECT $$COPY t FROM STDIN$$',
    'SELECT $body$ ; COPY t FROM STDIN $body$',
    '-- COPY t FROM STDIN\nSELECT 1',
    '/* /* COPY t FROM STDIN */ still a comment */ SELECT 1',
    'SELECT "copy from stdin" FROM t',
    "INSERT INTO t VALUES ('copy', 'stdin')",
    'SELECT copy_count, stdin_rows FROM t',
  ]) {
    assert.equal(copiesFromClient(sql), false, sql);
  }
});

test('quoted text is blanked in one pass, what is outside it kept', () => {
  assert.equal(withoutQuoted('SELECT \'a\'\'b\', "c""d", $x$ e $x$ FROM t -- f'), 'SELECT  ,  ,   FROM t  ');
});

test('the SQL of a Query or Parse message', () => {
  const q = Buffer.concat([Buffer.from('Q\0\0\0\0'), Buffer.from('COPY t FROM STDIN\0')]);
  assert.equal(statementText(q), 'COPY t FROM STDIN');
  const p = Buffer.concat([Buffer.from('P\0\0\0\0'), Buffer.from('s1\0COPY t FROM STDIN\0\0\0')]);
  assert.equal(statementText(p), 'COPY t FROM STDIN');
  assert.equal(statementText(Buffer.from([0x53, 0, 0, 0, 4])), null);
});
