-- ruleperf_native 1.3: top rules' coarse keys bounding a range's percentile from rows of which
-- some may lie partly outside it (the range's partial first day read as its whole day).
-- 1.2's aggregate stays: a service started before the update still calls it.
\echo Use "ALTER EXTENSION ruleperf_native UPDATE" to load this file. \quit

CREATE FUNCTION ruleperf_native_within_step(internal, bigint[], boolean, float8) RETURNS internal
  AS 'MODULE_PATHNAME', 'ruleperf_native_within_step' LANGUAGE c PARALLEL SAFE;
CREATE FUNCTION ruleperf_native_within_final(internal) RETURNS integer[]
  AS 'MODULE_PATHNAME', 'ruleperf_native_within_final' LANGUAGE c PARALLEL SAFE;
-- SSPACE: two sets of a rule's coarse keys (a few hundred at most, 16 bytes each).
CREATE AGGREGATE ruleperf_native_keys_within_agg(bigint[], boolean, float8) (
  SFUNC = ruleperf_native_within_step, STYPE = internal, SSPACE = 4096,
  FINALFUNC = ruleperf_native_within_final, FINALFUNC_MODIFY = READ_WRITE, PARALLEL = SAFE);
