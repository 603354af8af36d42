-- PostgreSQL flavour: rollups are plain tables kept exact by a transactional
-- invalidation log (statement-level triggers with transition tables record the
-- touched time range) and ruleperf_refresh(), which recomputes only what is
-- invalidated plus the newly completed buckets, atomically, under an advisory lock.

CREATE TABLE IF NOT EXISTS ruleperf_invalidations (
  rollup  text NOT NULL,
  lo      timestamptz NOT NULL,   -- earliest touched time (inclusive)
  hi      timestamptz NOT NULL    -- latest touched time (inclusive)
);
CREATE INDEX IF NOT EXISTS ruleperf_invalidations_rollup ON ruleperf_invalidations (rollup);

-- BRIN keeps loading fast (a B-tree on time halves COPY throughput). New page ranges are
-- summarized at every refresh, so reading the live edge touches only the newest pages.
CREATE INDEX IF NOT EXISTS metrics_time ON metrics USING brin (time) WITH (pages_per_range = 32, autosummarize = on);

DO $$
DECLARE r record;
BEGIN
  FOR r IN SELECT name FROM ruleperf_rollups ORDER BY position LOOP
    EXECUTE format('CREATE TABLE IF NOT EXISTS %I AS %s WITH NO DATA', r.name,
                   ruleperf_rollup_select(r.name, 'date_bin(%L::interval, %I, ''2000-01-01 00:00:00+00'')'));
    EXECUTE format('ALTER TABLE %I ALTER COLUMN bucket SET NOT NULL', r.name);
    EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %I (bucket DESC)', r.name || '_bucket', r.name);
  END LOOP;
END $$;

CREATE INDEX IF NOT EXISTS metrics_hourly_rule ON metrics_hourly (rule_id, bucket DESC) WHERE rule_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS metrics_hourly_parser ON metrics_hourly (parser_id, bucket DESC) WHERE parser_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS metrics_daily_rule ON metrics_daily (rule_id, bucket DESC) WHERE rule_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS metrics_daily_parser ON metrics_daily (parser_id, bucket DESC) WHERE parser_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS metrics_hourly_by_rule_rule ON metrics_hourly_by_rule (rule_id, bucket DESC);
CREATE INDEX IF NOT EXISTS metrics_daily_by_rule_rule ON metrics_daily_by_rule (rule_id, bucket DESC);

-- Record the time range each statement touched, for every rollup built from raw rows.
CREATE OR REPLACE FUNCTION ruleperf_log_new_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO ruleperf_invalidations (rollup, lo, hi)
  SELECT r.name, t.lo, t.hi
  FROM (SELECT min(time) AS lo, max(time) AS hi FROM new_rows) AS t, ruleperf_rollups AS r
  WHERE r.source = 'metrics' AND t.lo IS NOT NULL;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION ruleperf_log_old_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  -- Raw-data retention removes rows whose rollups must be kept: it sets this flag.
  IF current_setting('ruleperf.retention', true) = 'on' THEN RETURN NULL; END IF;
  INSERT INTO ruleperf_invalidations (rollup, lo, hi)
  SELECT r.name, t.lo, t.hi
  FROM (SELECT min(time) AS lo, max(time) AS hi FROM old_rows) AS t, ruleperf_rollups AS r
  WHERE r.source = 'metrics' AND t.lo IS NOT NULL;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION ruleperf_log_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO ruleperf_invalidations (rollup, lo, hi)
  SELECT name, '-infinity', 'infinity' FROM ruleperf_rollups WHERE source = 'metrics';
  RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS ruleperf_metrics_insert ON metrics;
CREATE TRIGGER ruleperf_metrics_insert AFTER INSERT ON metrics
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION ruleperf_log_new_rows();
DROP TRIGGER IF EXISTS ruleperf_metrics_update_new ON metrics;
CREATE TRIGGER ruleperf_metrics_update_new AFTER UPDATE ON metrics
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION ruleperf_log_new_rows();
DROP TRIGGER IF EXISTS ruleperf_metrics_update_old ON metrics;
CREATE TRIGGER ruleperf_metrics_update_old AFTER UPDATE ON metrics
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION ruleperf_log_old_rows();
DROP TRIGGER IF EXISTS ruleperf_metrics_delete ON metrics;
CREATE TRIGGER ruleperf_metrics_delete AFTER DELETE ON metrics
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION ruleperf_log_old_rows();
DROP TRIGGER IF EXISTS ruleperf_metrics_truncate ON metrics;
CREATE TRIGGER ruleperf_metrics_truncate AFTER TRUNCATE ON metrics
  FOR EACH STATEMENT EXECUTE FUNCTION ruleperf_log_truncate();

-- Refresh every rollup (or the named ones), sources first, in this transaction:
-- recompute the invalidated buckets below the new watermark and the buckets newly
-- completed since the old one. Returns nothing when another session holds the lock.
CREATE OR REPLACE FUNCTION ruleperf_refresh(only_rollups text[] DEFAULT NULL, until timestamptz DEFAULT now())
RETURNS TABLE (rollup text, buckets_recomputed bigint, old_watermark timestamptz, new_watermark timestamptz, duration_ms double precision)
LANGUAGE plpgsql
-- Enough work_mem that the planner hash-aggregates (groups are few; a sort of every raw row
-- would cost more than the aggregation), and no JIT compile for a short, repeated statement.
SET work_mem = '1GB' SET jit = off
AS $$
DECLARE
  r ruleperf_rollups;
  st ruleperf_rollup_state;
  source_wm timestamptz;
  new_wm timestamptz;
  started timestamptz;
  rng tstzrange;
  n bigint;
  total bigint;
  bucket_fn constant text := 'date_bin(%L::interval, %I, ''2000-01-01 00:00:00+00'')';
BEGIN
  IF NOT pg_try_advisory_xact_lock(hashtext('ruleperf_refresh')) THEN
    RETURN;
  END IF;
  PERFORM brin_summarize_new_values('metrics_time');
  FOR r IN SELECT * FROM ruleperf_rollups ORDER BY position LOOP
    CONTINUE WHEN only_rollups IS NOT NULL AND NOT r.name = ANY (only_rollups);
    started := clock_timestamp();
    SELECT * INTO STRICT st FROM ruleperf_rollup_state s WHERE s.rollup = r.name FOR UPDATE;
    IF r.source = 'metrics' THEN
      source_wm := until;
    ELSE
      SELECT s.watermark INTO STRICT source_wm FROM ruleperf_rollup_state s WHERE s.rollup = r.source;
    END IF;
    -- Every rollup is complete up to its source's watermark (raw rows: the refresh instant), its
    -- newest bucket partial until the next refresh recomputes it. Queries read the stretch after
    -- a watermark from the finer tier or raw rows, so answers stay exact while the live edge a
    -- query reads is minutes of rows, not an hour or a day.
    new_wm := source_wm;
    new_wm := greatest(new_wm, st.watermark);
    total := 0;
    -- Invalidated ranges (consumed) below the new watermark, plus [old, new), merged.
    FOR rng IN
      WITH consumed AS (
        DELETE FROM ruleperf_invalidations i WHERE i.rollup = r.name RETURNING i.lo, i.hi
      ), ranges AS (
        SELECT tstzrange(
                 CASE WHEN lo = '-infinity' THEN lo ELSE date_bin(r.bucket_width, lo, '2000-01-01 00:00:00+00') END,
                 least(new_wm, CASE WHEN hi = 'infinity' THEN hi
                                    ELSE date_bin(r.bucket_width, hi, '2000-01-01 00:00:00+00') + r.bucket_width END),
                 '[)') AS rg
        FROM consumed
        WHERE lo < new_wm
        UNION ALL
        -- From the start of the bucket holding the old watermark: that bucket may be partial.
        SELECT tstzrange(CASE WHEN st.watermark = '-infinity' THEN st.watermark
                              ELSE date_bin(r.bucket_width, st.watermark, '2000-01-01 00:00:00+00') END, new_wm, '[)')
        WHERE st.watermark < new_wm
      )
      SELECT unnest(range_agg(rg)) FROM ranges WHERE NOT isempty(rg)
    LOOP
      -- Plain bounds (not "<@ range"): the planner estimates them, uses indexes, and hash-aggregates.
      EXECUTE format('DELETE FROM %I WHERE bucket >= $1 AND bucket < $2', r.name) USING lower(rng), upper(rng);
      EXECUTE format('INSERT INTO %I %s', r.name,
                     ruleperf_rollup_select(r.name, bucket_fn,
                       format('WHERE %1$I >= $1 AND %1$I < $2', CASE WHEN r.source = 'metrics' THEN 'time' ELSE 'bucket' END)))
        USING lower(rng), upper(rng);
      GET DIAGNOSTICS n = ROW_COUNT;
      total := total + n;
      -- Cascade: rollups built on this one must recompute the same range.
      INSERT INTO ruleperf_invalidations (rollup, lo, hi)
      SELECT c.name, lower(rng), CASE WHEN upper_inf(rng) THEN 'infinity' ELSE upper(rng) - interval '1 microsecond' END
      FROM ruleperf_rollups c WHERE c.source = r.name;
    END LOOP;
    UPDATE ruleperf_rollup_state s
       SET watermark = new_wm, last_refresh_at = now(),
           last_duration_ms = extract(epoch FROM clock_timestamp() - started) * 1000
     WHERE s.rollup = r.name;
    rollup := r.name; buckets_recomputed := total; old_watermark := st.watermark; new_watermark := new_wm;
    duration_ms := extract(epoch FROM clock_timestamp() - started) * 1000;
    RETURN NEXT;
  END LOOP;
END $$;

CREATE OR REPLACE VIEW ruleperf_rollup_status AS
SELECT r.name AS rollup, r.source, r.bucket_width, r.dims, r.refresh_every, r.position,
       s.watermark, s.last_refresh_at, s.last_duration_ms,
       (SELECT count(*) FROM ruleperf_invalidations i WHERE i.rollup = r.name) AS pending_invalidations
FROM ruleperf_rollups r JOIN ruleperf_rollup_state s ON s.rollup = r.name;
