/** The README's table of query fields lists what the service accepts (server/contract.ts), no more, no less. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { GROUP_BY_FIELDS, SERIES_METRICS, TOP_RULES_SORT } from './contract';

const readme = readFileSync(join(__dirname, '..', 'README.md'), 'utf8');

/** The backquoted names in the table row whose first cell is `field`. */
function row(field: string): string[] {
  const line = readme.split('\n').find((l) => l.startsWith(`| \`${field}\` |`));
  assert.ok(line, `the README's query-field table has a row for ${field}`);
  const values = line.split('|')[3];
  return [...values.matchAll(/`(\w+)`/g)].map((m) => m[1]);
}

test("the README's query-field table names every metric, grouping and sort the service accepts", () => {
  assert.deepEqual(row('metrics'), [...SERIES_METRICS]);
  assert.deepEqual(row('groupBy'), [...GROUP_BY_FIELDS]);
  assert.deepEqual(row('sortBy'), [...TOP_RULES_SORT]);
});
