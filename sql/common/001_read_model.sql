-- The read model shared by both flavours: raw metrics, dimension tables and the
-- latency sketch. The rollups themselves are defined per flavour. Dimension columns use
-- the "C" collation: they are identifiers, and byte-order grouping is several times
-- faster than locale-aware comparison when rollups are refreshed.

CREATE TABLE IF NOT EXISTS metrics (
  time               timestamptz      NOT NULL,
  metric_type        text COLLATE "C" NOT NULL,
  rule_id            text COLLATE "C",
  parser_id          text COLLATE "C",
  rule_category      text COLLATE "C",
  source_type        text COLLATE "C",
  status             text COLLATE "C" NOT NULL CHECK (status IN ('SUCCESS', 'ERROR', 'TIMEOUT')),
  execution_time_ms  double precision NOT NULL CHECK (execution_time_ms >= 0),
  records_processed  bigint           NOT NULL DEFAULT 0,
  records_matched    bigint           NOT NULL DEFAULT 0,
  records_failed     bigint           NOT NULL DEFAULT 0,
  memory_usage_mb    double precision NOT NULL DEFAULT 0,
  cpu_usage_percent  double precision NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS rules (
  rule_id        text PRIMARY KEY,
  rule_name      text NOT NULL,
  rule_category  text NOT NULL,
  metric_type    text NOT NULL,
  updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS parsers (
  parser_id    text PRIMARY KEY,
  parser_name  text NOT NULL,
  source_type  text NOT NULL,
  updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Per-rollup bookkeeping: how far it is materialized and when it was last refreshed.
CREATE TABLE IF NOT EXISTS ruleperf_rollup_state (
  rollup               text PRIMARY KEY,
  watermark            timestamptz NOT NULL DEFAULT '-infinity',
  last_refresh_at      timestamptz,
  last_duration_ms     double precision
);

-- Latency sketch: a sparse log-bucketed histogram (DDSketch with a fixed gamma).
-- A value x > 0 falls in bucket k = ceil(log_gamma(x)) + 1500 (k >= 1; x = 0 is bucket 0),
-- which holds (gamma^(k-1501), gamma^(k-1500)]. Reporting 2*gamma^(k-1500)/(gamma+1) for it
-- is within alpha = (gamma-1)/(gamma+1) = 0.8 % of every value in the bucket. Each entry of
-- a sketch is one bigint: key << 32 | count. Sketches merge by adding counts per key, so a
-- percentile over any range and filter is read from the merged histogram, never from
-- percentiles of buckets. Rollups also keep a coarse sketch (keys / 16, about 30 % wide),
-- merged cheaply to bound each rule's percentile when ranking the slowest rules.
CREATE OR REPLACE FUNCTION ruleperf_sketch_key(x double precision) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN x <= 0 THEN 0
              ELSE least(4000, greatest(1, ceil(ln(x) / ln(1.016129032258064)::double precision)::integer + 1500)) END
$$;

CREATE OR REPLACE FUNCTION ruleperf_sketch_from_keys(keys integer[]) RETURNS bigint[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT coalesce(array_agg((k::bigint << 32) | c ORDER BY k), '{}'::bigint[])
  FROM (SELECT k, count(*) AS c FROM unnest(keys) AS k GROUP BY k) AS s
$$;

CREATE OR REPLACE FUNCTION ruleperf_sketch_compact(entries bigint[]) RETURNS bigint[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT coalesce(array_agg((k << 32) | c ORDER BY k), '{}'::bigint[])
  FROM (SELECT e >> 32 AS k, sum(e & 4294967295)::bigint AS c FROM unnest(entries) AS e GROUP BY 1) AS s
$$;

-- The coarse sketch of a sketch: keys / 16, counts added. Its search_path is pinned because
-- TimescaleDB refreshes continuous aggregates with a restricted one.
CREATE OR REPLACE FUNCTION ruleperf_sketch_coarsen(entries bigint[]) RETURNS bigint[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path FROM CURRENT AS $$
  SELECT ruleperf_sketch_compact(array(SELECT (((e >> 32) / 16) << 32) | (e & 4294967295) FROM unnest(entries) AS e))
$$;

-- ruleperf_sketch(key): builds a sketch from raw rows (pass ruleperf_sketch_key(execution_time_ms)).
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_proc WHERE proname = 'ruleperf_sketch' AND prokind = 'a') THEN
    CREATE AGGREGATE ruleperf_sketch(integer) (
      SFUNC = array_append, STYPE = integer[], FINALFUNC = ruleperf_sketch_from_keys, INITCOND = '{}');
  END IF;
  -- ruleperf_sketch_merge(sketch): merges sketches (hierarchical rollups).
  IF NOT EXISTS (SELECT 1 FROM pg_proc WHERE proname = 'ruleperf_sketch_merge' AND prokind = 'a') THEN
    CREATE AGGREGATE ruleperf_sketch_merge(bigint[]) (
      SFUNC = array_cat, STYPE = bigint[], FINALFUNC = ruleperf_sketch_compact, INITCOND = '{}');
  END IF;
END $$;
