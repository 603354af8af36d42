/**
 * How result values become JavaScript values, for every pool of the process (pg's parsers are
 * global). Counts and sums of int8 fit a double for any realistic volume: numbers, not
 * strings.
 */
import { types } from 'pg';

export function installParsers(): void {
  types.setTypeParser(types.builtins.INT8, (v) => Number(v));
}
