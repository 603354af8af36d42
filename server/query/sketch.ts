/**
 * The latency sketch (sql/common/001_read_model.sql): keys are ceil(log_gamma(x)) + OFFSET,
 * and a key stands for 2 * gamma^(k - OFFSET) / (gamma + 1), within ALPHA of every value
 * it holds. Sketches merge by adding counts per key; percentiles are read off the merged
 * histogram (sql.ts), never from percentiles of buckets.
 */
export const ALPHA = 0.008;
export const GAMMA = 1.016129032258064; // (1 + ALPHA) / (1 - ALPHA)
export const OFFSET = 1500;

/** The largest key (ruleperf_sketch_key, sql/common/016): Infinity, NaN and every latency from about 2.3e17 ms. */
export const TOP_KEY = 4000;

/**
 * SQL for the value a sketch key stands for; the top key's is Infinity: it holds values that
 * are not numbers alike, so a percentile reaching it is Infinity or NaN (answered empty),
 * as percentile_cont over the raw rows is, never a number of its own.
 */
export function representativeSql(key: string): string {
  return `(CASE WHEN ${key} = 0 THEN 0::float8 WHEN ${key} >= ${TOP_KEY} THEN 'Infinity'::float8 ELSE 2 * power(${GAMMA}::float8, (${key} - ${OFFSET})::float8) / ${GAMMA + 1} END)`;
}
