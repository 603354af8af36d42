/**
 * How result values become JavaScript values, for every pool of the process (pg's parsers are
 * global). Counts and sums of int8 fit a double for any realistic volume: numbers, not
 * strings. float8[] (every answer row's percentiles, `pct`) is split on commas where its text
 * is a flat array of numbers and NULLs, three times faster than pg's general array parser
 * (a 24-hour per-rule timeseries returns 1,440 of them); anything else (quotes, nesting,
 * bounds) goes to pg's own parser.
 */
import { types } from 'pg';

const OPEN_BRACE = 123;
/** float8[]'s type oid (pg's builtins name element types only). */
export const FLOAT8_ARRAY = 1022 as Parameters<typeof types.getTypeParser>[0];
const generalFloat8Array = types.getTypeParser(FLOAT8_ARRAY, 'text');

export function parseFloat8Array(text: string): Array<number | null> | unknown {
  if (text.charCodeAt(0) !== OPEN_BRACE || text.indexOf('{', 1) !== -1 || text.indexOf('"') !== -1) {
    return generalFloat8Array(text);
  }
  if (text === '{}') {
    return [];
  }
  return text
    .slice(1, -1)
    .split(',')
    .map((v) => (v === 'NULL' ? null : Number(v)));
}

export function installParsers(): void {
  types.setTypeParser(types.builtins.INT8, (v) => Number(v));
  types.setTypeParser(FLOAT8_ARRAY, parseFloat8Array);
}
