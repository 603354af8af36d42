-- ruleperf_native 1.1: bounds on a percentile's keys from parts' rank keys (top rules' first stage).
\echo Use "ALTER EXTENSION ruleperf_native UPDATE" to load this file. \quit

CREATE FUNCTION ruleperf_native_rank_bounds(bigint[], integer[], integer[], float8) RETURNS integer[]
  AS 'MODULE_PATHNAME', 'ruleperf_native_rank_bounds' LANGUAGE c IMMUTABLE PARALLEL SAFE;
