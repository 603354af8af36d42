-- Schema 14 (PostgreSQL flavour): rollups with a rule column keep each bucket's rows in rule
-- order, and their bucket index holds the rule too, so top rules' first phase, reading the rules
-- in two halves side by side, reads only its half: the half condition is checked in the index
-- (no heap row fetched for the other half), and the rows it keeps lie next to each other.
-- Before, the rows of a bucket lay in hash-aggregation order and each half fetched every row
-- of its time ranges to reject half of them: at 45M rows and 5,000 rules, a half of a 7-day
-- first phase ran 66-73 ms; with rows in rule order and the rule in the index, 51 ms.
--
-- The index leads with the bucket as before (every read of a time range uses it) and holds
-- `rule_id || ''`, the expression top rules' halves compare (a plain rule_id comparison lets
-- the planner AND in a bitmap of the per-rule index over every bucket: slower than reading all).
-- Rows written by refreshes from this version on are in order; rows an earlier version wrote
-- keep theirs (CLUSTER <rollup> USING <rollup>_bucket orders them, taking the table's lock).

CREATE OR REPLACE FUNCTION ruleperf_rollup_indexes(rollup text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  r ruleperf_rollups;
  d text;
BEGIN
  SELECT * INTO STRICT r FROM ruleperf_rollups WHERE name = rollup;
  IF to_regclass(format('%I', r.name || '_bucket')) IS NULL THEN
    IF 'rule_id' = ANY (r.dims) THEN
      EXECUTE format('CREATE INDEX %I ON %I (bucket DESC, (rule_id || %L))', r.name || '_bucket', r.name, '');
    ELSE
      EXECUTE format('CREATE INDEX %I ON %I (bucket DESC)', r.name || '_bucket', r.name);
    END IF;
  END IF;
  FOREACH d IN ARRAY r.dims LOOP
    IF d IN ('rule_id', 'parser_id') AND to_regclass(format('%I', r.name || '_' || replace(d, '_id', ''))) IS NULL THEN
      EXECUTE format('CREATE INDEX %I ON %I (%I, bucket DESC) WHERE %I IS NOT NULL', r.name || '_' || replace(d, '_id', ''), r.name, d, d);
    END IF;
  END LOOP;
END $$;

-- Rollups already filled get the new bucket index now (empty ones get theirs after their first
-- fill; one already in the new form is kept). The migration holds each rebuilt rollup's lock until
-- it commits: at 45M raw rows, the seven rollups with rules took 12 s.
SET LOCAL maintenance_work_mem = '256MB';
DO $$
DECLARE
  r record;
BEGIN
  FOR r IN SELECT name FROM ruleperf_rollups WHERE 'rule_id' = ANY (dims) ORDER BY position LOOP
    CONTINUE WHEN to_regclass(format('%I', r.name || '_bucket')) IS NULL
               OR pg_get_indexdef(to_regclass(format('%I', r.name || '_bucket'))) LIKE '%rule_id%';
    EXECUTE format('DROP INDEX %I', r.name || '_bucket');
    PERFORM ruleperf_rollup_indexes(r.name);
  END LOOP;
END $$;

CREATE OR REPLACE FUNCTION ruleperf_refresh(only_rollups text[] DEFAULT NULL, until timestamptz DEFAULT now(), lateness interval DEFAULT '1 minute')
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
  PERFORM ruleperf_analyze_raw_if_stale();
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
    IF 'rule_id' = ANY (r.dims) THEN
      -- Rows in the order top rules reads them; grouped first (MATERIALIZED), so the grouping
      -- stays a hash aggregation and the sort is of the groups, not of every source row.
      ins := format('WITH g AS MATERIALIZED (%s) INSERT INTO %I (%s) SELECT * FROM g ORDER BY bucket, rule_id',
                    ruleperf_rollup_query(r.name, false), r.name, ruleperf_rollup_columns(r.name));
    END IF;
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
