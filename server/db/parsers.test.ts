/** float8[] parsed by splitting gives what pg's general array parser gives, for every text PostgreSQL prints. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { types } from 'pg';
import { FLOAT8_ARRAY, parseFloat8Array } from './parsers';

const general = types.getTypeParser(FLOAT8_ARRAY, 'text');

/** A float8 as PostgreSQL prints it (shortest round-trip digits, NaN, Infinity, exponents). */
const printed = fc.oneof(
  fc
    .double()
    .map((d) => (Number.isNaN(d) ? 'NaN' : d === Infinity ? 'Infinity' : d === -Infinity ? '-Infinity' : String(d))),
  fc.constantFrom('NULL', '0', '-0', '1e+300', '1.5e-07', '123456789012345680000')
);

test('flat arrays of numbers and NULLs: the same values as the general parser', () => {
  fc.assert(
    fc.property(fc.array(printed, { maxLength: 8 }), (elements) => {
      const text = `{${elements.join(',')}}`;
      assert.deepEqual(parseFloat8Array(text), general(text), text);
    }),
    { numRuns: 2000 }
  );
});

test('nested arrays and explicit bounds go to the general parser', () => {
  for (const text of ['{{1,2},{3,4}}', '[0:1]={1.5,2}', '{}']) {
    assert.deepEqual(parseFloat8Array(text), general(text), text);
  }
});
