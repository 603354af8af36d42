-- The rollup registry: one row per rollup, the single definition that both
-- flavours build from and that the query router reads to choose a rollup
-- (the "aggregate navigator": the smallest rollup holding the query's dimensions).

CREATE TABLE IF NOT EXISTS ruleperf_rollups (
  name           text PRIMARY KEY,
  source         text NOT NULL,          -- 'metrics' or the finer rollup it is built from
  bucket_width   interval NOT NULL,
  dims           text[] NOT NULL,
  refresh_every  interval NOT NULL,
  position       integer NOT NULL UNIQUE -- refresh order: sources before the rollups built on them
);

-- Full-dimension rollups answer any filter; the smaller ones answer the common dashboard
-- questions with far fewer rows to merge: unfiltered totals, per metric type and status,
-- per rule (top rules), per category (category filters and breakdowns).
INSERT INTO ruleperf_rollups (name, source, bucket_width, dims, refresh_every, position) VALUES
  ('metrics_hourly',             'metrics',                '1 hour', '{metric_type,rule_id,parser_id,rule_category,source_type,status}', '5 minutes', 1),
  ('metrics_daily',              'metrics_hourly',         '1 day',  '{metric_type,rule_id,parser_id,rule_category,source_type,status}', '1 hour',    2),
  ('metrics_hourly_by_type',     'metrics_hourly',         '1 hour', '{metric_type,status}',                                             '5 minutes', 3),
  ('metrics_daily_by_type',      'metrics_daily',          '1 day',  '{metric_type,status}',                                             '1 hour',    4),
  ('metrics_hourly_total',       'metrics_hourly_by_type', '1 hour', '{}',                                                               '5 minutes', 5),
  ('metrics_daily_total',        'metrics_daily_by_type',  '1 day',  '{}',                                                               '1 hour',    6),
  ('metrics_hourly_by_rule',     'metrics_hourly',         '1 hour', '{rule_id,rule_category,metric_type}',                              '5 minutes', 7),
  ('metrics_daily_by_rule',      'metrics_daily',          '1 day',  '{rule_id,rule_category,metric_type}',                              '1 hour',    8),
  ('metrics_hourly_by_category', 'metrics_hourly',         '1 hour', '{rule_category,metric_type,source_type,status}',                   '5 minutes', 9),
  ('metrics_daily_by_category',  'metrics_daily',          '1 day',  '{rule_category,metric_type,source_type,status}',                   '1 hour',    10)
ON CONFLICT (name) DO NOTHING;

INSERT INTO ruleperf_rollup_state (rollup) SELECT name FROM ruleperf_rollups ON CONFLICT DO NOTHING;

-- The SELECT that materializes one rollup. bucket_fn is a format() pattern taking the
-- bucket width and the source's time column (time_bucket for TimescaleDB, date_bin for
-- PostgreSQL); where_sql (optional) restricts the source rows.
CREATE OR REPLACE FUNCTION ruleperf_rollup_select(rollup text, bucket_fn text, where_sql text DEFAULT '')
RETURNS text LANGUAGE plpgsql STABLE AS $$
DECLARE
  r ruleperf_rollups;
  dim_list text;
  from_raw boolean;
  aggs text;
BEGIN
  SELECT * INTO STRICT r FROM ruleperf_rollups WHERE name = rollup;
  SELECT string_agg(format('%I', d), ', ') INTO dim_list FROM unnest(r.dims) AS d;
  dim_list := coalesce(', ' || dim_list, '');  -- a totals rollup has no dimensions
  from_raw := r.source = 'metrics';
  IF from_raw THEN
    aggs := $a$
      count(*)::bigint AS execution_count,
      sum(execution_time_ms) AS exec_time_sum,
      min(execution_time_ms) AS exec_time_min,
      max(execution_time_ms) AS exec_time_max,
      ruleperf_sketch(ruleperf_sketch_key(execution_time_ms)) AS latency_sketch,
      ruleperf_sketch_coarsen(ruleperf_sketch(ruleperf_sketch_key(execution_time_ms))) AS latency_coarse,
      sum(records_processed)::bigint AS records_processed,
      sum(records_matched)::bigint AS records_matched,
      sum(records_failed)::bigint AS records_failed,
      sum(memory_usage_mb) AS memory_sum,
      max(memory_usage_mb) AS memory_max,
      sum(cpu_usage_percent) AS cpu_sum,
      max(cpu_usage_percent) AS cpu_max,
      count(*) FILTER (WHERE status = 'ERROR')::bigint AS error_count,
      count(*) FILTER (WHERE status = 'SUCCESS')::bigint AS success_count,
      count(*) FILTER (WHERE status = 'TIMEOUT')::bigint AS timeout_count$a$;
  ELSE
    aggs := $a$
      sum(execution_count)::bigint AS execution_count,
      sum(exec_time_sum) AS exec_time_sum,
      min(exec_time_min) AS exec_time_min,
      max(exec_time_max) AS exec_time_max,
      ruleperf_sketch_merge(latency_sketch) AS latency_sketch,
      ruleperf_sketch_merge(latency_coarse) AS latency_coarse,
      sum(records_processed)::bigint AS records_processed,
      sum(records_matched)::bigint AS records_matched,
      sum(records_failed)::bigint AS records_failed,
      sum(memory_sum) AS memory_sum,
      max(memory_max) AS memory_max,
      sum(cpu_sum) AS cpu_sum,
      max(cpu_max) AS cpu_max,
      sum(error_count)::bigint AS error_count,
      sum(success_count)::bigint AS success_count,
      sum(timeout_count)::bigint AS timeout_count$a$;
  END IF;
  RETURN format('SELECT %s AS bucket%s, %s FROM %I %s GROUP BY 1%s',
    format(bucket_fn, r.bucket_width::text, CASE WHEN from_raw THEN 'time' ELSE 'bucket' END),
    dim_list, aggs, r.source, where_sql, dim_list);
END $$;
