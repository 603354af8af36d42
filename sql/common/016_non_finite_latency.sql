-- A raw row whose execution_time_ms is Infinity or NaN (the CHECK >= 0 lets both in: NaN sorts
-- above every number) made ruleperf_sketch_key fail with "integer out of range": every refresh
-- of a rollup covering it failed, and every answer with percentiles over it was refused. Such a
-- value now falls in the top bucket, as the largest finite ones already do (the key is capped
-- at 4000); averages and maxima over it are not numbers, and panels show them empty. A CHECK
-- constraint refusing such rows is not added: TimescaleDB before 2.20 refuses to add one to a
-- hypertable with compression enabled.
CREATE OR REPLACE FUNCTION ruleperf_sketch_key(x double precision) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN x <= 0 THEN 0
              WHEN x >= 'Infinity'::double precision THEN 4000
              ELSE least(4000, greatest(1, ceil(ln(x) / ln(1.016129032258064)::double precision)::integer + 1500)) END
$$;
