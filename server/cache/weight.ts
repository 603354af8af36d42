/**
 * About the memory an answer holds in this process, for the caches that keep answers here (the
 * near cache, the recently decoded Redis values) to keep within a number of bytes: counted in
 * entries alone, 500 answers of a few MB each (a grouped 90-day series) would hold gigabytes.
 */
import { valueCount, type Answer } from '../query/executor';
import { renderedBytes } from '../query/render';

/** A number in a frame's column: 8 bytes in a JS array of doubles, 16 where nulls box it. */
const BYTES_PER_VALUE = 16;

/** Its values, its SQL text and the response bodies rendered from it so far. */
export function answerBytes(answer: Answer): number {
  return valueCount(answer) * BYTES_PER_VALUE + answer.sql.length + renderedBytes(answer);
}
