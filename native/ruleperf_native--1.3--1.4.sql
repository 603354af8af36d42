-- ruleperf_native 1.4: percentiles as an aggregate over sketches (the answer of
-- ruleperf_native_percentiles over array_agg(ROW(sketch)), without the row and array per group).
-- 1.3's functions stay: a service started before the update still calls them.
\echo Use "ALTER EXTENSION ruleperf_native UPDATE" to load this file. \quit

CREATE FUNCTION ruleperf_native_percentiles_step(internal, bigint[]) RETURNS internal
  AS 'MODULE_PATHNAME', 'ruleperf_native_percentiles_step' LANGUAGE c PARALLEL SAFE;
CREATE FUNCTION ruleperf_native_percentiles_final(internal) RETURNS float8[]
  AS 'MODULE_PATHNAME', 'ruleperf_native_percentiles_final' LANGUAGE c PARALLEL SAFE;
-- SSPACE: the merge state's first allocation (64 entries of 16 bytes), for the planner's hash-table estimate.
CREATE AGGREGATE ruleperf_native_percentiles_agg(bigint[]) (
  SFUNC = ruleperf_native_percentiles_step, STYPE = internal, SSPACE = 1024,
  FINALFUNC = ruleperf_native_percentiles_final, FINALFUNC_MODIFY = READ_WRITE, PARALLEL = SAFE);
