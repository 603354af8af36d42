-- PostgreSQL flavour, schema 6: any registry row is materialized by ruleperf_materialize
-- (called by the registry's trigger); watermarks sit on bucket boundaries and lag the
-- refresh instant by a lateness allowance; a refresh that rewrites buckets below a
-- watermark records the raw time ranges it reflected in ruleperf_changes, in the same
-- transaction; ruleperf_pending_changes lists ranges changed but not yet refreshed.

-- A rollup's indexes: bucket, and rule or parser where it has them (those filters pick a
-- few rows out of many; the other dimensions have a handful of values each and are read
-- with the bucket range). Created once the table holds rows: building an index after a
-- first fill is several times cheaper than maintaining it row by row during the fill.
CREATE OR REPLACE FUNCTION ruleperf_rollup_indexes(rollup text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  r ruleperf_rollups;
  d text;
BEGIN
  SELECT * INTO STRICT r FROM ruleperf_rollups WHERE name = rollup;
  IF to_regclass(format('%I', r.name || '_bucket')) IS NULL THEN
    EXECUTE format('CREATE INDEX %I ON %I (bucket DESC)', r.name || '_bucket', r.name);
  END IF;
  FOREACH d IN ARRAY r.dims LOOP
    IF d IN ('rule_id', 'parser_id') AND to_regclass(format('%I', r.name || '_' || replace(d, '_id', ''))) IS NULL THEN
      EXECUTE format('CREATE INDEX %I ON %I (%I, bucket DESC) WHERE %I IS NOT NULL', r.name || '_' || replace(d, '_id', ''), r.name, d, d);
    END IF;
  END LOOP;
END $$;

-- A rollup table (its indexes once it has rows) and its rank keys. The refresh fills it and
-- applies its retention.
CREATE OR REPLACE FUNCTION ruleperf_materialize(rollup text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  r ruleperf_rollups;
  dim_columns text;
  generated "char";
  has_rows boolean;
BEGIN
  SELECT * INTO STRICT r FROM ruleperf_rollups WHERE name = rollup;
  IF to_regclass(format('%I', r.name)) IS NULL THEN
    SELECT coalesce(string_agg(format('%I text COLLATE "C", ', u.d), '' ORDER BY u.o), '') INTO dim_columns
    FROM unnest(r.dims) WITH ORDINALITY AS u(d, o);
    EXECUTE format('CREATE TABLE %I (bucket timestamptz NOT NULL, %s
      execution_count bigint, exec_time_sum double precision, exec_time_min double precision, exec_time_max double precision,
      latency_sketch bigint[], latency_coarse bigint[], records_processed bigint, records_matched bigint, records_failed bigint,
      memory_sum double precision, memory_max double precision, cpu_sum double precision, cpu_max double precision,
      error_count bigint, success_count bigint, timeout_count bigint)', r.name, dim_columns);
  END IF;
  EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I)', r.name) INTO has_rows;
  IF has_rows THEN
    PERFORM ruleperf_rollup_indexes(r.name);
  END IF;
  -- Rank keys: a plain column the refresh fills (schema 4 made it a generated column, which
  -- called the function once per row even where a single source row's keys could be copied).
  SELECT a.attgenerated INTO generated FROM pg_attribute a
  WHERE a.attrelid = to_regclass(format('%I', r.name)) AND a.attname = 'latency_rank_keys' AND NOT a.attisdropped;
  IF r.rank_keys AND generated IS NULL THEN
    EXECUTE format('ALTER TABLE %I ADD COLUMN latency_rank_keys integer[]', r.name);
    EXECUTE format('UPDATE %I SET latency_rank_keys = ruleperf_sketch_rank_keys(latency_sketch)', r.name);
  ELSIF r.rank_keys AND generated = 's' THEN
    EXECUTE format('ALTER TABLE %I ALTER COLUMN latency_rank_keys DROP EXPRESSION', r.name);
  ELSIF NOT r.rank_keys AND generated IS NOT NULL THEN
    EXECUTE format('ALTER TABLE %I DROP COLUMN latency_rank_keys', r.name);
  END IF;
END $$;

-- Rank keys as in schema 4, computed in one pass over a sorted sketch (the SQL version ran
-- two window functions per row: about 20 µs each, a large part of refreshing the by-rule
-- rollups). Unsorted input takes the schema-4 query, so the result is the same for any input.
CREATE OR REPLACE FUNCTION ruleperf_sketch_rank_keys(entries bigint[]) RETURNS integer[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  n float8 := 0;
  e bigint; k bigint; c float8; before float8 := 0; lastk bigint := -1;
  r1 float8; r2 float8; r3 float8; r4 float8;
  k1 integer; k2 integer; k3 integer; k4 integer;
BEGIN
  IF entries IS NOT NULL THEN
    FOREACH e IN ARRAY entries LOOP
      k := e >> 32;
      IF k <= lastk THEN
        RETURN (WITH x AS (SELECT (y >> 32)::int AS k, (y & 4294967295)::float8 AS c FROM unnest(entries) AS y),
                     cum AS (SELECT x.k, x.c, sum(x.c) OVER (ORDER BY x.k) - x.c AS before, sum(x.c) OVER () AS n FROM x)
                SELECT ARRAY[
                  min(cum.k) FILTER (WHERE cum.before <= floor(0.95 * (cum.n - 1)) AND floor(0.95 * (cum.n - 1)) < cum.before + cum.c),
                  min(cum.k) FILTER (WHERE cum.before <= least(cum.n - 1, ceil(0.95 * cum.n)) AND least(cum.n - 1, ceil(0.95 * cum.n)) < cum.before + cum.c),
                  min(cum.k) FILTER (WHERE cum.before <= floor(0.99 * (cum.n - 1)) AND floor(0.99 * (cum.n - 1)) < cum.before + cum.c),
                  min(cum.k) FILTER (WHERE cum.before <= least(cum.n - 1, ceil(0.99 * cum.n)) AND least(cum.n - 1, ceil(0.99 * cum.n)) < cum.before + cum.c)]
                FROM cum);
      END IF;
      lastk := k;
      n := n + (e & 4294967295)::float8;
    END LOOP;
  END IF;
  r1 := floor(0.95 * (n - 1)); r2 := least(n - 1, ceil(0.95 * n));
  r3 := floor(0.99 * (n - 1)); r4 := least(n - 1, ceil(0.99 * n));
  IF entries IS NOT NULL THEN
    FOREACH e IN ARRAY entries LOOP
      c := (e & 4294967295)::float8;
      k := e >> 32;
      IF k1 IS NULL AND before <= r1 AND r1 < before + c THEN k1 := k; END IF;
      IF k2 IS NULL AND before <= r2 AND r2 < before + c THEN k2 := k; END IF;
      IF k3 IS NULL AND before <= r3 AND r3 < before + c THEN k3 := k; END IF;
      IF k4 IS NULL AND before <= r4 AND r4 < before + c THEN k4 := k; END IF;
      before := before + c;
    END LOOP;
  END IF;
  RETURN ARRAY[k1, k2, k3, k4];
END $$;

-- Rollups still empty (a new install) lose the indexes schema 2 gave them: the first refresh
-- fills them and then builds the indexes.
DO $$
DECLARE
  r record;
  has_rows boolean;
  idx text;
BEGIN
  FOR r IN SELECT name FROM ruleperf_rollups LOOP
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I)', r.name) INTO has_rows;
    CONTINUE WHEN has_rows;
    FOR idx IN SELECT i.indexrelid::regclass::text FROM pg_index i WHERE i.indrelid = to_regclass(format('%I', r.name)) LOOP
      EXECUTE format('DROP INDEX %s', idx);
    END LOOP;
  END LOOP;
END $$;

-- The registry says which rollups keep rank keys (schema 4 added them to these two by name).
UPDATE ruleperf_rollups SET rank_keys = true WHERE name IN ('metrics_hourly_by_rule', 'metrics_daily_by_rule');

-- Cheaper sources, same answers: each rollup is built from the smallest one holding its
-- dimensions at a width dividing its own (by type and totals from by category instead of the
-- full rollups, daily by category and by rule from their hourly versions). Positions are
-- renumbered so sources still come first.
UPDATE ruleperf_rollups SET position = position + 1000;
DO $$
DECLARE v record;
BEGIN
  -- One row at a time, in the new order, so that each row's source already has its position.
  FOR v IN SELECT * FROM (VALUES ('metrics_hourly', 'metrics', 1),
             ('metrics_hourly_by_category', 'metrics_hourly', 2),
             ('metrics_hourly_by_type', 'metrics_hourly_by_category', 3),
             ('metrics_hourly_total', 'metrics_hourly_by_type', 4),
             ('metrics_hourly_by_rule', 'metrics_hourly', 5),
             ('metrics_daily', 'metrics_hourly', 6),
             ('metrics_daily_by_category', 'metrics_hourly_by_category', 7),
             ('metrics_daily_by_type', 'metrics_daily_by_category', 8),
             ('metrics_daily_total', 'metrics_daily_by_type', 9),
             ('metrics_daily_by_rule', 'metrics_hourly_by_rule', 10)) AS t(name, source, position) ORDER BY 3
  LOOP
    UPDATE ruleperf_rollups SET source = v.source, position = v.position WHERE name = v.name;
  END LOOP;
  -- Rollups added since schema 2 keep their order, after these.
  UPDATE ruleperf_rollups SET position = position - 1000 + 10 WHERE position > 1000;
END $$;

-- Watermarks move to bucket boundaries: a partially materialized newest bucket is above the
-- watermark from now on, and the next refresh recomputes it whole.
UPDATE ruleperf_rollup_state s SET watermark = ruleperf_bucket_floor(r.bucket_width, s.watermark)
FROM ruleperf_rollups r WHERE r.name = s.rollup;

-- Refresh every rollup (or only_rollups), sources first, in this transaction. A rollup is
-- complete up to its watermark: the last bucket boundary at or before its source's watermark
-- (for raw rows, until - lateness, so rows of a live feed arriving that late are still above
-- it). Each refresh recomputes the buckets between the old and new watermark (the routine
-- advance), and every bucket whose raw rows changed below the watermark (logged by the
-- triggers on metrics, or cascaded from the source). For rollups read from raw rows, the raw
-- ranges that changed below the old watermark go to ruleperf_changes (merged, clipped at
-- the watermark), so the service drops cached answers over them when this commits.
-- Rollups with a retention keep buckets from retained_from on. Returns nothing when another
-- session holds the lock.
DROP FUNCTION IF EXISTS ruleperf_refresh(text[], timestamptz);
CREATE FUNCTION ruleperf_refresh(only_rollups text[] DEFAULT NULL, until timestamptz DEFAULT now(), lateness interval DEFAULT '1 minute')
RETURNS TABLE (rollup text, buckets_recomputed bigint, old_watermark timestamptz, new_watermark timestamptz, retained_from timestamptz,
               rewritten_lo timestamptz[], rewritten_hi timestamptz[], changed_lo timestamptz[], changed_hi timestamptz[],
               duration_ms double precision)
LANGUAGE plpgsql
-- Hash aggregation with room for a statement's groups (the planner overestimates array_agg's
-- state and would sort every raw row to disk instead: three times slower for a dense hour),
-- room to build indexes, and no JIT compile for short, repeated statements.
SET work_mem = '256MB' SET enable_sort = off SET maintenance_work_mem = '256MB' SET jit = off
AS $$
DECLARE
  r ruleperf_rollups;
  st ruleperf_rollup_state;
  src_wm timestamptz;
  src_kept timestamptz;
  new_wm timestamptz;
  kept timestamptz;
  mine tstzmultirange;
  todo tstzmultirange;
  rewrote tstzmultirange;
  changed tstzmultirange;
  all_changes tstzmultirange := '{}';
  rng tstzrange;
  lo timestamptz;
  hi timestamptz;
  cut timestamptz;
  next_cut timestamptz;
  raw_first timestamptz;
  raw_first_known boolean := false;
  step interval;
  ins text;
  n bigint;
  total bigint;
  started timestamptz;
BEGIN
  IF lateness IS NULL OR lateness < interval '0' THEN
    RAISE EXCEPTION 'lateness must be a non-negative interval, got %', lateness;
  END IF;
  IF NOT pg_try_advisory_xact_lock(hashtext('ruleperf_refresh')) THEN
    RETURN;
  END IF;
  PERFORM brin_summarize_new_values('metrics_time');
  FOR r IN SELECT * FROM ruleperf_rollups ORDER BY position LOOP
    CONTINUE WHEN only_rollups IS NOT NULL AND NOT r.name = ANY (only_rollups);
    started := clock_timestamp();
    SELECT * INTO STRICT st FROM ruleperf_rollup_state s WHERE s.rollup = r.name FOR UPDATE;
    IF r.source = 'metrics' THEN
      src_wm := until - lateness;
      src_kept := '-infinity';
    ELSE
      SELECT s.watermark, s.retained_from INTO STRICT src_wm, src_kept FROM ruleperf_rollup_state s WHERE s.rollup = r.source;
    END IF;
    new_wm := greatest(st.watermark, ruleperf_bucket_floor(r.bucket_width, src_wm));
    -- Whole buckets only: a bucket partly before the source's retained rows is incomplete.
    kept := CASE WHEN isfinite(src_kept) THEN ruleperf_bucket_floor(r.bucket_width, src_kept - interval '1 microsecond') + r.bucket_width
                 ELSE src_kept END;
    IF r.retention IS NOT NULL THEN
      kept := greatest(kept, ruleperf_bucket_floor(r.bucket_width, until - r.retention));
    END IF;

    -- This rollup's share of the invalidation log, consumed.
    WITH consumed AS (DELETE FROM ruleperf_invalidations i WHERE i.rollup = r.name RETURNING i.lo, i.hi)
    SELECT coalesce(range_agg(tstzrange(c.lo, c.hi, '[]')), '{}') INTO mine FROM consumed c;
    changed := '{}';
    IF r.source = 'metrics' AND st.watermark > '-infinity' THEN
      changed := mine * tstzmultirange(tstzrange('-infinity', st.watermark, '[)'));
      all_changes := all_changes + changed;
    END IF;

    SELECT coalesce(range_agg(tstzrange(ruleperf_bucket_floor(r.bucket_width, lower(x)),
                                        CASE WHEN isfinite(upper(x)) THEN ruleperf_bucket_floor(r.bucket_width, upper(x)) + r.bucket_width
                                             ELSE upper(x) END, '[)')), '{}')
      INTO todo FROM unnest(mine) AS x;
    -- From the start of the bucket holding the old watermark (a schema-5 watermark may be inside one).
    todo := todo + tstzmultirange(tstzrange(ruleperf_bucket_floor(r.bucket_width, st.watermark), new_wm, '[)'));
    IF kept < st.retained_from THEN  -- a longer retention than before: rebuild what was dropped
      todo := todo + tstzmultirange(tstzrange(kept, st.retained_from, '[)'));
    END IF;
    todo := todo * tstzmultirange(tstzrange(kept, new_wm, '[)'));
    rewrote := todo * tstzmultirange(tstzrange('-infinity', st.watermark, '[)'));

    total := 0;
    ins := format('INSERT INTO %I (%s) %s', r.name, ruleperf_rollup_columns(r.name), ruleperf_rollup_query(r.name, false));
    -- A statement per 60 buckets, at most a day's (at least one bucket): bounded memory, and
    -- hash tables that stay small (a spilled hash aggregation is twice as slow).
    step := greatest(r.bucket_width, least(interval '1 day', r.bucket_width * 60));
    FOR rng IN SELECT unnest(todo) LOOP
      lo := lower(rng);
      hi := upper(rng);
      -- Plain bounds (not "<@ range"): the planner estimates them and uses the indexes.
      EXECUTE format('DELETE FROM %I WHERE bucket >= $1 AND bucket < $2', r.name) USING lo, hi;
      cut := lo;
      IF NOT isfinite(lo) THEN  -- from where the source's rows begin
        IF r.source = 'metrics' THEN
          IF NOT raw_first_known THEN
            SELECT min(time) INTO raw_first FROM metrics;
            raw_first_known := true;
          END IF;
          cut := raw_first;
        ELSE
          EXECUTE format('SELECT min(bucket) FROM %I', r.source) INTO cut;
        END IF;
        cut := ruleperf_bucket_floor(r.bucket_width, cut);
      END IF;
      WHILE cut < hi LOOP  -- false when the source is empty (cut is NULL)
        next_cut := least(cut + step, hi);
        EXECUTE ins USING cut, next_cut;
        GET DIAGNOSTICS n = ROW_COUNT;
        total := total + n;
        cut := next_cut;
      END LOOP;
      -- Cascade: rollups built on this one must recompute the same range.
      INSERT INTO ruleperf_invalidations (rollup, lo, hi)
      SELECT c.name, lo, CASE WHEN isfinite(hi) THEN hi - interval '1 microsecond' ELSE hi END
      FROM ruleperf_rollups c WHERE c.source = r.name;
    END LOOP;
    IF isfinite(kept) THEN
      EXECUTE format('DELETE FROM %I WHERE bucket < $1', r.name) USING kept;
    END IF;
    IF total > 0 THEN
      PERFORM ruleperf_rollup_indexes(r.name);
    END IF;

    UPDATE ruleperf_rollup_state s
       SET watermark = new_wm, retained_from = kept, last_refresh_at = now(),
           last_duration_ms = extract(epoch FROM clock_timestamp() - started) * 1000
     WHERE s.rollup = r.name;
    rollup := r.name; buckets_recomputed := total; old_watermark := st.watermark; new_watermark := new_wm;
    retained_from := kept;
    rewritten_lo := ARRAY(SELECT lower(x) FROM unnest(rewrote) AS x);
    rewritten_hi := ARRAY(SELECT upper(x) FROM unnest(rewrote) AS x);
    changed_lo := ARRAY(SELECT lower(x) FROM unnest(changed) AS x);
    changed_hi := ARRAY(SELECT upper(x) FROM unnest(changed) AS x);
    duration_ms := extract(epoch FROM clock_timestamp() - started) * 1000;
    RETURN NEXT;
  END LOOP;
  INSERT INTO ruleperf_changes (lo, hi) SELECT lower(x), upper(x) FROM unnest(all_changes) AS x;
  DELETE FROM ruleperf_changes WHERE at < now() - interval '1 day';
END $$;

CREATE OR REPLACE VIEW ruleperf_rollup_status AS
SELECT r.name AS rollup, r.source, r.bucket_width, r.dims, r.refresh_every, r.position,
       s.watermark, s.last_refresh_at, s.last_duration_ms,
       (SELECT count(*) FROM ruleperf_invalidations i WHERE i.rollup = r.name) AS pending_invalidations,
       s.retained_from, r.retention, r.rank_keys
FROM ruleperf_rollups r JOIN ruleperf_rollup_state s ON s.rollup = r.name;

-- Raw time ranges changed (rows inserted, updated or deleted below some rollup's watermark,
-- or cascaded from a source) and not yet reflected in every rollup: the service reads raw
-- rows for buckets that overlap them. Clipped at each rollup's watermark (above it the
-- service reads raw rows anyway); ranges wholly before a rollup's retained buckets do not
-- concern it.
CREATE OR REPLACE VIEW ruleperf_pending_changes AS
SELECT lower(m.x) AS lo, upper(m.x) AS hi
FROM (SELECT unnest(range_agg(tstzrange(i.lo, least(i.hi, s.watermark), '[]'))) AS x
      FROM ruleperf_invalidations i JOIN ruleperf_rollup_state s ON s.rollup = i.rollup
      WHERE i.lo < s.watermark AND i.hi >= s.retained_from) AS m;
