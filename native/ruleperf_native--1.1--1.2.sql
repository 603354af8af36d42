-- ruleperf_native 1.2: top rules' coarse keys at a rank as an aggregate over sketches (the
-- answer of ruleperf_native_keys_at over array_agg(ROW(sketch)), without the array per group);
-- top rules no longer reads rank keys where the functions run in C, so their bounds go.
\echo Use "ALTER EXTENSION ruleperf_native UPDATE" to load this file. \quit

CREATE FUNCTION ruleperf_native_merge_step(internal, bigint[], float8) RETURNS internal
  AS 'MODULE_PATHNAME', 'ruleperf_native_merge_step' LANGUAGE c PARALLEL SAFE;
CREATE FUNCTION ruleperf_native_keys_at_final(internal) RETURNS integer[]
  AS 'MODULE_PATHNAME', 'ruleperf_native_keys_at_final' LANGUAGE c PARALLEL SAFE;
CREATE AGGREGATE ruleperf_native_keys_at_agg(bigint[], float8) (
  SFUNC = ruleperf_native_merge_step, STYPE = internal,
  FINALFUNC = ruleperf_native_keys_at_final, FINALFUNC_MODIFY = READ_WRITE, PARALLEL = SAFE);

DROP FUNCTION ruleperf_native_rank_bounds(bigint[], integer[], integer[], float8);
