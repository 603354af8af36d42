/**
 * The latency sketch (sql/common/001_read_model.sql): keys are ceil(log_gamma(x)) + OFFSET,
 * and a key stands for 2 * gamma^(k - OFFSET) / (gamma + 1), within ALPHA of every value
 * it holds. Sketches merge by adding counts per key; percentiles are read off the merged
 * histogram (sql.ts), never from percentiles of buckets.
 */
export const ALPHA = 0.008;
export const GAMMA = 1.016129032258064; // (1 + ALPHA) / (1 - ALPHA)
export const OFFSET = 1500;

/** SQL for the value a sketch key stands for. */
export function representativeSql(key: string): string {
  return `(CASE WHEN ${key} = 0 THEN 0::float8 ELSE 2 * power(${GAMMA}::float8, (${key} - ${OFFSET})::float8) / ${GAMMA + 1} END)`;
}
