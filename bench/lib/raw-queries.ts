/**
 * Alternative B of the ADR: the dashboard's questions answered from the raw `metrics`
 * table on every request (what Grafana's built-in PostgreSQL data source would run).
 */
export const RAW_SQL = {
  stats: `SELECT count(*) AS n, avg(execution_time_ms) AS avg,
            percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY execution_time_ms) AS p,
            max(execution_time_ms) AS max, sum(records_processed) AS processed, sum(records_failed) AS failed,
            count(*) FILTER (WHERE status = 'ERROR') AS errors, count(*) FILTER (WHERE status = 'TIMEOUT') AS timeouts
          FROM metrics WHERE time >= $1 AND time < $2`,
  topRules: `SELECT m.rule_id, r.rule_name, r.rule_category, count(*) AS n,
               percentile_cont(0.95) WITHIN GROUP (ORDER BY execution_time_ms) AS p95, avg(execution_time_ms) AS avg
             FROM metrics m JOIN rules r USING (rule_id) WHERE time >= $1 AND time < $2
             GROUP BY 1, 2, 3 ORDER BY p95 DESC LIMIT 10`,
  errorBreakdown: `SELECT rule_category, count(*) AS n, count(*) FILTER (WHERE status = 'ERROR') AS errors,
                     count(*) FILTER (WHERE status = 'TIMEOUT') AS timeouts
                   FROM metrics WHERE time >= $1 AND time < $2 GROUP BY 1 ORDER BY 3 DESC LIMIT 10`,
  ruleTimeseries: `SELECT date_trunc('hour', time) AS t, count(*) AS n,
                     percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY execution_time_ms) AS p
                   FROM metrics WHERE time >= $1 AND time < $2 AND rule_id = $3 GROUP BY 1 ORDER BY 1`,
};
