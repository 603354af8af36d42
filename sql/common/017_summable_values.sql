-- A raw value so large that two of them overflow a sum (execution_time_ms = 1e308, or a
-- memory or CPU figure of ±1e308) made PostgreSQL raise "value out of range: overflow" in
-- every sum over it: the refresh of each rollup covering its bucket failed, again at every
-- attempt, and so did every answer read from raw rows there. Such a value is stored as
-- ±Infinity instead, as a row that already says Infinity is (common/016): counts stay exact,
-- percentiles read it as the slowest bucket, and averages and maxima over it are not numbers
-- (panels show them empty).
--
-- Why 1e288: every other value is below it in size, so a sum of even 2^63 of them (more rows
-- than a count can hold) stays under float8's largest value, 1.8e308: no sum over the raw
-- rows, a rollup's rows or an answer's buckets can overflow. The sums are left as they are
-- (a continuous aggregate's definition cannot change in place); the rows are kept summable.
--
-- A trigger, not a CHECK: a row is kept, not refused (a producer's whole batch would be lost),
-- and TimescaleDB before 2.20 refuses to add a constraint to a compressed hypertable. Its WHEN
-- condition is evaluated without calling the function, so ordinary rows pay next to nothing.
-- Rows stored before this schema are not rewritten (that would read the whole raw table, and
-- decompress every compressed chunk); `UPDATE metrics SET execution_time_ms = execution_time_ms
-- WHERE execution_time_ms >= 1e288` passes any such row through the trigger.
CREATE OR REPLACE FUNCTION ruleperf_summable(x double precision) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN x >= 1e288::float8 AND x < 'Infinity'::float8 THEN 'Infinity'::float8
              WHEN x <= -1e288::float8 AND x > '-Infinity'::float8 THEN '-Infinity'::float8
              ELSE x END
$$;

CREATE OR REPLACE FUNCTION ruleperf_metrics_summable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.execution_time_ms := ruleperf_summable(NEW.execution_time_ms);
  NEW.memory_usage_mb := ruleperf_summable(NEW.memory_usage_mb);
  NEW.cpu_usage_percent := ruleperf_summable(NEW.cpu_usage_percent);
  RETURN NEW;
END $$;

DROP TRIGGER IF EXISTS ruleperf_metrics_summable ON metrics;
CREATE TRIGGER ruleperf_metrics_summable BEFORE INSERT OR UPDATE ON metrics FOR EACH ROW
WHEN (NEW.execution_time_ms >= 1e288::float8 AND NEW.execution_time_ms < 'Infinity'::float8
   OR abs(NEW.memory_usage_mb) >= 1e288::float8 AND abs(NEW.memory_usage_mb) < 'Infinity'::float8
   OR abs(NEW.cpu_usage_percent) >= 1e288::float8 AND abs(NEW.cpu_usage_percent) < 'Infinity'::float8)
EXECUTE FUNCTION ruleperf_metrics_summable();
