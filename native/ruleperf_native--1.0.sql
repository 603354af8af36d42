-- The C versions of ruleperf's sketch functions. ruleperf's migrate points its own
-- ruleperf_sketch_* functions at these when the extension is installed (server/db/native.ts).
\echo Use "CREATE EXTENSION ruleperf_native" to load this file. \quit

CREATE FUNCTION ruleperf_native_from_keys(integer[]) RETURNS bigint[]
  AS 'MODULE_PATHNAME', 'ruleperf_native_from_keys' LANGUAGE c IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION ruleperf_native_compact(bigint[]) RETURNS bigint[]
  AS 'MODULE_PATHNAME', 'ruleperf_native_compact' LANGUAGE c IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION ruleperf_native_coarsen(bigint[]) RETURNS bigint[]
  AS 'MODULE_PATHNAME', 'ruleperf_native_coarsen' LANGUAGE c IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION ruleperf_native_rank_keys(bigint[]) RETURNS integer[]
  AS 'MODULE_PATHNAME', 'ruleperf_native_rank_keys' LANGUAGE c IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION ruleperf_native_merge_parts(anyarray) RETURNS bigint[]
  AS 'MODULE_PATHNAME', 'ruleperf_native_merge_parts' LANGUAGE c IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION ruleperf_native_percentiles(anyarray) RETURNS float8[]
  AS 'MODULE_PATHNAME', 'ruleperf_native_percentiles' LANGUAGE c IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION ruleperf_native_keys_at(anyarray, float8) RETURNS integer[]
  AS 'MODULE_PATHNAME', 'ruleperf_native_keys_at' LANGUAGE c IMMUTABLE PARALLEL SAFE;
