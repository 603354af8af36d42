-- Schema 17 kept latency, memory and CPU figures summable; the record counts were left out. Two
-- raw rows of records_processed = 5e18 in one bucket made every sum over them overflow bigint
-- ("bigint out of range"): every refresh failed (all rollups stop advancing, as the refresh runs
-- them in one pass), and every answer whose range held those rows was refused, until the rows
-- were deleted. A record count beyond 1e12 in one execution (a trillion records) is a producer's
-- error, not a measurement: it is stored as ±1e12, with a warning to the client that wrote it.
-- Below that, the sum of 9.2 million rows at the cap still fits in a bigint: no rollup bucket,
-- and no answer over fewer such rows, can overflow.
--
-- As schema 17: a trigger (the row is kept, not refused; a compressed hypertable takes no new
-- constraint before TimescaleDB 2.20) whose WHEN condition spares ordinary rows the call; rows
-- stored before are not rewritten (`UPDATE metrics SET records_processed = records_processed
-- WHERE records_processed NOT BETWEEN -1e12 AND 1e12 OR records_matched NOT BETWEEN -1e12 AND 1e12
-- OR records_failed NOT BETWEEN -1e12 AND 1e12`).
CREATE OR REPLACE FUNCTION ruleperf_capped_count(n bigint) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN n > 1000000000000 THEN 1000000000000
              WHEN n < -1000000000000 THEN -1000000000000
              ELSE n END
$$;

CREATE OR REPLACE FUNCTION ruleperf_metrics_summable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.execution_time_ms := ruleperf_summable(NEW.execution_time_ms);
  NEW.memory_usage_mb := ruleperf_summable(NEW.memory_usage_mb);
  NEW.cpu_usage_percent := ruleperf_summable(NEW.cpu_usage_percent);
  IF ruleperf_capped_count(NEW.records_processed) <> NEW.records_processed
     OR ruleperf_capped_count(NEW.records_matched) <> NEW.records_matched
     OR ruleperf_capped_count(NEW.records_failed) <> NEW.records_failed THEN
    RAISE WARNING 'ruleperf: a record count beyond 1e12 in one execution (processed %, matched %, failed %) is stored as 1e12',
      NEW.records_processed, NEW.records_matched, NEW.records_failed;
    NEW.records_processed := ruleperf_capped_count(NEW.records_processed);
    NEW.records_matched := ruleperf_capped_count(NEW.records_matched);
    NEW.records_failed := ruleperf_capped_count(NEW.records_failed);
  END IF;
  RETURN NEW;
END $$;

DROP TRIGGER IF EXISTS ruleperf_metrics_summable ON metrics;
CREATE TRIGGER ruleperf_metrics_summable BEFORE INSERT OR UPDATE ON metrics FOR EACH ROW
WHEN (NEW.execution_time_ms >= 1e288::float8 AND NEW.execution_time_ms < 'Infinity'::float8
   OR abs(NEW.memory_usage_mb) >= 1e288::float8 AND abs(NEW.memory_usage_mb) < 'Infinity'::float8
   OR abs(NEW.cpu_usage_percent) >= 1e288::float8 AND abs(NEW.cpu_usage_percent) < 'Infinity'::float8
   -- Comparisons, not abs(): abs() of the smallest bigint overflows.
   OR NEW.records_processed > 1000000000000 OR NEW.records_processed < -1000000000000
   OR NEW.records_matched > 1000000000000 OR NEW.records_matched < -1000000000000
   OR NEW.records_failed > 1000000000000 OR NEW.records_failed < -1000000000000)
EXECUTE FUNCTION ruleperf_metrics_summable();
