/**
 * Exactness at scale: random (range, filter) pairs answered by ruleperf (rollups +
 * live edge, the service's own code path), by the raw table exactly (percentile_cont),
 * and by the ADR's sketch (percentile of hourly percentiles, average of averages).
 */
import type { Pool } from 'pg';
import { rng } from '../../server/generator/model';
import { queryRunner, columns } from '../../testkit/runner';
import { filterSql, relErr } from '../../testkit/raw';

export interface PairErrors {
  pairs: number;
  /** Largest distance (ms) between an end of the covered range and the asked one. */
  endsOffMs: number;
  /** Pairs answered exactly as asked (ended over a minute ago), the rest moved forward (range.ts movingStep). */
  exactRanges: number;
  ruleperf: { count: number; sum: number; avg: number; p50: number; p95: number; p99: number };
  adr: { count: number; avg: number; p50: number; p95: number; p99: number };
}

const RULES = Array.from({ length: 500 }, (_, i) => `rule-${String(i + 1).padStart(4, '0')}`);
const FILTERS: Array<(r: () => number) => Record<string, string | string[]>> = [
  (r) => ({ ruleId: RULES[Math.floor(r() * 60)] }),
  (r) => ({ ruleId: [RULES[Math.floor(r() * 500)], RULES[Math.floor(r() * 500)]] }),
  (r) => ({ ruleCategory: ['authentication', 'network', 'malware', 'exfiltration', 'web'][Math.floor(r() * 5)] }),
  (r) => ({ metricType: ['RULE_EXECUTION', 'PARSER_EXECUTION', 'ENRICHMENT'][Math.floor(r() * 3)] }),
  (r) => ({ parserId: `parser-${String(1 + Math.floor(r() * 30)).padStart(3, '0')}` }),
  (r) => ({ status: r() < 0.5 ? 'ERROR' : ['SUCCESS', 'TIMEOUT'] }),
  () => ({}),
];

export async function checkExactnessPairs(
  pool: Pool,
  pairs: number,
  onPair: () => void,
  seed = 7
): Promise<PairErrors> {
  const run = await queryRunner(pool);
  const r = rng(seed);
  const worst: PairErrors = {
    pairs: 0,
    endsOffMs: 0,
    exactRanges: 0,
    ruleperf: { count: 0, sum: 0, avg: 0, p50: 0, p95: 0, p99: 0 },
    adr: { count: 0, avg: 0, p50: 0, p95: 0, p99: 0 },
  };
  const now = Date.now();
  for (let i = 0; i < pairs; i++) {
    // Log-uniform lengths from 1 hour to 30 days, anywhere in the last 30 days.
    // (Whole milliseconds, as the API takes them.)
    const length = Math.round(Math.exp(Math.log(3_600_000) + r() * Math.log(720)));
    const to = now - Math.round(r() * (30 * 86_400_000 - length));
    const filters = {
      ...FILTERS[Math.floor(r() * FILTERS.length)](r),
      ...(r() < 0.3 ? FILTERS[Math.floor(r() * 6)](r) : {}),
    };
    const { q, answer } = await run({ from: to - length, to }, { refId: 'A', kind: 'stats', ...filters });
    const got = Object.fromEntries(Object.entries(columns(answer.frames[0])).map(([k, v]) => [k, v[0]]));
    const values: unknown[] = [new Date(q.range.from), new Date(q.range.to)];
    const where = filterSql(filters, values);
    const { rows: exact } = await pool.query(
      `SELECT count(*)::float8 AS n, sum(execution_time_ms) AS s, avg(execution_time_ms) AS a,
              percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY execution_time_ms) AS p
       FROM metrics WHERE time >= $1 AND time < $2${where}`,
      values
    );
    const { rows: adr } = await pool.query(
      `WITH h AS (SELECT date_trunc('hour', time), metric_type, rule_id, parser_id, rule_category, status, count(*) AS n, avg(execution_time_ms) AS a,
                         percentile_cont(0.5) WITHIN GROUP (ORDER BY execution_time_ms) AS p50,
                         percentile_cont(0.95) WITHIN GROUP (ORDER BY execution_time_ms) AS p95,
                         percentile_cont(0.99) WITHIN GROUP (ORDER BY execution_time_ms) AS p99
                  FROM metrics WHERE time >= $1 AND time < $2${where} GROUP BY 1, 2, 3, 4, 5, 6)
       SELECT sum(n)::float8 AS n, avg(a) AS a, percentile_cont(0.5) WITHIN GROUP (ORDER BY p50) AS p50,
              percentile_cont(0.95) WITHIN GROUP (ORDER BY p95) AS p95, percentile_cont(0.99) WITHIN GROUP (ORDER BY p99) AS p99 FROM h`,
      values
    );
    const e = exact[0];
    if (Number(e.n) > 0) {
      worst.pairs++;
      const off = Math.max(Math.abs(q.range.from - (to - length)), Math.abs(q.range.to - to));
      worst.endsOffMs = Math.max(worst.endsOffMs, off);
      if (off <= 1) {
        worst.exactRanges++;
      }
      const w = worst.ruleperf;
      w.count = Math.max(w.count, relErr(got.executionCount, Number(e.n)));
      w.avg = Math.max(w.avg, relErr(got.avgExecutionTimeMs, Number(e.a)));
      w.sum = Math.max(w.sum, relErr(got.avgExecutionTimeMs * got.executionCount, Number(e.s)));
      w.p50 = Math.max(w.p50, relErr(got.p50ExecutionTimeMs, e.p[0]));
      w.p95 = Math.max(w.p95, relErr(got.p95ExecutionTimeMs, e.p[1]));
      w.p99 = Math.max(w.p99, relErr(got.p99ExecutionTimeMs, e.p[2]));
      const a = adr[0];
      const wa = worst.adr;
      wa.count = Math.max(wa.count, relErr(Number(a.n), Number(e.n)));
      wa.avg = Math.max(wa.avg, relErr(Number(a.a), Number(e.a)));
      wa.p50 = Math.max(wa.p50, relErr(Number(a.p50), e.p[0]));
      wa.p95 = Math.max(wa.p95, relErr(Number(a.p95), e.p[1]));
      wa.p99 = Math.max(wa.p99, relErr(Number(a.p99), e.p[2]));
    }
    onPair();
  }
  return worst;
}
