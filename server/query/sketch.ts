/**
 * The latency sketch (sql/common/001_read_model.sql): keys are ceil(log_gamma(x)) + OFFSET,
 * and a key stands for 2 * gamma^(k - OFFSET) / (gamma + 1), within ALPHA of every value
 * it holds. Sketches merge by adding counts per key; percentiles are read here, in the
 * service, from the merged histogram the SQL returns (keys and counts in key order).
 */
export const ALPHA = 0.008;
export const GAMMA = 1.016129032258064; // (1 + ALPHA) / (1 - ALPHA)
export const OFFSET = 1500;

/** SQL for the value a sketch key stands for (top-rules bounds are computed in SQL). */
export function representativeSql(key: string): string {
  return `(CASE WHEN ${key} = 0 THEN 0::float8 ELSE 2 * power(${GAMMA}::float8, (${key} - ${OFFSET})::float8) / ${GAMMA + 1} END)`;
}

/** The value a sketch key stands for. */
export function representative(key: number): number {
  return key === 0 ? 0 : (2 * Math.pow(GAMMA, key - OFFSET)) / (GAMMA + 1);
}

/**
 * Percentiles of a merged histogram, interpolated as percentile_cont interpolates between
 * the values at the ranks around q·(n − 1), and clamped to the exact [min, max].
 * `keys` ascending, `counts` aligned with them. Returns null for an empty histogram.
 */
export function quantiles(keys: ArrayLike<number>, counts: ArrayLike<number>, levels: readonly number[], min: number, max: number): Array<number | null> {
  let n = 0;
  for (let i = 0; i < counts.length; i++) n += Number(counts[i]);
  if (n === 0) return levels.map(() => null);
  /** The key holding the value at 0-based rank r. */
  const keyAt = (r: number): number => {
    let before = 0;
    for (let i = 0; i < keys.length; i++) {
      const c = Number(counts[i]);
      if (r < before + c) return Number(keys[i]);
      before += c;
    }
    return Number(keys[keys.length - 1]);
  };
  return levels.map((q) => {
    const h = q * (n - 1);
    const lo = representative(keyAt(Math.floor(h)));
    const hi = representative(keyAt(Math.ceil(h)));
    const value = lo + (h - Math.floor(h)) * (hi - lo);
    return Math.max(min, Math.min(max, value));
  });
}
