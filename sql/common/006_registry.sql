-- Schema 6, shared part: the registry gains retention and rank keys and drives
-- materialization (each flavour's ruleperf_materialize, called by a trigger on the
-- registry, so a new rollup is one INSERT); a change log the query service watches to
-- drop cached answers; the database's identity for cache keys; faster sketch functions.

ALTER TABLE ruleperf_rollups
  ADD COLUMN IF NOT EXISTS retention interval,                      -- NULL: kept as long as the raw rows
  ADD COLUMN IF NOT EXISTS rank_keys boolean NOT NULL DEFAULT false; -- store p95/p99 rank keys per row

-- The oldest bucket a rollup still holds completely ('-infinity': all of it).
ALTER TABLE ruleperf_rollup_state ADD COLUMN IF NOT EXISTS retained_from timestamptz NOT NULL DEFAULT '-infinity';

-- One id per database, created here, so that two deployments sharing a Redis never share
-- cache entries. A copied database (pg_dump, CREATE DATABASE … TEMPLATE) keeps it:
-- UPDATE ruleperf_identity SET id = gen_random_uuid() gives the copy its own.
CREATE TABLE IF NOT EXISTS ruleperf_identity (
  id          uuid NOT NULL DEFAULT gen_random_uuid(),
  created_at  timestamptz NOT NULL DEFAULT now(),
  only_row    boolean PRIMARY KEY DEFAULT true CHECK (only_row)
);
INSERT INTO ruleperf_identity DEFAULT VALUES ON CONFLICT DO NOTHING;

-- Changes that make cached answers wrong: raw time ranges a refresh rewrote below a
-- watermark (late, updated or deleted rows; lo/hi are raw times touched, inclusive), and
-- rule or parser edits (rule_id / parser_id, lo/hi NULL). Each insert is announced with
-- NOTIFY ruleperf_changes, <id>; refreshes delete rows older than a day.
CREATE TABLE IF NOT EXISTS ruleperf_changes (
  id         bigserial PRIMARY KEY,
  at         timestamptz NOT NULL DEFAULT clock_timestamp(),
  lo         timestamptz,
  hi         timestamptz,
  rule_id    text,
  parser_id  text
);

CREATE OR REPLACE FUNCTION ruleperf_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('ruleperf_changes', NEW.id::text);
  RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS ruleperf_changes_notify ON ruleperf_changes;
CREATE TRIGGER ruleperf_changes_notify AFTER INSERT ON ruleperf_changes
  FOR EACH ROW EXECUTE FUNCTION ruleperf_notify_change();

-- Rule and parser edits: the existing NOTIFY ruleperf_invalidate, plus a change row in the
-- same transaction.
CREATE OR REPLACE FUNCTION ruleperf_notify_rule_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE id text := CASE WHEN TG_OP = 'DELETE' THEN OLD.rule_id ELSE NEW.rule_id END;
BEGIN
  PERFORM pg_notify('ruleperf_invalidate', json_build_object('ruleId', id)::text);
  INSERT INTO ruleperf_changes (rule_id) VALUES (id);
  IF TG_OP = 'UPDATE' AND NEW.rule_id IS DISTINCT FROM OLD.rule_id THEN
    PERFORM pg_notify('ruleperf_invalidate', json_build_object('ruleId', OLD.rule_id)::text);
    INSERT INTO ruleperf_changes (rule_id) VALUES (OLD.rule_id);
  END IF;
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION ruleperf_notify_parser_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE id text := CASE WHEN TG_OP = 'DELETE' THEN OLD.parser_id ELSE NEW.parser_id END;
BEGIN
  PERFORM pg_notify('ruleperf_invalidate', json_build_object('parserId', id)::text);
  INSERT INTO ruleperf_changes (parser_id) VALUES (id);
  IF TG_OP = 'UPDATE' AND NEW.parser_id IS DISTINCT FROM OLD.parser_id THEN
    PERFORM pg_notify('ruleperf_invalidate', json_build_object('parserId', OLD.parser_id)::text);
    INSERT INTO ruleperf_changes (parser_id) VALUES (OLD.parser_id);
  END IF;
  RETURN NULL;
END $$;

-- ---- Sketch functions, faster ----------------------------------------------------------
-- Same results as the SQL versions of schema 1 (tests/rollups/sketch-functions.test.ts
-- compares them), in PL/pgSQL so that the common case, a handful of entries per rollup row,
-- is a few simple expressions instead of a query per call (10-50 µs each, which dominated
-- building rollups). Larger inputs still go through one GROUP BY. They call no other
-- ruleperf function, so they need no search_path (TimescaleDB refreshes continuous
-- aggregates with a restricted one).

-- keys (one per raw value) → sorted entries key << 32 | count.
CREATE OR REPLACE FUNCTION ruleperf_sketch_from_keys(keys integer[]) RETURNS bigint[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  n integer := coalesce(cardinality(keys), 0);
  s integer[];
  r bigint[] := '{}';
  i integer; j integer; v integer; c bigint; prev integer;
BEGIN
  IF n = 0 THEN RETURN r; END IF;
  IF n = 1 THEN RETURN ARRAY[(keys[1]::bigint << 32) | 1]; END IF;
  IF n > 16 THEN
    RETURN (SELECT coalesce(array_agg((g.k::bigint << 32) | g.cnt ORDER BY g.k), '{}')
            FROM (SELECT u.k, count(*) AS cnt FROM unnest(keys) AS u(k) GROUP BY u.k) AS g);
  END IF;
  s := keys;  -- insertion sort: cheapest for the few keys of most rows
  FOR i IN 2..n LOOP
    v := s[i]; j := i - 1;
    WHILE j >= 1 AND s[j] > v LOOP s[j + 1] := s[j]; j := j - 1; END LOOP;
    s[j + 1] := v;
  END LOOP;
  prev := s[1]; c := 1;
  FOR i IN 2..n LOOP
    IF s[i] = prev THEN c := c + 1;
    ELSE r := r || ((prev::bigint << 32) | c); prev := s[i]; c := 1;
    END IF;
  END LOOP;
  RETURN r || ((prev::bigint << 32) | c);
END $$;

-- entries in any order, keys repeated → sorted entries, one per key, counts added.
CREATE OR REPLACE FUNCTION ruleperf_sketch_compact(entries bigint[]) RETURNS bigint[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  n integer := coalesce(cardinality(entries), 0);
  s bigint[];
  r bigint[] := '{}';
  i integer; j integer; v bigint; k bigint; prevk bigint; c bigint;
  sorted boolean := true;
BEGIN
  IF n = 0 THEN RETURN r; END IF;
  FOR i IN 2..n LOOP
    IF entries[i] >> 32 <= entries[i - 1] >> 32 THEN sorted := false; EXIT; END IF;
  END LOOP;
  IF sorted THEN RETURN entries; END IF;
  IF n > 16 THEN
    RETURN (SELECT coalesce(array_agg((g.k << 32) | g.cnt ORDER BY g.k), '{}')
            FROM (SELECT u.x >> 32 AS k, sum(u.x & 4294967295)::bigint AS cnt FROM unnest(entries) AS u(x) GROUP BY 1) AS g);
  END IF;
  s := entries;  -- key << 32 | count sorts by key first
  FOR i IN 2..n LOOP
    v := s[i]; j := i - 1;
    WHILE j >= 1 AND s[j] > v LOOP s[j + 1] := s[j]; j := j - 1; END LOOP;
    s[j + 1] := v;
  END LOOP;
  prevk := s[1] >> 32; c := s[1] & 4294967295;
  FOR i IN 2..n LOOP
    k := s[i] >> 32;
    IF k = prevk THEN c := c + (s[i] & 4294967295);
    ELSE r := r || ((prevk << 32) | c); prevk := k; c := s[i] & 4294967295;
    END IF;
  END LOOP;
  RETURN r || ((prevk << 32) | c);
END $$;

-- The coarse sketch (keys / 16): one pass over sorted entries.
CREATE OR REPLACE FUNCTION ruleperf_sketch_coarsen(entries bigint[]) RETURNS bigint[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  r bigint[] := '{}';
  e bigint; k bigint; ck bigint := -1; c bigint := 0; lastk bigint := -1;
BEGIN
  IF entries IS NULL THEN RETURN r; END IF;
  FOREACH e IN ARRAY entries LOOP
    k := e >> 32;
    IF k < lastk THEN  -- not sorted: the general way
      RETURN (SELECT coalesce(array_agg((g.ck << 32) | g.cnt ORDER BY g.ck), '{}')
              FROM (SELECT (u.x >> 32) / 16 AS ck, sum(u.x & 4294967295)::bigint AS cnt FROM unnest(entries) AS u(x) GROUP BY 1) AS g);
    END IF;
    lastk := k;
    IF k / 16 = ck THEN c := c + (e & 4294967295);
    ELSE
      IF ck >= 0 THEN r := r || ((ck << 32) | c); END IF;
      ck := k / 16; c := e & 4294967295;
    END IF;
  END LOOP;
  IF ck >= 0 THEN r := r || ((ck << 32) | c); END IF;
  RETURN r;
END $$;

-- Merging sketches: array_agg(ROW(sketch)::ruleperf_sketch_part) collects a group's sketches
-- in linear time (the merge aggregate's array_cat copies the growing state at every row, so
-- it is quadratic in the group's size), and ruleperf_sketch_merge_parts adds them up. Both
-- are allowed in a continuous aggregate.
DO $$ BEGIN
  IF to_regtype('ruleperf_sketch_part') IS NULL THEN
    CREATE TYPE ruleperf_sketch_part AS (entries bigint[]);
  END IF;
END $$;

CREATE OR REPLACE FUNCTION ruleperf_sketch_merge_parts(parts ruleperf_sketch_part[]) RETURNS bigint[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  n integer := coalesce(cardinality(parts), 0);
  total integer := 0;
  s bigint[] := '{}';
  r bigint[] := '{}';
  i integer; j integer; v bigint; k bigint; prevk bigint; c bigint; m integer;
BEGIN
  IF n = 0 THEN RETURN r; END IF;
  IF n = 1 THEN  -- a rollup's sketch is compact already
    s := coalesce(parts[1].entries, r);
    m := cardinality(s);
    FOR i IN 2..m LOOP
      IF s[i] >> 32 <= s[i - 1] >> 32 THEN m := -1; EXIT; END IF;
    END LOOP;
    IF m >= 0 THEN RETURN s; END IF;
    s := '{}';
  END IF;
  FOR i IN 1..n LOOP total := total + coalesce(cardinality(parts[i].entries), 0); END LOOP;
  IF total > 16 THEN
    RETURN (SELECT coalesce(array_agg((g.k << 32) | g.cnt ORDER BY g.k), '{}')
            FROM (SELECT u.x >> 32 AS k, sum(u.x & 4294967295)::bigint AS cnt
                  FROM unnest(parts) AS p, unnest(p.entries) AS u(x) GROUP BY 1) AS g);
  END IF;
  IF total = 0 THEN RETURN r; END IF;
  FOR i IN 1..n LOOP
    IF parts[i].entries IS NOT NULL THEN s := s || parts[i].entries; END IF;
  END LOOP;
  m := cardinality(s);
  FOR i IN 2..m LOOP
    v := s[i]; j := i - 1;
    WHILE j >= 1 AND s[j] > v LOOP s[j + 1] := s[j]; j := j - 1; END LOOP;
    s[j + 1] := v;
  END LOOP;
  prevk := s[1] >> 32; c := s[1] & 4294967295;
  FOR i IN 2..m LOOP
    k := s[i] >> 32;
    IF k = prevk THEN c := c + (s[i] & 4294967295);
    ELSE r := r || ((prevk << 32) | c); prevk := k; c := s[i] & 4294967295;
    END IF;
  END LOOP;
  RETURN r || ((prevk << 32) | c);
END $$;

-- A time's bucket start (date_bin on the shared origin), leaving ±infinity as they are.
CREATE OR REPLACE FUNCTION ruleperf_bucket_floor(width interval, t timestamptz) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN isfinite(t) THEN date_bin(width, t, '2000-01-01 00:00:00+00') ELSE t END
$$;

-- ---- The registry drives materialization -------------------------------------------------

-- The SELECT that computes a rollup, in the shape both flavours use. Most rollup rows
-- summarize a handful of raw rows (or one row of their source): their sketches are built
-- from min, max and count alone; only the others call the sketch functions, on the keys
-- gathered by array_agg (or the source rows' sketches gathered as ruleperf_sketch_part, in
-- linear time where the merge aggregate's array_cat copies its state at every row).
-- for_cagg: one SELECT without subqueries, as a continuous aggregate must be. Otherwise the
-- statement reads the source between parameters $1 and $2, and an outer SELECT derives the
-- coarse sketch (and rank keys, when the registry asks for them) from the fine one once.
-- Identifiers come from the registry (checked by ruleperf_rollups_check) and are quoted.
CREATE OR REPLACE FUNCTION ruleperf_rollup_query(rollup text, for_cagg boolean) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
  r ruleperf_rollups;
  src_rank_keys boolean := false;
  dims text;
  from_raw boolean;
  tcol text;
  bucket text;
  fine text;
  coarse text;
  measures text;
  helpers text := '';
  inner_sql text;
BEGIN
  SELECT * INTO STRICT r FROM ruleperf_rollups WHERE name = rollup;
  from_raw := r.source = 'metrics';
  tcol := CASE WHEN from_raw THEN 'time' ELSE 'bucket' END;
  IF NOT from_raw THEN
    SELECT s.rank_keys INTO src_rank_keys FROM ruleperf_rollups s WHERE s.name = r.source;
  END IF;
  SELECT coalesce(string_agg(', ' || format('%I', d), '' ORDER BY o), '') INTO dims FROM unnest(r.dims) WITH ORDINALITY AS u(d, o);
  bucket := CASE WHEN for_cagg THEN format('time_bucket(%L::interval, %I)', r.bucket_width, tcol)
                 ELSE format('date_bin(%L::interval, %I, ''2000-01-01 00:00:00+00'')', r.bucket_width, tcol) END;
  IF from_raw THEN
    -- K is a row's sketch key; one key, or two, give the sketch directly.
    fine := $s$CASE WHEN min(K) = max(K) THEN ARRAY[(min(K)::bigint << 32) | count(*)]
                    WHEN count(*) = 2 THEN ARRAY[(min(K)::bigint << 32) | 1, (max(K)::bigint << 32) | 1]
                    ELSE ruleperf_sketch_from_keys(array_agg(K)) END$s$;
    coarse := $s$CASE WHEN min(K) / 16 = max(K) / 16 THEN ARRAY[((min(K) / 16)::bigint << 32) | count(*)]
                      WHEN count(*) = 2 THEN ARRAY[((min(K) / 16)::bigint << 32) | 1, ((max(K) / 16)::bigint << 32) | 1]
                      ELSE ruleperf_sketch_coarsen(FINE) END$s$;
    fine := replace(fine, 'K', 'ruleperf_sketch_key(execution_time_ms)');
    coarse := replace(coarse, 'K', 'ruleperf_sketch_key(execution_time_ms)');
    measures := $m$
      count(*)::bigint AS execution_count,
      sum(execution_time_ms) AS exec_time_sum,
      min(execution_time_ms) AS exec_time_min,
      max(execution_time_ms) AS exec_time_max,
      SKETCHES
      sum(records_processed)::bigint AS records_processed,
      sum(records_matched)::bigint AS records_matched,
      sum(records_failed)::bigint AS records_failed,
      sum(memory_usage_mb) AS memory_sum,
      max(memory_usage_mb) AS memory_max,
      sum(cpu_usage_percent) AS cpu_sum,
      max(cpu_usage_percent) AS cpu_max,
      count(*) FILTER (WHERE status = 'ERROR')::bigint AS error_count,
      count(*) FILTER (WHERE status = 'SUCCESS')::bigint AS success_count,
      count(*) FILTER (WHERE status = 'TIMEOUT')::bigint AS timeout_count$m$;
    IF 'status' = ANY (r.dims) THEN  -- one status per group: no per-row filter
      measures := regexp_replace(measures, $r$count\(\*\) FILTER \(WHERE status = '([A-Z]+)'\)$r$,
                                 $r$CASE WHEN status = '\1' THEN count(*) ELSE 0 END$r$, 'g');
    END IF;
    helpers := $h$, min(ruleperf_sketch_key(execution_time_ms)) / 16 = max(ruleperf_sketch_key(execution_time_ms)) / 16 AS one_coarse_key,
      count(*) = 2 AS two_rows, min(ruleperf_sketch_key(execution_time_ms)) / 16 AS coarse_lo, max(ruleperf_sketch_key(execution_time_ms)) / 16 AS coarse_hi$h$;
  ELSE
    -- A single source row: its sketches as they are.
    fine := 'CASE WHEN count(*) = 1 THEN min(latency_sketch) ELSE ruleperf_sketch_merge_parts(array_agg(ROW(latency_sketch)::ruleperf_sketch_part)) END';
    coarse := 'CASE WHEN count(*) = 1 THEN min(latency_coarse) ELSE ruleperf_sketch_coarsen(FINE) END';
    measures := $m$
      sum(execution_count)::bigint AS execution_count,
      sum(exec_time_sum) AS exec_time_sum,
      min(exec_time_min) AS exec_time_min,
      max(exec_time_max) AS exec_time_max,
      SKETCHES
      sum(records_processed)::bigint AS records_processed,
      sum(records_matched)::bigint AS records_matched,
      sum(records_failed)::bigint AS records_failed,
      sum(memory_sum) AS memory_sum,
      max(memory_max) AS memory_max,
      sum(cpu_sum) AS cpu_sum,
      max(cpu_max) AS cpu_max,
      sum(error_count)::bigint AS error_count,
      sum(success_count)::bigint AS success_count,
      sum(timeout_count)::bigint AS timeout_count$m$;
    helpers := ', count(*) = 1 AS one_row, min(latency_coarse) AS only_coarse'
            || CASE WHEN src_rank_keys THEN ', min(latency_rank_keys) AS only_rank_keys' ELSE '' END;
  END IF;
  coarse := replace(coarse, 'FINE', fine);
  IF for_cagg THEN
    RETURN format('SELECT %s AS bucket%s, %s FROM %I GROUP BY 1%s', bucket, dims,
                  replace(measures, 'SKETCHES', format(E'%s AS latency_sketch,\n      %s AS latency_coarse,', fine, coarse)), r.source, dims);
  END IF;
  inner_sql := format('SELECT %s AS bucket%s, %s%s FROM %I WHERE %I >= $1 AND %I < $2 GROUP BY 1%s', bucket, dims,
                      replace(measures, 'SKETCHES', fine || ' AS latency_sketch,'), helpers, r.source, tcol, tcol, dims);
  RETURN format('SELECT bucket%s, execution_count, exec_time_sum, exec_time_min, exec_time_max, latency_sketch, %s AS latency_coarse,
      records_processed, records_matched, records_failed, memory_sum, memory_max, cpu_sum, cpu_max, error_count, success_count, timeout_count%s
    FROM (%s) AS g', dims,
    CASE WHEN from_raw THEN 'CASE WHEN one_coarse_key THEN ARRAY[(coarse_lo::bigint << 32) | execution_count]
           WHEN two_rows THEN ARRAY[(coarse_lo::bigint << 32) | 1, (coarse_hi::bigint << 32) | 1]
           ELSE ruleperf_sketch_coarsen(latency_sketch) END'
         ELSE 'CASE WHEN one_row THEN only_coarse ELSE ruleperf_sketch_coarsen(latency_sketch) END' END,
    CASE WHEN NOT r.rank_keys THEN ''
         WHEN src_rank_keys THEN ', CASE WHEN one_row THEN only_rank_keys ELSE ruleperf_sketch_rank_keys(latency_sketch) END AS latency_rank_keys'
         ELSE ', ruleperf_sketch_rank_keys(latency_sketch) AS latency_rank_keys' END,
    inner_sql);
END $$;

-- A rollup's columns in the order ruleperf_rollup_query yields them.
CREATE OR REPLACE FUNCTION ruleperf_rollup_columns(rollup text) RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT 'bucket' || coalesce((SELECT string_agg(', ' || format('%I', d), '' ORDER BY o) FROM unnest(r.dims) WITH ORDINALITY AS u(d, o)), '')
      || ', execution_count, exec_time_sum, exec_time_min, exec_time_max, latency_sketch, latency_coarse, records_processed,'
      || ' records_matched, records_failed, memory_sum, memory_max, cpu_sum, cpu_max, error_count, success_count, timeout_count'
      || CASE WHEN r.rank_keys THEN ', latency_rank_keys' ELSE '' END
  FROM ruleperf_rollups r WHERE r.name = rollup
$$;

-- Checks a registry row and fills its defaults: position after the last rollup, a refresh
-- interval by bucket width. Dimensions come from a fixed list; a rollup built from another
-- needs that one's dimensions and a bucket width it divides. Dimensions and width of an
-- existing rollup cannot change (its rows would be wrong); the source can (the answer is
-- the same from any source holding the dimensions).
CREATE OR REPLACE FUNCTION ruleperf_rollups_check() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  src ruleperf_rollups;
  known constant text[] := '{metric_type,rule_id,parser_id,rule_category,source_type,status}';
BEGIN
  IF NEW.name !~ '^metrics_[a-z0-9_]{1,40}$' THEN
    RAISE EXCEPTION 'rollup name % must look like metrics_<letters, digits, _> (at most 48 characters)', NEW.name;
  END IF;
  IF NOT NEW.dims <@ known OR cardinality(NEW.dims) <> (SELECT count(DISTINCT d) FROM unnest(NEW.dims) AS d) THEN
    RAISE EXCEPTION 'rollup %: dims % must be distinct names from %', NEW.name, NEW.dims, known;
  END IF;
  IF NEW.bucket_width <= interval '0' OR extract(month FROM NEW.bucket_width) <> 0 OR extract(year FROM NEW.bucket_width) <> 0
     OR extract(epoch FROM NEW.bucket_width) <> floor(extract(epoch FROM NEW.bucket_width)) THEN
    RAISE EXCEPTION 'rollup %: bucket_width % must be a positive whole number of seconds (days at most, no months)', NEW.name, NEW.bucket_width;
  END IF;
  IF NEW.retention IS NOT NULL AND NEW.retention < NEW.bucket_width THEN
    RAISE EXCEPTION 'rollup %: retention % is shorter than one bucket', NEW.name, NEW.retention;
  END IF;
  IF NEW.source <> 'metrics' THEN
    SELECT * INTO src FROM ruleperf_rollups WHERE name = NEW.source;
    IF NOT FOUND OR NEW.source = NEW.name THEN
      RAISE EXCEPTION 'rollup %: source % is neither metrics nor another rollup', NEW.name, NEW.source;
    END IF;
    IF NOT NEW.dims <@ src.dims THEN
      RAISE EXCEPTION 'rollup %: source % lacks some of the dimensions %', NEW.name, NEW.source, NEW.dims;
    END IF;
    IF (extract(epoch FROM NEW.bucket_width)::bigint % extract(epoch FROM src.bucket_width)::bigint) <> 0 THEN
      RAISE EXCEPTION 'rollup %: bucket width % is not a multiple of its source''s (%)', NEW.name, NEW.bucket_width, src.bucket_width;
    END IF;
  END IF;
  IF TG_OP = 'UPDATE' AND (NEW.name <> OLD.name OR NEW.dims <> OLD.dims OR NEW.bucket_width <> OLD.bucket_width) THEN
    RAISE EXCEPTION 'rollup %: name, dims and bucket_width cannot change; add a new rollup instead', OLD.name;
  END IF;
  NEW.position := coalesce(NEW.position, (SELECT coalesce(max(position), 0) + 1 FROM ruleperf_rollups));
  IF NEW.source <> 'metrics' AND src.position >= NEW.position THEN
    RAISE EXCEPTION 'rollup %: position % must come after its source''s (%)', NEW.name, NEW.position, src.position;
  END IF;
  NEW.refresh_every := coalesce(NEW.refresh_every,
    CASE WHEN NEW.bucket_width <= interval '1 minute' THEN interval '1 minute'
         WHEN NEW.bucket_width <= interval '1 hour' THEN interval '5 minutes' ELSE interval '1 hour' END);
  RETURN NEW;
END $$;

-- (NOT NULL is checked after BEFORE triggers, so an INSERT may leave position and
-- refresh_every out.)
DROP TRIGGER IF EXISTS ruleperf_rollups_check ON ruleperf_rollups;
CREATE TRIGGER ruleperf_rollups_check BEFORE INSERT OR UPDATE ON ruleperf_rollups
  FOR EACH ROW EXECUTE FUNCTION ruleperf_rollups_check();

-- After a row is added or changed, its flavour materializes it (ruleperf_materialize is
-- defined by sql/postgres and sql/timescale).
CREATE OR REPLACE FUNCTION ruleperf_rollups_materialize() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO ruleperf_rollup_state (rollup) VALUES (NEW.name) ON CONFLICT DO NOTHING;
  PERFORM ruleperf_materialize(NEW.name);
  RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS ruleperf_rollups_materialize ON ruleperf_rollups;
CREATE TRIGGER ruleperf_rollups_materialize AFTER INSERT OR UPDATE ON ruleperf_rollups
  FOR EACH ROW EXECUTE FUNCTION ruleperf_rollups_materialize();
