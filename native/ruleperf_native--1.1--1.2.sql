-- ruleperf_native 1.2: top rules' coarse keys at a rank as an aggregate over sketches (the
-- answer of ruleperf_native_keys_at over array_agg(ROW(sketch)), without the array per group).
-- 1.1's rank bounds stay: a service started before the update still calls them.
\echo Use "ALTER EXTENSION ruleperf_native UPDATE" to load this file. \quit

CREATE FUNCTION ruleperf_native_merge_step(internal, bigint[], float8) RETURNS internal
  AS 'MODULE_PATHNAME', 'ruleperf_native_merge_step' LANGUAGE c PARALLEL SAFE;
CREATE FUNCTION ruleperf_native_keys_at_final(internal) RETURNS integer[]
  AS 'MODULE_PATHNAME', 'ruleperf_native_keys_at_final' LANGUAGE c PARALLEL SAFE;
-- SSPACE: a rule's coarse keys (a few hundred at most, 16 bytes each), for the planner's hash-table estimate.
CREATE AGGREGATE ruleperf_native_keys_at_agg(bigint[], float8) (
  SFUNC = ruleperf_native_merge_step, STYPE = internal, SSPACE = 2048,
  FINALFUNC = ruleperf_native_keys_at_final, FINALFUNC_MODIFY = READ_WRITE, PARALLEL = SAFE);
