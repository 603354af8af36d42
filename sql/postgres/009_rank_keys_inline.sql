-- Schema 9 (PostgreSQL flavour): the rank keys of a sketch of one entry, or of two entries
-- counting one raw value each (most minute rows and many hourly ones), come from an
-- expression the planner inlines into the statement that calls ruleperf_sketch_rank_keys,
-- instead of a PL/pgSQL call per row (about 6 µs each: a quarter of the minute by-rule
-- rollup's first build). Other sketches still take the one-pass walk of schema 6, renamed.
-- One entry: every rank falls on its key. Two single entries lo < hi: the 95th and 99th
-- percentiles' lower rank is 0 (lo), their upper rank 1 (hi).
ALTER FUNCTION ruleperf_sketch_rank_keys(bigint[]) RENAME TO ruleperf_sketch_rank_keys_walk;

CREATE FUNCTION ruleperf_sketch_rank_keys(entries bigint[]) RETURNS integer[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN cardinality(entries) = 1 AND entries[1] & 4294967295 > 0
      THEN array_fill((entries[1] >> 32)::integer, ARRAY[4])
    WHEN cardinality(entries) = 2 AND entries[1] & 4294967295 = 1 AND entries[2] & 4294967295 = 1
         AND entries[1] >> 32 < entries[2] >> 32
      THEN ARRAY[(entries[1] >> 32)::integer, (entries[2] >> 32)::integer,
                 (entries[1] >> 32)::integer, (entries[2] >> 32)::integer]
    ELSE ruleperf_sketch_rank_keys_walk(entries) END
$$;
