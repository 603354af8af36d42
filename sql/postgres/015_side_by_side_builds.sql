-- Schema 15 (PostgreSQL flavour): a first build refreshes independent rollups side by side.
-- ruleperf_refresh(…, side_by_side => true) shares the refresh lock with other such refreshes
-- (a build refreshes one rollup per statement, on two connections); any other refresh (the
-- service's scheduler, `npm run refresh -- --sessions 1`) takes it alone, as before, and skips
-- while a build runs. Two sessions naming the same rollup take turns on its state row. The raw
-- table's upkeep (summarizing new BRIN ranges, ANALYZE when stale) locks the table against
-- itself until the refresh commits, so a side-by-side refresh does it only when no other
-- refresh is doing it (NOWAIT), instead of waiting for the other's whole build. A build from
-- 45M raw rows then keeps two cores busy: the hourly rollups beside the minute ones.
--
-- A build runs the upkeep first, committed (ruleperf_raw_upkeep), so that every session plans
-- with the raw table's statistics; a session's own upkeep then finds little to do.
--
-- The refresh itself moves to ruleperf_refresh_rollups, its body unchanged (with its settings:
-- hash aggregation's memory, no JIT); ruleperf_refresh takes the lock, does the upkeep and
-- calls it. A later change to the refresh redefines only ruleperf_refresh_rollups.

CREATE FUNCTION ruleperf_raw_upkeep() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM brin_summarize_new_values('metrics_time');
  PERFORM ruleperf_analyze_raw_if_stale();
END $$;

CREATE FUNCTION ruleperf_refresh_rollups(only_rollups text[], until timestamptz, lateness interval)
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


-- A new argument: the three-argument function goes (a call with three arguments resolves to this one).
DROP FUNCTION ruleperf_refresh(text[], timestamptz, interval);
CREATE FUNCTION ruleperf_refresh(only_rollups text[] DEFAULT NULL, until timestamptz DEFAULT now(), lateness interval DEFAULT '1 minute',
                                 side_by_side boolean DEFAULT false)
RETURNS TABLE (rollup text, buckets_recomputed bigint, old_watermark timestamptz, new_watermark timestamptz, retained_from timestamptz,
               rewritten_lo timestamptz[], rewritten_hi timestamptz[], changed_lo timestamptz[], changed_hi timestamptz[],
               duration_ms double precision)
LANGUAGE plpgsql AS $$
BEGIN
  IF lateness IS NULL OR lateness < interval '0' THEN
    RAISE EXCEPTION 'lateness must be a non-negative interval, got %', lateness;
  END IF;
  IF NOT side_by_side THEN
    IF NOT pg_try_advisory_xact_lock(hashtext('ruleperf_refresh')) THEN
      RETURN;
    END IF;
    PERFORM ruleperf_raw_upkeep();
  ELSE
    IF NOT pg_try_advisory_xact_lock_shared(hashtext('ruleperf_refresh')) THEN
      RETURN;
    END IF;
    BEGIN
      LOCK TABLE metrics IN SHARE UPDATE EXCLUSIVE MODE NOWAIT;
      PERFORM ruleperf_raw_upkeep();
    EXCEPTION WHEN lock_not_available THEN
      NULL;  -- another refresh (or VACUUM) holds the raw table's upkeep: build on without it
    END;
  END IF;
  RETURN QUERY SELECT * FROM ruleperf_refresh_rollups(only_rollups, until, lateness);
END $$;
