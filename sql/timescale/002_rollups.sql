-- TimescaleDB flavour: a hypertable and continuous aggregates built from the same
-- registry (daily is hierarchical on hourly, the by-type rollups on those), with
-- refresh, compression and retention policies. Materialized-only: the service
-- answers the stretch after each watermark from the finer tier or the raw rows itself,
-- identically in both flavours. {{COMPRESS_AFTER}} and {{RAW_RETENTION}} are set by
-- `npm run migrate` (defaults 7 days and 90 days).

SELECT create_hypertable('metrics', 'time', chunk_time_interval => INTERVAL '1 day', if_not_exists => TRUE);
CREATE INDEX IF NOT EXISTS metrics_rule_time ON metrics (rule_id, time DESC);
CREATE INDEX IF NOT EXISTS metrics_parser_time ON metrics (parser_id, time DESC);

DO $$
DECLARE r record;
BEGIN
  FOR r IN SELECT name FROM ruleperf_rollups ORDER BY position LOOP
    IF NOT EXISTS (SELECT 1 FROM timescaledb_information.continuous_aggregates WHERE view_name = r.name) THEN
      EXECUTE format('CREATE MATERIALIZED VIEW %I WITH (timescaledb.continuous, timescaledb.materialized_only = true) AS %s WITH NO DATA',
                     r.name, ruleperf_rollup_select(r.name, 'time_bucket(%L::interval, %I)'));
      EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %I (bucket DESC)', r.name || '_bucket', r.name);
    END IF;
  END LOOP;
END $$;

CREATE INDEX IF NOT EXISTS metrics_hourly_rule ON metrics_hourly (rule_id, bucket DESC);
CREATE INDEX IF NOT EXISTS metrics_hourly_parser ON metrics_hourly (parser_id, bucket DESC);
CREATE INDEX IF NOT EXISTS metrics_daily_rule ON metrics_daily (rule_id, bucket DESC);
CREATE INDEX IF NOT EXISTS metrics_daily_parser ON metrics_daily (parser_id, bucket DESC);
CREATE INDEX IF NOT EXISTS metrics_hourly_by_rule_rule ON metrics_hourly_by_rule (rule_id, bucket DESC);
CREATE INDEX IF NOT EXISTS metrics_daily_by_rule_rule ON metrics_daily_by_rule (rule_id, bucket DESC);

-- Refresh policies (run by TimescaleDB's background workers where they exist; the
-- service's scheduler calls the same refresh where they don't, as in the WASM build).
DO $$
DECLARE r record;
BEGIN
  FOR r IN SELECT name, bucket_width, refresh_every FROM ruleperf_rollups ORDER BY position LOOP
    PERFORM add_continuous_aggregate_policy(r.name,
      start_offset => NULL,
      end_offset => r.bucket_width,
      schedule_interval => r.refresh_every,
      if_not_exists => TRUE);
  END LOOP;
END $$;

ALTER TABLE metrics SET (timescaledb.compress, timescaledb.compress_segmentby = 'metric_type, rule_id',
                         timescaledb.compress_orderby = 'time DESC');
SELECT add_compression_policy('metrics', INTERVAL '{{COMPRESS_AFTER}}', if_not_exists => TRUE);
SELECT add_retention_policy('metrics', INTERVAL '{{RAW_RETENTION}}', if_not_exists => TRUE);

CREATE OR REPLACE VIEW ruleperf_rollup_status AS
SELECT r.name AS rollup, r.source, r.bucket_width, r.dims, r.refresh_every, r.position,
       coalesce(nullif(_timescaledb_functions.to_timestamp(_timescaledb_functions.cagg_watermark(c.mat_hypertable_id)),
                       _timescaledb_functions.to_timestamp(-210866803200000000)), '-infinity') AS watermark,
       s.last_refresh_at, s.last_duration_ms,
       NULL::bigint AS pending_invalidations
FROM ruleperf_rollups r
JOIN _timescaledb_catalog.continuous_agg c ON c.user_view_name = r.name
JOIN ruleperf_rollup_state s ON s.rollup = r.name;
