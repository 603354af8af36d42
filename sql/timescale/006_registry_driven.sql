-- TimescaleDB flavour, schema 6: any registry row is materialized by ruleperf_materialize
-- (called by the registry's trigger) as a continuous aggregate with indexes, a refresh
-- policy and, when the row has a retention, a retention policy; ruleperf_pending_changes
-- reads TimescaleDB's own invalidation logs.
--
-- Continuous aggregates created by schema 2 keep their definitions (recreating one would
-- lose the buckets whose raw rows retention has already dropped); they get faster through
-- the sketch functions of common/006, which they call. New ones use the faster shape of
-- ruleperf_rollup_query.

-- Ingest: the hypertable keeps TimescaleDB's time index only. The service reads raw rows by
-- time (the live edge, ranges pending a refresh) and answers rule and parser filters from the
-- rollups, so the (rule_id, time) and (parser_id, time) B-trees cost every insert (ingest at
-- about half the PostgreSQL flavour's rate) for no query. The time B-tree stays: rows arrive in
-- time order, so it grows at its right edge, and chunk-local it is small (the bench compares
-- it with a BRIN index, which loads about 10 % faster).
DROP INDEX IF EXISTS metrics_rule_time;
DROP INDEX IF EXISTS metrics_parser_time;

CREATE OR REPLACE FUNCTION ruleperf_materialize(rollup text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  r ruleperf_rollups;
  parent text;
  d text;
BEGIN
  SELECT * INTO STRICT r FROM ruleperf_rollups WHERE name = rollup;
  IF r.rank_keys THEN
    RAISE EXCEPTION 'rollup %: a continuous aggregate cannot store rank keys; rank_keys must be false in the TimescaleDB flavour', r.name;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM timescaledb_information.continuous_aggregates WHERE view_name = r.name) THEN
    EXECUTE format('CREATE MATERIALIZED VIEW %I WITH (timescaledb.continuous, timescaledb.materialized_only = true) AS %s WITH NO DATA',
                   r.name, ruleperf_rollup_query(r.name, true));
    IF r.retention IS NOT NULL THEN
      -- Retention drops whole chunks: make them a day, not ten times the raw chunk interval.
      PERFORM set_chunk_time_interval(format('%I', r.name), interval '1 day');
    END IF;
  ELSE
    SELECT coalesce(p.user_view_name, 'metrics') INTO parent
    FROM _timescaledb_catalog.continuous_agg c
    LEFT JOIN _timescaledb_catalog.continuous_agg p ON p.mat_hypertable_id = c.parent_mat_hypertable_id
    WHERE c.user_view_name = r.name;
    IF parent IS DISTINCT FROM r.source THEN
      RAISE EXCEPTION 'rollup %: the continuous aggregate is built from %, not %; its source cannot change', r.name, parent, r.source;
    END IF;
  END IF;
  EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %I (bucket DESC)', r.name || '_bucket', r.name);
  FOREACH d IN ARRAY r.dims LOOP
    IF d IN ('rule_id', 'parser_id') THEN
      EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %I (%I, bucket DESC)', r.name || '_' || replace(d, '_id', ''), r.name, d);
    END IF;
  END LOOP;
  -- Policies (run by TimescaleDB's background workers where they exist; the service's
  -- scheduler refreshes the same way where they don't, as in the WASM build): whole buckets
  -- up to a minute ago, from the retention window on.
  PERFORM remove_continuous_aggregate_policy(format('%I', r.name), if_exists => true);
  PERFORM add_continuous_aggregate_policy(format('%I', r.name),
    start_offset => r.retention, end_offset => interval '1 minute', schedule_interval => r.refresh_every);
  PERFORM remove_retention_policy(format('%I', r.name), if_exists => true);
  IF r.retention IS NOT NULL THEN
    PERFORM add_retention_policy(format('%I', r.name), drop_after => r.retention);
  END IF;
END $$;

-- The schema-2 aggregates get policies from the registry too.
SELECT ruleperf_materialize(name) FROM ruleperf_rollups ORDER BY position;

-- TimescaleDB's internal time (microseconds since 1970 for timestamptz) as a timestamp,
-- its sentinels as ±infinity.
CREATE OR REPLACE FUNCTION ruleperf_internal_time(v bigint) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN v <= -210866803200000000 THEN '-infinity'::timestamptz
              WHEN v >= 9223372036854775000 THEN 'infinity'::timestamptz
              ELSE to_timestamp(0) + v * interval '1 microsecond' END
$$;

CREATE OR REPLACE VIEW ruleperf_rollup_status AS
SELECT r.name AS rollup, r.source, r.bucket_width, r.dims, r.refresh_every, r.position,
       coalesce(nullif(_timescaledb_functions.to_timestamp(_timescaledb_functions.cagg_watermark(c.mat_hypertable_id)),
                       _timescaledb_functions.to_timestamp(-210866803200000000)), '-infinity') AS watermark,
       s.last_refresh_at, s.last_duration_ms,
       NULL::bigint AS pending_invalidations,
       s.retained_from, r.retention, r.rank_keys
FROM ruleperf_rollups r
JOIN _timescaledb_catalog.continuous_agg c ON c.user_view_name = r.name
JOIN ruleperf_rollup_state s ON s.rollup = r.name;

-- Ranges changed below some continuous aggregate's watermark and not yet refreshed, from
-- TimescaleDB's logs: the hypertable invalidation log of what each aggregate reads (rows of
-- metrics, or of the source aggregate) not yet moved to the aggregates, and each
-- aggregate's own materialization log. Times of a source aggregate's log are its bucket
-- starts: the ranges cover the changed raw rows, and may be wider. Clipped at the watermark.
CREATE OR REPLACE VIEW ruleperf_pending_changes AS
WITH caggs AS (
  SELECT c.mat_hypertable_id, c.raw_hypertable_id, st.watermark, st.retained_from
  FROM ruleperf_rollup_status st
  JOIN _timescaledb_catalog.continuous_agg c ON c.user_view_name = st.rollup
), logged AS (
  SELECT ca.watermark, ca.retained_from,
         ruleperf_internal_time(l.lowest_modified_value) AS lo, ruleperf_internal_time(l.greatest_modified_value) AS hi
  FROM caggs ca
  JOIN _timescaledb_catalog.continuous_aggs_hypertable_invalidation_log l ON l.hypertable_id = ca.raw_hypertable_id
  UNION ALL
  SELECT ca.watermark, ca.retained_from,
         ruleperf_internal_time(l.lowest_modified_value), ruleperf_internal_time(l.greatest_modified_value)
  FROM caggs ca
  JOIN _timescaledb_catalog.continuous_aggs_materialization_invalidation_log l ON l.materialization_id = ca.mat_hypertable_id
)
SELECT lower(m.x) AS lo, upper(m.x) AS hi
FROM (SELECT unnest(range_agg(tstzrange(lo, least(hi, watermark), '[]'))) AS x
      -- (a refresh from the beginning leaves a log entry ending at -infinity: no change)
      FROM logged WHERE lo < watermark AND hi >= retained_from AND hi > '-infinity') AS m;
